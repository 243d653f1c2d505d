#pragma once

#include <cstddef>
#include <cstdint>

#include "bpfix_abi.h"

namespace bpfix {

// Link-layer types we read (libpcap DLT_* values).
enum class LinkType : int {
    ethernet = 1,    // DLT_EN10MB
    raw = 12,        // DLT_RAW (some platforms)
    raw_ip = 101,    // LINKTYPE_RAW
    linux_sll = 113,
    linux_sll2 = 276,
    ipv4 = 228,
    ipv6 = 229,
};

// Whether we can meter frames of this pcap link type.
bool link_type_supported(int dlt);

enum class ParseStatus { ok, non_ip, malformed };

struct ParsedPacket {
    bpfix_flow_key key{};      // ifindex/direction left 0: the caller sets them
    uint64_t ip_octets = 0;    // IP header + payload, per docs/flow-semantics.md
    uint16_t tcp_flags = 0;    // flags byte | NS << 8
    uint8_t tos = 0;
    // Fragments: `fragment` for any fragment; `first_fragment` when it is the
    // one at offset 0 (it carries the transport header). `frag_id` is the IPv4
    // identification or the IPv6 fragment header's.
    // The TCP or UDP payload (in the frame given to parse_packet), cut to
    // what the capture holds and the IP length covers; none for other
    // protocols and for fragments after the first.
    const uint8_t* payload = nullptr;
    size_t payload_len = 0;
    bool fragment = false;
    bool first_fragment = false;
    uint32_t frag_id = 0;
};

// Parses one captured frame. `caplen` bytes are present; `wirelen` is the
// original length. Never reads past caplen; never throws.
ParseStatus parse_packet(const uint8_t* data, size_t caplen, size_t wirelen, int dlt, ParsedPacket& out);

}  // namespace bpfix
