#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <string>

#include "flow_meter.h"

namespace bpfix {

// Reads a pcap (or pcapng) file with libpcap, nanosecond timestamps, and
// feeds the frames to a FlowMeter in batches.
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
    std::string path_;
    pcap_t* pcap_ = nullptr;
    int dlt_ = 0;
    bool done_ = false;
    bool truncated_ = false;
};

}  // namespace bpfix
