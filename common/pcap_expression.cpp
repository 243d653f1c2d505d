#include "pcap_expression.h"

#include <fmt/format.h>
#include <pcap/pcap.h>

#include "error.h"

namespace bpfix {

struct PcapExpression::Program {
    bpf_program code{};
    ~Program() { pcap_freecode(&code); }
};

PcapExpression::PcapExpression(const std::string& text, uint32_t snaplen) {
    if (text.empty()) return;
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, static_cast<int>(snaplen));
    if (!dead) throw Error("libpcap: cannot make a handle to compile the filter with");
    auto prog = std::make_unique<Program>();
    if (pcap_compile(dead, &prog->code, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
        std::string why = pcap_geterr(dead);
        pcap_close(dead);
        prog->code = {};
        throw Error(fmt::format("'{}' is not a valid pcap-filter expression: {}", text, why));
    }
    pcap_close(dead);
    prog_ = std::move(prog);
}

PcapExpression::~PcapExpression() = default;

bool PcapExpression::matches(std::span<const uint8_t> frame, uint32_t orig_len) const {
    if (!prog_) return true;
    pcap_pkthdr h{};
    h.caplen = static_cast<bpf_u_int32>(frame.size());
    h.len = orig_len;
    return pcap_offline_filter(&prog_->code, &h, frame.data()) != 0;
}

}  // namespace bpfix
