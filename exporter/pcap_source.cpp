#include "pcap_source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "error.h"

namespace bpfix {

PcapSource::PcapSource(const std::string& path) : path_(path) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_ = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!pcap_) {
        throw Error(fmt::format("cannot read pcap file {}: {}; give a pcap or pcapng capture file", path, errbuf));
    }
    dlt_ = pcap_datalink(pcap_);
    if (!link_type_supported(dlt_)) {
        const char* name = pcap_datalink_val_to_name(dlt_);
        pcap_close(pcap_);
        pcap_ = nullptr;
        throw Error(fmt::format("pcap file {} has link type {} ({}), which bpfix does not meter; supported: "
                                "Ethernet, raw IP, Linux cooked (SLL, SLL2)",
                                path, dlt_, name ? name : "unknown"));
    }
}

PcapSource::~PcapSource() {
    if (pcap_) pcap_close(pcap_);
}

bool PcapSource::read_batch(FlowMeter& meter, size_t max_frames) {
    if (done_) return false;
    for (size_t i = 0; i < max_frames; ++i) {
        struct pcap_pkthdr* hdr = nullptr;
        const u_char* data = nullptr;
        int rc = pcap_next_ex(pcap_, &hdr, &data);
        if (rc == 1) {
            uint64_t ts = static_cast<uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ULL +
                          static_cast<uint64_t>(hdr->ts.tv_usec);  // nanoseconds (precision set at open)
            meter.packet(data, hdr->caplen, hdr->len, dlt_, ts);
            continue;
        }
        if (rc == PCAP_ERROR_BREAK) {  // end of file
            done_ = true;
            return false;
        }
        // A file cut inside a record: keep everything before it.
        spdlog::warn("pcap file {}: {}; stopping there (the cut record is counted as malformed)", path_,
                     pcap_geterr(pcap_));
        truncated_ = true;
        done_ = true;
        meter.count_unreadable();
        return false;
    }
    return true;
}

}  // namespace bpfix
