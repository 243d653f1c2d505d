// A pcap-filter expression (tcpdump syntax, compiled by libpcap) run over
// Ethernet frames in user space.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace bpfix {

class PcapExpression {
public:
    // Empty text matches everything. Throws bpfix::Error with libpcap's
    // reason.
    PcapExpression(const std::string& text, uint32_t snaplen);
    ~PcapExpression();
    PcapExpression(const PcapExpression&) = delete;
    PcapExpression& operator=(const PcapExpression&) = delete;
    // `frame`: the bytes kept; `orig_len`: the frame's length on the wire.
    bool matches(std::span<const uint8_t> frame, uint32_t orig_len) const;
    bool empty() const { return !prog_; }

private:
    struct Program;  // libpcap's bpf_program, kept out of this header (its
                     // struct bpf_insn clashes with the kernel's)
    std::unique_ptr<Program> prog_;
};

}  // namespace bpfix
