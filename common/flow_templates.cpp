#include "flow_templates.h"

namespace bpfix {

#define SPEC(name, len, flags) {const_cast<char*>(name), len, flags}

fbInfoElementSpec_t kFlowRecordSpec[] = {
    SPEC("flowStartMilliseconds", 8, 0),
    SPEC("flowEndMilliseconds", 8, 0),
    SPEC("octetDeltaCount", 8, 0),
    SPEC("packetDeltaCount", 8, 0),
    SPEC("sourceIPv6Address", 16, kSpecV6),
    SPEC("destinationIPv6Address", 16, kSpecV6),
    SPEC("interfaceName", 16, 0),
    SPEC("sourceIPv4Address", 4, kSpecV4),
    SPEC("destinationIPv4Address", 4, kSpecV4),
    SPEC("ingressInterface", 4, 0),
    SPEC("egressInterface", 4, 0),
    SPEC("sourceTransportPort", 2, 0),
    SPEC("destinationTransportPort", 2, 0),
    // 16 bits in memory (NS as 0x100); one octet on the wire, the eight
    // flags of the TCP header's flags byte: nfacctd (pmacct 1.7.7) reads the
    // element only when it is one octet, as most exporters send it.
    SPEC("tcpControlBits", 2, kSpecInternal),
    SPEC("tcpControlBits", 1, kSpecWire),
    SPEC("icmpTypeCodeIPv4", 2, kSpecV4),
    SPEC("icmpTypeCodeIPv6", 2, kSpecV6),
    SPEC("vlanId", 2, 0),
    SPEC("dot1qCustomerVlanId", 2, 0),
    SPEC("protocolIdentifier", 1, 0),
    SPEC("ipClassOfService", 1, 0),
    SPEC("flowDirection", 1, 0),
    SPEC("flowEndReason", 1, 0),
    SPEC("paddingOctets", 6, kSpecInternal),
    SPEC("droppedOctetDeltaCount", 8, kSpecDrops),
    SPEC("droppedPacketDeltaCount", 8, kSpecDrops),
    SPEC("bpfixDropReason", FB_IE_VARLEN, kSpecDrops),
    SPEC("bpfixDropTcpState", 1, kSpecDrops),
    SPEC("paddingOctets", 7, kSpecInternal | kSpecDrops),
    SPEC("bpfixDnsMessages", 4, kSpecDns),
    SPEC("bpfixDnsAnswered", 4, kSpecDns),
    SPEC("bpfixDnsUnanswered", 4, kSpecDns),
    SPEC("bpfixDnsLatencyMicroseconds", 4, kSpecDns),
    SPEC("bpfixDnsMaxLatencyMicroseconds", 4, kSpecDns),
    SPEC("bpfixDnsId", 2, kSpecDns),
    SPEC("bpfixDnsFlags", 2, kSpecDns),
    SPEC("bpfixDnsQueryType", 2, kSpecDns),
    SPEC("bpfixDnsResponseCode", 1, kSpecDns),
    SPEC("paddingOctets", 5, kSpecInternal | kSpecDns),
    SPEC("bpfixDnsQueryName", FB_IE_VARLEN, kSpecDns),
    SPEC("bpfixTcpRttMinMicroseconds", 4, kSpecRtt),
    SPEC("bpfixTcpRttMaxMicroseconds", 4, kSpecRtt),
    SPEC("bpfixTcpRttLastMicroseconds", 4, kSpecRtt),
    SPEC("bpfixTcpRttSamples", 4, kSpecRtt),
    SPEC("bpfixTcpRttMethod", 1, kSpecRtt),
    SPEC("paddingOctets", 7, kSpecInternal | kSpecRtt),
    FB_IESPEC_NULL,
};

fbInfoElementSpec_t kStatsRecordSpec[] = {
    SPEC("observationDomainId", 4, 0),
    SPEC("paddingOctets", 4, kSpecInternal),
    SPEC("exportedMessageTotalCount", 8, 0),
    SPEC("exportedFlowRecordTotalCount", 8, 0),
    SPEC("exportedOctetTotalCount", 8, 0),
    SPEC("ignoredPacketTotalCount", 8, 0),
    SPEC("ignoredOctetTotalCount", 8, 0),
    SPEC("notSentFlowTotalCount", 8, 0),
    SPEC("notSentPacketTotalCount", 8, 0),
    SPEC("notSentOctetTotalCount", 8, 0),
    SPEC("systemInitTimeMilliseconds", 8, 0),
    FB_IESPEC_NULL,
};

fbInfoElementSpec_t kSamplingRecordSpec[] = {
    SPEC("observationDomainId", 4, 0),
    SPEC("samplingPacketInterval", 4, 0),
    SPEC("samplingPacketSpace", 4, 0),
    SPEC("selectorAlgorithm", 2, 0),
    SPEC("paddingOctets", 2, kSpecInternal),
    SPEC("selectorId", 8, 0),
    SPEC("selectorIdTotalPktsObserved", 8, 0),
    SPEC("selectorIdTotalPktsSelected", 8, 0),
    FB_IESPEC_NULL,
};

fbInfoElementSpec_t kDropReasonRecordSpec[] = {
    SPEC("observationDomainId", 4, 0),
    SPEC("paddingOctets", 4, kSpecInternal),
    SPEC("bpfixDropReason", FB_IE_VARLEN, 0),
    SPEC("droppedPacketTotalCount", 8, 0),
    SPEC("droppedOctetTotalCount", 8, 0),
    FB_IESPEC_NULL,
};

fbInfoElementSpec_t kPacketReportSpec[] = {
    SPEC("observationTimeNanoseconds", 8, 0),
    SPEC("sourceIPv6Address", 16, kSpecV6),
    SPEC("destinationIPv6Address", 16, kSpecV6),
    SPEC("sourceIPv4Address", 4, kSpecV4),
    SPEC("destinationIPv4Address", 4, kSpecV4),
    SPEC("ingressInterface", 4, 0),
    SPEC("egressInterface", 4, 0),
    SPEC("sourceTransportPort", 2, kSpecIp),
    SPEC("destinationTransportPort", 2, kSpecIp),
    SPEC("dataLinkFrameSize", 2, 0),
    SPEC("vlanId", 2, 0),
    SPEC("protocolIdentifier", 1, kSpecIp),
    SPEC("flowDirection", 1, 0),
    SPEC("paddingOctets", 6, kSpecInternal),
    SPEC("dataLinkFrameSection", FB_IE_VARLEN, 0),
    FB_IESPEC_NULL,
};

#undef SPEC

}  // namespace bpfix
