// The classic pcap file format (what tcpdump -w writes and Wireshark,
// tshark and Zeek read): one global header, then a record header and the
// captured bytes per packet, in the writer's byte order (little endian
// here). Microsecond or nanosecond timestamps (the magic number tells).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace bpfix {

constexpr uint32_t kPcapLinkEthernet = 1;  // LINKTYPE_ETHERNET
constexpr uint32_t kPcapMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kPcapMagicNano = 0xa1b23c4d;
constexpr size_t kPcapGlobalHeaderSize = 24;
constexpr size_t kPcapRecordHeaderSize = 16;

// The 24-byte global header.
std::string pcap_global_header(uint32_t snaplen, bool nanoseconds, uint32_t linktype = kPcapLinkEthernet);

// Appends one record: `ts_ns` (UNIX time in ns) cut to the precision,
// `orig_len` the frame's length on the wire, `data` the bytes kept.
void append_pcap_record(std::string& out, uint64_t ts_ns, bool nanoseconds, uint32_t orig_len,
                        std::span<const uint8_t> data);

}  // namespace bpfix
