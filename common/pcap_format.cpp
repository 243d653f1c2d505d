#include "pcap_format.h"

#include <cstring>

namespace bpfix {

namespace {

void put32(std::string& out, uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);  // host order: the magic number says which
    out.append(b, 4);
}

void put16(std::string& out, uint16_t v) {
    char b[2];
    std::memcpy(b, &v, 2);
    out.append(b, 2);
}

}  // namespace

std::string pcap_global_header(uint32_t snaplen, bool nanoseconds, uint32_t linktype) {
    std::string h;
    h.reserve(kPcapGlobalHeaderSize);
    put32(h, nanoseconds ? kPcapMagicNano : kPcapMagicMicro);
    put16(h, 2);  // version 2.4
    put16(h, 4);
    put32(h, 0);  // thiszone: timestamps are UTC
    put32(h, 0);  // sigfigs
    put32(h, snaplen);
    put32(h, linktype);
    return h;
}

void append_pcap_record(std::string& out, uint64_t ts_ns, bool nanoseconds, uint32_t orig_len,
                        std::span<const uint8_t> data) {
    put32(out, static_cast<uint32_t>(ts_ns / 1'000'000'000ULL));
    uint32_t frac = static_cast<uint32_t>(ts_ns % 1'000'000'000ULL);
    put32(out, nanoseconds ? frac : frac / 1000);
    put32(out, static_cast<uint32_t>(data.size()));
    put32(out, orig_len);
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
}

}  // namespace bpfix
