// A captured packet as an IPFIX packet report (RFC 7133): its first bytes
// (dataLinkFrameSection), its length, when and where it was seen, and the
// flow key its headers give (the pcap path's parser).
#pragma once

#include <cstddef>

#include "flow_templates.h"
#include "packet_capture.h"

namespace bpfix {

// The section is cut at `max_section` bytes (what one message holds) and
// points into `p.data`, which must outlive the encoding.
PacketReportRecord make_packet_report(const CapturedPacket& p, size_t max_section);

}  // namespace bpfix
