#include "enrichment.h"

#include <algorithm>

namespace bpfix {

namespace {

uint32_t micros(uint64_t ns) { return static_cast<uint32_t>(std::min<uint64_t>(ns / 1000, UINT32_MAX)); }

// Handshakes not completed within this long are forgotten.
constexpr uint64_t kHandshakeLifetimeNs = 120'000'000'000ULL;

}  // namespace

Enrichment::Enrichment(const ExporterConfig& cfg, bool handshake_rtt) {
    if (cfg.enrich_dns) {
        DnsEnricher::Config d;
        d.timeout_ns = static_cast<uint64_t>(cfg.dns_timeout_s * 1e9);
        d.ports = cfg.dns_ports;
        // A summary per open flow at most: as many as the flow table holds.
        d.max_flows = cfg.flow_table().max_flows;
        dns_ = std::make_unique<DnsEnricher>(d);
    }
    if (cfg.enrich_rtt && handshake_rtt) {
        handshake_ = std::make_unique<HandshakeRttEstimator>(cfg.flow_table().max_flows);
    }
}

uint64_t Enrichment::dns_unenriched() const { return dns_ ? dns_->overflow() : 0; }

uint64_t Enrichment::rtt_unenriched() const { return handshake_ ? handshake_->overflow() : 0; }

uint32_t Enrichment::spec_flags() const { return (dns_ ? kSpecDns : 0) | (handshake_ ? kSpecRtt : 0); }

void Enrichment::clock(uint64_t now_ns) {
    if (dns_) dns_->advance(now_ns);
    if (handshake_ && now_ns > kHandshakeLifetimeNs) handshake_->expire(now_ns - kHandshakeLifetimeNs);
}

void Enrichment::attach(FlowTable& table) {
    table.set_enrich([this](const bpfix_flow_key& k, uint32_t& ext, FlowRecord& r) { enrich(k, ext, r); },
                     [this](const bpfix_flow_key&, uint32_t ext) {
                         if (dns_) dns_->prefetch(ext);
                     });
    if (dns_) dns_->set_locator([&table](const bpfix_flow_key& k) { return table.ext_of(k); });
}

void Enrichment::packet(const ParsedPacket& p, uint64_t ts_ns, uint32_t* ext) {
    if (dns_ && p.payload_len && dns_->wants(p.key)) {
        dns_->packet(p.key, ts_ns, std::span<const uint8_t>(p.payload, p.payload_len), ext);
    }
    if (handshake_ && p.key.protocol == BPFIX_PROTO_TCP && !p.fragment) handshake_->packet(p.key, ts_ns, p.tcp_flags);
}

void Enrichment::enrich(const bpfix_flow_key& key, uint32_t& ext, FlowRecord& r) {
    if (dns_) {
        if (auto s = dns_->take(key, &ext)) {
            r.bpfixDnsMessages = s->messages;
            r.bpfixDnsAnswered = s->answered;
            r.bpfixDnsUnanswered = s->unanswered;
            r.bpfixDnsLatencyMicroseconds = s->answered ? s->last_latency_us : 0;
            r.bpfixDnsMaxLatencyMicroseconds = s->answered ? s->max_latency_us : 0;
            r.bpfixDnsId = s->id;
            r.bpfixDnsFlags = s->flags;
            r.bpfixDnsQueryType = s->qtype;
            r.bpfixDnsResponseCode = s->response() ? static_cast<uint8_t>(s->flags & 0xf) : 0;
            qname_.assign(s->qname.view());
            r.bpfixDnsQueryName.buf = reinterpret_cast<uint8_t*>(qname_.data());
            r.bpfixDnsQueryName.len = qname_.size();
        }
    }
    if (handshake_) {
        if (auto h = handshake_->take(key)) {
            r.bpfixTcpRttMinMicroseconds = r.bpfixTcpRttMaxMicroseconds = r.bpfixTcpRttLastMicroseconds =
                micros(h->rtt_ns);
            r.bpfixTcpRttSamples = 1;
            r.bpfixTcpRttMethod = static_cast<uint8_t>(RttMethod::handshake);
        }
    }
}

}  // namespace bpfix
