// The user-space enrichers of flow records: DNS (both modes) and the TCP
// handshake RTT (pcap mode). Fed packets (pcap mode, as a PacketObserver)
// or DNS events (live mode, through DnsRing), they fill a record's
// enrichment elements when its flow ends.
#pragma once

#include <memory>
#include <string>

#include "dns.h"
#include "exporter_config.h"
#include "flow_meter.h"
#include "tcp_rtt.h"

namespace bpfix {

class Enrichment : public PacketObserver {
public:
    // `handshake_rtt`: estimate RTT from handshakes (pcap mode; live mode
    // takes the kernel's).
    Enrichment(const ExporterConfig& cfg, bool handshake_rtt);

    // kSpecDns / kSpecRtt for what this object fills.
    uint32_t spec_flags() const;
    DnsEnricher* dns() { return dns_.get(); }
    // The kernel cannot supply DNS (live mode): no DNS elements.
    void disable_dns() { dns_.reset(); }

    // DNS messages and TCP handshakes left out of their flow's record
    // because the enricher's tables were full (as many entries as the flow
    // table's max_flows): a loss, printed in the summary and /metrics.
    uint64_t dns_unenriched() const;
    uint64_t rtt_unenriched() const;

    void clock(uint64_t now_ns) override;
    void packet(const ParsedPacket& p, uint64_t ts_ns, uint32_t* ext) override;
    // Fills the DNS and RTT elements of `r` (`ext`: the flow's number, as
    // FlowTable::Enrich gives it); the query name it points to lives in
    // this object until the next call.
    void enrich(const bpfix_flow_key& key, uint32_t& ext, FlowRecord& r);
    // Enriches the records of `table` (pcap mode: the flows keep their DNS
    // summary number in the table, FlowTable::ext).
    void attach(FlowTable& table);

private:
    std::unique_ptr<DnsEnricher> dns_;
    std::unique_ptr<HandshakeRttEstimator> handshake_;
    std::string qname_;
};

}  // namespace bpfix
