#include "packet_parser.h"

#include <cstring>

namespace bpfix {
namespace {

constexpr uint16_t kEthIPv4 = 0x0800;
constexpr uint16_t kEthIPv6 = 0x86dd;
constexpr uint16_t kEth8021Q = 0x8100;
constexpr uint16_t kEth8021AD = 0x88a8;
constexpr uint16_t kEthQinQLegacy = 0x9100;
constexpr int kMaxVlanTags = 4;
constexpr int kMaxIpv6ExtHeaders = 16;

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
           static_cast<uint32_t>(p[2]) << 8 | p[3];
}

bool has_ports(uint8_t proto) {
    return proto == BPFIX_PROTO_TCP || proto == BPFIX_PROTO_UDP || proto == BPFIX_PROTO_SCTP || proto == BPFIX_PROTO_UDPLITE ||
           proto == BPFIX_PROTO_DCCP;
}

// Transport header at p (len bytes available). Fills ports / ICMP / flags.
bool parse_transport(const uint8_t* p, size_t len, uint8_t proto, ParsedPacket& out) {
    if (len < static_cast<size_t>(bpfix_transport_header_len(proto))) return false;
    if (has_ports(proto)) {
        out.key.src_port = be16(p);
        out.key.dst_port = be16(p + 2);
        if (proto == BPFIX_PROTO_TCP) {
            out.tcp_flags = static_cast<uint16_t>((p[12] & 0x01) << 8 | p[13]);
            size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
            if (doff >= 20 && doff <= len) {
                out.payload = p + doff;
                out.payload_len = len - doff;
            }
        } else if (proto == BPFIX_PROTO_UDP) {
            out.payload = p + 8;
            out.payload_len = len - 8;
        }
    } else if (proto == BPFIX_PROTO_ICMP || proto == BPFIX_PROTO_ICMPV6) {
        out.key.icmp_type_code = static_cast<uint16_t>(p[0] << 8 | p[1]);
    }
    return true;
}

// IPv6 Payload Length 0 means a jumbogram only with a Jumbo Payload option
// (RFC 2675) in the hop-by-hop header at p; returns its length, or 0.
uint64_t jumbo_payload_length(const uint8_t* p, size_t len) {
    if (len < 8) return 0;
    size_t hlen = (static_cast<size_t>(p[1]) + 1) * 8;
    if (hlen > len) return 0;
    for (size_t off = 2; off < hlen;) {
        uint8_t type = p[off];
        if (type == 0) {  // Pad1
            ++off;
            continue;
        }
        if (off + 2 > hlen) return 0;
        uint8_t olen = p[off + 1];
        if (type == 0xc2 && olen == 4 && off + 6 <= hlen) return be32(p + off + 2);
        off += 2 + static_cast<size_t>(olen);
    }
    return 0;
}

ParseStatus parse_ipv4(const uint8_t* p, size_t len, ParsedPacket& out) {
    if (len < 20) return ParseStatus::malformed;
    if ((p[0] >> 4) != 4) return ParseStatus::malformed;
    size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    uint16_t total = be16(p + 2);
    if (ihl < 20 || total < ihl || len < ihl) return ParseStatus::malformed;
    out.key.ip_version = BPFIX_IPV4;
    out.key.protocol = p[9];
    out.tos = p[1];
    memcpy(out.key.src_addr, p + 12, 4);
    memcpy(out.key.dst_addr, p + 16, 4);
    out.ip_octets = total;
    uint16_t frag = be16(p + 6);
    uint16_t offset = frag & 0x1fff;
    bool more = frag & 0x2000;
    if (offset != 0 || more) {
        out.fragment = true;
        out.first_fragment = offset == 0;
        out.frag_id = be16(p + 4);
        if (!out.first_fragment) {
            return ParseStatus::ok;  // no transport header in this one
        }
    }
    // Only what the capture holds and the IP length covers is transport data.
    size_t avail = (total < len ? total : len) - ihl;
    return parse_transport(p + ihl, avail, out.key.protocol, out) ? ParseStatus::ok : ParseStatus::malformed;
}

ParseStatus parse_ipv6(const uint8_t* p, size_t len, ParsedPacket& out) {
    if (len < 40) return ParseStatus::malformed;
    if ((p[0] >> 4) != 6) return ParseStatus::malformed;
    out.key.ip_version = BPFIX_IPV6;
    out.tos = static_cast<uint8_t>((be16(p) >> 4) & 0xff);
    memcpy(out.key.src_addr, p + 8, 16);
    memcpy(out.key.dst_addr, p + 24, 16);
    uint16_t plen = be16(p + 4);
    uint8_t next = p[6];
    uint64_t payload = plen;
    if (plen == 0 && next == 0) {
        payload = jumbo_payload_length(p + 40, len - 40);
    }
    out.ip_octets = payload + 40;
    size_t off = 40;
    size_t end = 40 + payload < len ? static_cast<size_t>(40 + payload) : len;
    for (int i = 0;; ++i) {
        switch (next) {
            case 0:    // hop-by-hop
            case 43:   // routing
            case 60:   // destination options
            case 135:  // mobility
            case 139:  // HIP
            case 140:  // shim6
            case 253:
            case 254: {
                if (i >= kMaxIpv6ExtHeaders || off + 8 > end) return ParseStatus::malformed;
                size_t hlen = (static_cast<size_t>(p[off + 1]) + 1) * 8;
                next = p[off];
                off += hlen;
                if (off > end) return ParseStatus::malformed;
                continue;
            }
            case 51: {  // AH: length in 4-octet units, minus 2
                if (i >= kMaxIpv6ExtHeaders || off + 8 > end) return ParseStatus::malformed;
                size_t hlen = (static_cast<size_t>(p[off + 1]) + 2) * 4;
                next = p[off];
                off += hlen;
                if (off > end) return ParseStatus::malformed;
                continue;
            }
            case 44: {  // fragment
                if (i >= kMaxIpv6ExtHeaders || off + 8 > end) return ParseStatus::malformed;
                uint16_t fo = be16(p + off + 2);
                out.fragment = true;
                out.first_fragment = (fo >> 3) == 0;
                out.frag_id = be32(p + off + 4);
                next = p[off];
                off += 8;
                if (!out.first_fragment) {
                    out.key.protocol = next;
                    return ParseStatus::ok;
                }
                continue;
            }
            default:
                break;
        }
        break;
    }
    out.key.protocol = next;
    if (next == 59) return ParseStatus::ok;  // no next header
    return parse_transport(p + off, end - off, next, out) ? ParseStatus::ok : ParseStatus::malformed;
}

ParseStatus parse_l3(uint16_t ethertype, const uint8_t* p, size_t len, ParsedPacket& out) {
    switch (ethertype) {
        case kEthIPv4: return parse_ipv4(p, len, out);
        case kEthIPv6: return parse_ipv6(p, len, out);
        default: return ParseStatus::non_ip;
    }
}

ParseStatus parse_raw_ip(const uint8_t* p, size_t len, ParsedPacket& out) {
    if (len < 1) return ParseStatus::malformed;
    switch (p[0] >> 4) {
        case 4: return parse_ipv4(p, len, out);
        case 6: return parse_ipv6(p, len, out);
        default: return ParseStatus::malformed;
    }
}

}  // namespace

bool link_type_supported(int dlt) {
    switch (static_cast<LinkType>(dlt)) {
        case LinkType::ethernet:
        case LinkType::raw:
        case LinkType::raw_ip:
        case LinkType::linux_sll:
        case LinkType::linux_sll2:
        case LinkType::ipv4:
        case LinkType::ipv6:
            return true;
    }
    return false;
}

ParseStatus parse_packet(const uint8_t* data, size_t caplen, size_t wirelen, int dlt, ParsedPacket& out) {
    out = ParsedPacket{};
    (void)wirelen;  // IP lengths come from the headers, not the capture
    switch (static_cast<LinkType>(dlt)) {
        case LinkType::raw:
        case LinkType::raw_ip:
            return parse_raw_ip(data, caplen, out);
        case LinkType::ipv4:
            return parse_ipv4(data, caplen, out);
        case LinkType::ipv6:
            return parse_ipv6(data, caplen, out);
        case LinkType::linux_sll: {
            if (caplen < 16) return ParseStatus::malformed;
            uint16_t proto = be16(data + 14);
            return parse_l3(proto, data + 16, caplen - 16, out);
        }
        case LinkType::linux_sll2: {
            if (caplen < 20) return ParseStatus::malformed;
            uint16_t proto = be16(data);
            return parse_l3(proto, data + 20, caplen - 20, out);
        }
        case LinkType::ethernet: {
            if (caplen < 14) return ParseStatus::malformed;
            size_t off = 12;
            uint16_t type = be16(data + off);
            int tags = 0;
            while (type == kEth8021Q || type == kEth8021AD || type == kEthQinQLegacy) {
                if (tags >= kMaxVlanTags || off + 6 > caplen) return ParseStatus::malformed;
                uint16_t vid = be16(data + off + 2) & 0x0fff;
                if (tags == 0) out.key.vlan_id = vid;
                else if (tags == 1) out.key.inner_vlan_id = vid;
                ++tags;
                off += 4;
                type = be16(data + off);
            }
            off += 2;
            return parse_l3(type, data + off, caplen - off, out);
        }
    }
    return ParseStatus::malformed;
}

}  // namespace bpfix
