#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "filter_rules.h"
#include "flow_table.h"
#include "info_model.h"
#include "transport.h"

namespace bpfix {

// [capture] (live mode): packets on demand, streamed as pcap to clients of
// the live PCAP server. The kernel copies packets only while a client is
// connected.
struct CaptureConfig {
    // The live PCAP server: "PORT" (loopback), "ADDR:PORT" or "[ADDR]:PORT";
    // empty: no capture.
    std::string listen;
    // Networks whose clients may connect; required when `listen` is not a
    // loopback address.
    std::vector<std::string> allow;
    // Which metered interfaces to capture on (names, globs, re:REGEX);
    // empty: all of them.
    std::vector<std::string> interfaces;
    // [[capture.filter]] rules, applied in the kernel (first match wins).
    std::vector<FilterRuleText> filters;
    // A pcap-filter expression (tcpdump syntax), applied in user space to
    // what the rules let through.
    std::string expression;
    uint32_t snaplen = 65535;
    // > 0: only the first N packets of each flow (per direction).
    uint32_t first_packets = 0;
    // N > 1: one matching packet in N (per CPU).
    uint32_t sampling = 1;
    // pcap timestamps in nanoseconds (true) or microseconds (false).
    bool nanoseconds = false;
    // Kernel ring buffer bytes (a power of two).
    uint32_t ring_bytes = 4u << 20;
    // Bytes queued for one client before its packets are dropped.
    size_t client_queue_bytes = 16u << 20;
    uint32_t max_clients = 16;
    // Flows tracked for first_packets.
    uint32_t flow_entries = 65536;
    // Also send every captured packet to the collector as an IPFIX packet
    // report (RFC 7133); capture is then on all the time.
    bool export_reports = false;

    bool enabled() const { return !listen.empty() || export_reports; }
    bool operator==(const CaptureConfig&) const = default;
};

// Every setting of bpfix-exporter. Defaults here; etc/bpfix/exporter.toml
// documents each key; command-line flags override the file.
inline constexpr const char* kDefaultMetrics = "127.0.0.1:9740";

struct ExporterConfig {
    std::string collector = "udp://127.0.0.1:4739";
    // Whether [export] collector or --collector named one: pcap mode, a
    // one-shot run, refuses to send to the default without being told.
    bool collector_given = false;
    uint32_t observation_domain = 1;
    uint32_t pen = kDefaultPen;
    double template_refresh_s = 30.0;
    double stats_interval_s = 60.0;

    TransportOptions transport;
    double drain_timeout_s = 10.0;

    double idle_timeout_s = 15.0;
    double active_timeout_s = 60.0;
    double tcp_end_linger_s = 2.0;
    size_t max_flows = 1'000'000;

    // Live mode: interfaces by name, glob or re:REGEX, minus exclusions.
    std::vector<std::string> interfaces;
    std::vector<std::string> exclude = {"lo"};
    double drain_interval_s = 1.0;
    // Entries of each of the two kernel flow maps: flows active within one
    // drain interval. Preallocated in the kernel (per CPU), so not huge.
    uint32_t map_entries = 65536;
    // 1: every packet; N > 1: one packet in N (systematic, per CPU).
    uint32_t sampling = 1;
    // Slots of the per-CPU flow cache in front of each kernel flow map (a
    // power of two; 0: none).
    uint32_t cache_slots = 4096;
    // "auto" (TCX where the kernel has it, else classic tc), "tcx" or "tc".
    std::string attach = "auto";
    // [[live.filter]] rules, first match wins.
    std::vector<FilterRuleText> filters;

    // [enrich] (live mode): kernel packet drops on the flow records.
    bool enrich_drops = true;
    // [enrich] DNS on the flow records (live and pcap mode).
    bool enrich_dns = true;
    std::vector<uint16_t> dns_ports = {53};
    double dns_timeout_s = 5.0;
    // [enrich] TCP RTT on the flow records (live: the kernel's; pcap: the
    // handshake's).
    bool enrich_rtt = true;
    // Live mode: which RTT hook to load: "auto" (probe fentry, tp_btf,
    // kprobe in that order), or one of "fentry", "tp_btf", "kprobe" only.
    std::string rtt_hook = "auto";

    CaptureConfig capture;

    std::string pcap_file;
    uint32_t pcap_interface_index = 0;
    uint8_t pcap_direction = 0;  // flowDirection: 0 ingress, 1 egress

    std::string log_level = "info";
    // Live mode: Prometheus /metrics and /health on ADDR:PORT; "off": none.
    // Empty: kDefaultMetrics where it can be bound (a namespace whose
    // loopback is down has none), with a warning otherwise; a value given
    // in the config or on the command line must bind or the start fails.
    std::string metrics;

    FlowTableConfig flow_table() const;
};

// Reads a TOML file over `cfg`. Throws bpfix::Error naming the file, the
// key and the problem (unknown keys are errors, not ignored).
void load_exporter_config(const std::string& path, ExporterConfig& cfg);

// Checks ranges and cross-field rules; throws bpfix::Error naming the key.
void validate_exporter_config(const ExporterConfig& cfg);

}  // namespace bpfix
