#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flow_meter.h"

namespace bpfix {

// Reads a capture file and feeds its frames to a FlowMeter in batches.
// Classic pcap files (any byte order, micro- or nanosecond) are read by
// this class in 2 MiB blocks (libpcap's per-record reads cost as much as
// metering; a memory map of the file stalled on TLB misses under nested
// paging, docs/benchmarks.md). Everything else (pcapng, pipes) goes through
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
    bool open_buffered();
    void open_libpcap();
    bool read_buffered(FlowMeter& meter, size_t max_frames);
    void fill(FlowMeter& meter);
    void look_ahead(FlowMeter& meter);
    bool read_libpcap(FlowMeter& meter, size_t max_frames);
    void stop_truncated(FlowMeter& meter, const std::string& why);

    std::string path_;
    // Classic pcap, read in large blocks into buf_: buf_[pos_, len_) is not
    // metered yet; base_ is the file offset of buf_[0].
    int fd_ = -1;
    std::vector<uint8_t> buf_;
    size_t len_ = 0, pos_ = 0;
    uint64_t base_ = 0;
    bool eof_ = false;
    // The reader's look-ahead: the record after the last one hinted to the
    // meter, ahead_count_ records in front of pos_.
    size_t ahead_pos_ = 0;
    size_t ahead_count_ = 0;
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
