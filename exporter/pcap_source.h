#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flow_meter.h"

namespace bpfix {

// Reads a capture file and feeds its frames to a FlowMeter in batches.
// Classic pcap files (any byte order, micro- or nanosecond) are read from a
// memory map: copying the file through read() cost as much as metering it
// (docs/benchmarks.md). Everything else (pcapng, pipes) goes through
// libpcap.
class PcapSource {
public:
    // Throws bpfix::Error when the file cannot be read or its link type is
    // not one we meter.
    explicit PcapSource(const std::string& path);
    ~PcapSource();
    PcapSource(const PcapSource&) = delete;
    PcapSource& operator=(const PcapSource&) = delete;

    // Meters up to `max_frames` frames; returns false at end of input. A
    // file cut inside a record ends the input with a warning, and the cut
    // record counts as malformed.
    bool read_batch(FlowMeter& meter, size_t max_frames);

    int link_type() const { return dlt_; }
    bool truncated() const { return truncated_; }

private:
    bool open_mapped();
    void open_libpcap();
    bool read_mapped(FlowMeter& meter, size_t max_frames);
    void release_mapped();
    bool read_libpcap(FlowMeter& meter, size_t max_frames);
    void stop_truncated(FlowMeter& meter, const std::string& why);

    std::string path_;
    // Memory-mapped classic pcap.
    const uint8_t* map_ = nullptr;
    size_t map_size_ = 0;
    size_t pos_ = 0;
    // The reader's look-ahead (mapped files): the record after the last one
    // hinted to the meter, kLookahead records in front of pos_.
    size_t ahead_pos_ = 0;
    size_t ahead_count_ = 0;
    void look_ahead(FlowMeter& meter);
    size_t released_ = 0;
    bool swapped_ = false;
    bool nanosecond_ = false;
    // libpcap for the rest.
    std::vector<char> io_buffer_;  // outlives pcap_ (declared first)
    pcap_t* pcap_ = nullptr;
    int dlt_ = 0;
    bool done_ = false;
    bool truncated_ = false;
};

}  // namespace bpfix
