#include "packet_report.h"

#include <algorithm>
#include <cstring>

#include "ntp_time.h"
#include "packet_parser.h"

namespace bpfix {

PacketReportRecord make_packet_report(const CapturedPacket& p, size_t max_section) {
    PacketReportRecord r{};
    r.observationTimeNanoseconds = ntp_time_ns(p.ts_ns);
    r.flowDirection = p.direction;
    if (p.direction == BPFIX_DIR_EGRESS) {
        r.egressInterface = p.ifindex;
    } else {
        r.ingressInterface = p.ifindex;
    }
    r.dataLinkFrameSize = static_cast<uint16_t>(std::min<uint32_t>(p.orig_len, 65535));
    size_t len = std::min(p.data.size(), max_section);
    r.dataLinkFrameSection.buf = const_cast<uint8_t*>(p.data.data());
    r.dataLinkFrameSection.len = len;
    ParsedPacket pp;
    if (parse_packet(p.data.data(), p.data.size(), p.orig_len, static_cast<int>(LinkType::ethernet), pp) !=
        ParseStatus::ok) {
        return r;  // the frame alone: template kTemplatePacketOther
    }
    const bpfix_flow_key& k = pp.key;
    r.ipVersion = k.ip_version;
    r.protocolIdentifier = k.protocol;
    r.vlanId = k.vlan_id;
    r.sourceTransportPort = k.src_port;  // 0 for protocols without ports
    r.destinationTransportPort = k.dst_port;
    if (k.ip_version == BPFIX_IPV4) {
        uint32_t a, b;
        std::memcpy(&a, k.src_addr, 4);
        std::memcpy(&b, k.dst_addr, 4);
        r.sourceIPv4Address = __builtin_bswap32(a);
        r.destinationIPv4Address = __builtin_bswap32(b);
    } else {
        std::memcpy(r.sourceIPv6Address, k.src_addr, 16);
        std::memcpy(r.destinationIPv6Address, k.dst_addr, 16);
    }
    return r;
}

}  // namespace bpfix
