#include "pcap_export.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "enrichment.h"
#include "export_pipeline.h"
#include "flow_meter.h"
#include "pcap_source.h"

namespace bpfix {

int run_pcap_export(const ExporterConfig& cfg) {
    // DNS from the packets, RTT from the handshakes (packet timestamps).
    Enrichment enrich(cfg, true);
    ExportPipeline out(cfg, enrich.spec_flags());
    PcapSource source(cfg.pcap_file);
    FlowMeter meter(cfg.flow_table(), cfg.pcap_interface_index, cfg.pcap_direction,
                    [&out](const FlowRecord& r) { out.add_flow(r); });
    meter.set_observer(&enrich);
    enrich.attach(meter.table());

    spdlog::info("metering {} (link type {}) to {}", cfg.pcap_file, source.link_type(), out.url().str());
    bool more = true;
    while (more) {
        out.io().poll();
        if (!out.transport().ready()) {
            // Connecting, or the collector is slower than the file: wait for
            // the socket rather than drop.
            out.io().run_one_for(std::chrono::milliseconds(50));
            continue;
        }
        more = source.read_batch(meter, 4096);
        out.tick(MeterLoss{meter.counters().malformed, meter.counters().malformed_octets, 0, 0});
    }
    meter.finish();
    bool delivered = out.finish(MeterLoss{meter.counters().malformed, meter.counters().malformed_octets, 0, 0});

    const auto& c = meter.counters();
    if (c.malformed) {
        spdlog::warn("{} frames could not be parsed and were skipped (exported as ignoredPacketTotalCount)",
                     c.malformed);
    }
    const std::pair<uint64_t, uint64_t> enrich_unenriched{enrich.dns_unenriched(), enrich.rtt_unenriched()};
    if (enrich_unenriched.first || enrich_unenriched.second) {
        spdlog::warn("{} DNS messages and {} TCP handshakes are not in their flow's record: the enricher's tables "
                     "were full (as many entries as [flows] max_flows; raise it)",
                     enrich_unenriched.first, enrich_unenriched.second);
    }
    if (!delivered) {
        spdlog::error("{} records were not delivered to {} (see the errors above)",
                      out.transport().records_not_sent(), out.url().str());
    }
    std::fflush(stderr);
    fmt::print(stderr,
               "bpfix-exporter: summary: frames={} ip_packets={} ip_octets={} non_ip={} malformed={} flows={} "
               "metadata_records={} records={} messages={} not_sent_records={} dns_unenriched={} rtt_unenriched={}\n",
               c.frames, c.ip_packets, c.ip_octets, c.non_ip, c.malformed, out.encoder().flow_records(),
               out.encoder().data_records() - out.encoder().flow_records() - out.encoder().packet_reports(),
               out.encoder().data_records(), out.encoder().messages(), out.transport().records_not_sent(),
               enrich_unenriched.first, enrich_unenriched.second);
    return delivered ? 0 : 1;
}

}  // namespace bpfix
