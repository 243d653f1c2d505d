// Every record bpfix exports is declared here, and only here: the in-memory
// record layouts (libfixbuf internal templates) and the templates sent on the
// wire (external templates), chosen from one element list by flags.
#pragma once

#include <fixbuf/public.h>

#include <cstdint>

namespace bpfix {

inline constexpr uint16_t kTemplateFlowV4 = 256;
inline constexpr uint16_t kTemplateFlowV6 = 257;
inline constexpr uint16_t kTemplateStats = 258;
inline constexpr uint16_t kTemplateTypeInfo = 259;  // RFC 5610 type records
inline constexpr uint16_t kTemplateSampling = 260;  // how packets were selected (RFC 5476)
inline constexpr uint16_t kTemplateDropReasons = 261;  // drops attributed to no flow, per reason
// Packet reports (RFC 7133 data link frame sections): frames with an IPv4
// header, with an IPv6 header, and any other frame.
inline constexpr uint16_t kTemplatePacketV4 = 262;
inline constexpr uint16_t kTemplatePacketV6 = 263;
inline constexpr uint16_t kTemplatePacketOther = 264;
// Internal-only template ids (never on the wire).
inline constexpr uint16_t kInternalFlow = 0x8000;
inline constexpr uint16_t kInternalStats = 0x8001;
inline constexpr uint16_t kInternalTypeInfo = 0x8002;
inline constexpr uint16_t kInternalSampling = 0x8003;
inline constexpr uint16_t kInternalDropReasons = 0x8004;
inline constexpr uint16_t kInternalPacket = 0x8005;

// Spec flags: an element is in a template when (spec.flags & tmpl_flags) ==
// spec.flags. Internal templates use every flag.
inline constexpr uint32_t kSpecV4 = 0x1;
inline constexpr uint32_t kSpecV6 = 0x2;
// Enrichment: the flow templates carry these elements only when the
// enricher is on (IpfixEncoder's `enrichments`).
inline constexpr uint32_t kSpecDrops = 0x4;
inline constexpr uint32_t kSpecDns = 0x8;
inline constexpr uint32_t kSpecRtt = 0x10;
// Packet report elements that need an IP header (ports, protocol).
inline constexpr uint32_t kSpecIp = 0x20;
// Not an element flag: IpfixEncoder's `enrichments` asks with it for the
// packet report templates.
inline constexpr uint32_t kSpecPacketReports = 0x40;
inline constexpr uint32_t kSpecEnrichments = kSpecDrops | kSpecDns | kSpecRtt;
inline constexpr uint32_t kSpecInternal = 0x80;  // padding: memory layout only
// The wire form of the element just before it in the spec, which is in
// memory only (kSpecInternal): a reduced-size encoding (RFC 7011 6.2).
// External flow templates carry it.
inline constexpr uint32_t kSpecWire = 0x100;
inline constexpr uint32_t kSpecAll = 0xffffffff;

// flowEndReason (IANA 136).
enum class FlowEndReason : uint8_t {
    idle_timeout = 1,
    active_timeout = 2,
    end_detected = 3,
    forced_end = 4,
    lack_of_resources = 5,
};

// One flow record, both families. Field order and sizes follow
// kFlowRecordSpec exactly; there is no implicit padding.
struct FlowRecord {
    uint64_t flowStartMilliseconds;
    uint64_t flowEndMilliseconds;
    uint64_t octetDeltaCount;
    uint64_t packetDeltaCount;
    uint8_t sourceIPv6Address[16];
    uint8_t destinationIPv6Address[16];
    char interfaceName[16];  // the observation interface; empty in pcap mode
    uint32_t sourceIPv4Address;  // host byte order, as libfixbuf expects
    uint32_t destinationIPv4Address;
    uint32_t ingressInterface;
    uint32_t egressInterface;
    uint16_t sourceTransportPort;
    uint16_t destinationTransportPort;
    uint16_t tcpControlBits;
    uint16_t icmpTypeCodeIPv4;
    uint16_t icmpTypeCodeIPv6;
    uint16_t vlanId;
    uint16_t dot1qCustomerVlanId;
    uint8_t protocolIdentifier;
    uint8_t ipClassOfService;
    uint8_t flowDirection;
    uint8_t flowEndReason;
    uint8_t ipVersion;  // selects the template; not exported
    uint8_t padding[1];
    uint32_t dropReasonCode;  // kernel enum skb_drop_reason value; not exported (the name is)
    // Drops (kSpecDrops): packets of this flow's key the kernel dropped.
    uint64_t droppedOctetDeltaCount;
    uint64_t droppedPacketDeltaCount;
    fbVarfield_t bpfixDropReason;  // name of the latest drop reason; must outlive the encoding
    uint8_t bpfixDropTcpState;     // TCP state of the latest drop's socket (1 ESTABLISHED ..); 0: none
    uint8_t dropPadding[7];
    // DNS (kSpecDns): the DNS messages of this flow since its last record
    // (docs/fields.md: a query flow reports its last query, a response flow
    // its last response and latencies).
    uint32_t bpfixDnsMessages;
    uint32_t bpfixDnsAnswered;
    uint32_t bpfixDnsUnanswered;
    uint32_t bpfixDnsLatencyMicroseconds;
    uint32_t bpfixDnsMaxLatencyMicroseconds;
    uint16_t bpfixDnsId;
    uint16_t bpfixDnsFlags;
    uint16_t bpfixDnsQueryType;
    uint8_t bpfixDnsResponseCode;
    uint8_t dnsPadding[5];
    fbVarfield_t bpfixDnsQueryName;  // must outlive the encoding
    // TCP round-trip time (kSpecRtt), microseconds, over the record's
    // interval; the method says where it comes from (see docs/fields.md).
    uint32_t bpfixTcpRttMinMicroseconds;
    uint32_t bpfixTcpRttMaxMicroseconds;
    uint32_t bpfixTcpRttLastMicroseconds;
    uint32_t bpfixTcpRttSamples;
    uint8_t bpfixTcpRttMethod;
    uint8_t rttPadding[7];
};
static_assert(sizeof(FlowRecord) == 232, "FlowRecord must match kFlowRecordSpec");

// bpfixTcpRttMethod values.
enum class RttMethod : uint8_t {
    none = 0,
    kernel_srtt = 1,  // the kernel's smoothed RTT of the local socket (live mode)
    handshake = 2,    // SYN to first ACK as seen at the capture point (pcap mode)
};

// Exporter statistics (RFC 7011 §4 style), options template scoped by
// observationDomainId.
struct StatsRecord {
    uint32_t observationDomainId;  // scope
    uint8_t padding[4];
    uint64_t exportedMessageTotalCount;
    uint64_t exportedFlowRecordTotalCount;
    uint64_t exportedOctetTotalCount;
    uint64_t ignoredPacketTotalCount;
    uint64_t ignoredOctetTotalCount;
    uint64_t notSentFlowTotalCount;
    uint64_t notSentPacketTotalCount;  // metered but not in any flow (kernel map full)
    uint64_t notSentOctetTotalCount;
    uint64_t systemInitTimeMilliseconds;
};
static_assert(sizeof(StatsRecord) == 80, "StatsRecord must match kStatsRecordSpec");

// Packet selection (RFC 5476/5477), options template scoped by
// observationDomainId: systematic count-based, one packet selected then
// samplingPacketSpace skipped. Flow counters are not scaled: multiply by
// (interval + space) / interval to estimate the traffic.
struct SamplingRecord {
    uint32_t observationDomainId;  // scope
    uint32_t samplingPacketInterval;
    uint32_t samplingPacketSpace;
    uint16_t selectorAlgorithm;  // 1: systematic count-based sampling
    uint8_t padding[2];
    uint64_t selectorId;
    uint64_t selectorIdTotalPktsObserved;
    uint64_t selectorIdTotalPktsSelected;
};
static_assert(sizeof(SamplingRecord) == 40, "SamplingRecord must match kSamplingRecordSpec");

// Drops that were attributed to no exported flow (not IP, headers
// unreadable, or no metered flow with their key), totals since start per
// kernel drop reason: options template scoped by observationDomainId and
// the reason name.
struct DropReasonRecord {
    uint32_t observationDomainId;  // scope
    uint8_t padding[4];
    fbVarfield_t bpfixDropReason;  // scope
    uint64_t droppedPacketTotalCount;
    uint64_t droppedOctetTotalCount;
};
static_assert(sizeof(DropReasonRecord) == 40, "DropReasonRecord must match kDropReasonRecordSpec");

// One captured frame (RFC 7133 packet report): its first bytes, its length,
// when and where it was seen, and the flow key fields its headers give.
// Field order and sizes follow kPacketReportSpec exactly.
struct PacketReportRecord {
    uint64_t observationTimeNanoseconds;  // NTP format, as on the wire (ntp_time.h)
    uint8_t sourceIPv6Address[16];
    uint8_t destinationIPv6Address[16];
    uint32_t sourceIPv4Address;  // host byte order, as libfixbuf expects
    uint32_t destinationIPv4Address;
    uint32_t ingressInterface;
    uint32_t egressInterface;
    uint16_t sourceTransportPort;
    uint16_t destinationTransportPort;
    uint16_t dataLinkFrameSize;  // the whole frame; 65535 for a larger (GSO) one
    uint16_t vlanId;
    uint8_t protocolIdentifier;
    uint8_t flowDirection;
    uint8_t ipVersion;  // selects the template (4, 6, 0: none); not exported
    uint8_t padding[5];
    fbVarfield_t dataLinkFrameSection;  // must outlive the encoding
};
static_assert(sizeof(PacketReportRecord) == 88, "PacketReportRecord must match kPacketReportSpec");

extern fbInfoElementSpec_t kFlowRecordSpec[];
extern fbInfoElementSpec_t kPacketReportSpec[];
extern fbInfoElementSpec_t kDropReasonRecordSpec[];
inline constexpr uint32_t kDropReasonScopeCount = 2;
extern fbInfoElementSpec_t kSamplingRecordSpec[];
extern fbInfoElementSpec_t kStatsRecordSpec[];
inline constexpr uint32_t kStatsScopeCount = 1;

}  // namespace bpfix
