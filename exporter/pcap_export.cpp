#include "pcap_export.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>

#include "collector_url.h"
#include "flow_meter.h"
#include "info_model.h"
#include "ipfix_encoder.h"
#include "pcap_source.h"
#include "transport.h"

namespace bpfix {

namespace {

uint64_t wall_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::chrono::milliseconds seconds(double s) {
    return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

}  // namespace

int run_pcap_export(const ExporterConfig& cfg) {
    const uint64_t init_ms = wall_ms();
    InfoModel model(cfg.pen);
    CollectorUrl url = parse_collector_url(cfg.collector);
    PcapSource source(cfg.pcap_file);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::unique_ptr<IpfixEncoder> encoder;
    auto transport = make_transport(url, cfg.transport, io, [&encoder]() -> const std::vector<IpfixMessage>& {
        return encoder->template_messages();
    });
    encoder = std::make_unique<IpfixEncoder>(model, cfg.observation_domain, transport->max_message_size(),
                                             [&transport](IpfixMessage&& m) { transport->send(std::move(m)); });

    FlowMeter meter(cfg.flow_table(), cfg.pcap_interface_index, cfg.pcap_direction,
                    [&encoder](const FlowRecord& r) { encoder->add_flow(r); });

    auto add_stats = [&] {
        StatsRecord s{};
        s.observationDomainId = cfg.observation_domain;
        s.exportedMessageTotalCount = encoder->messages();
        s.exportedFlowRecordTotalCount = encoder->flow_records();
        s.exportedOctetTotalCount = encoder->octets();
        s.ignoredPacketTotalCount = meter.counters().malformed;
        s.ignoredOctetTotalCount = meter.counters().malformed_octets;
        s.notSentFlowTotalCount = transport->records_not_sent();
        s.systemInitTimeMilliseconds = init_ms;
        encoder->add_stats(s);
    };

    spdlog::info("metering {} (link type {}) to {}", cfg.pcap_file, source.link_type(), url.str());
    using clock = std::chrono::steady_clock;
    auto next_refresh = clock::now() + seconds(cfg.template_refresh_s);
    auto next_stats = clock::now() + seconds(cfg.stats_interval_s);
    bool more = true;
    while (more) {
        io.poll();
        if (!transport->ready()) {
            // Connecting, or the collector is slower than the file: wait for
            // the socket rather than drop.
            io.run_one_for(std::chrono::milliseconds(50));
            continue;
        }
        more = source.read_batch(meter, 4096);
        auto now = clock::now();
        if (transport->needs_template_refresh() && now >= next_refresh) {
            encoder->export_templates();
            next_refresh = now + seconds(cfg.template_refresh_s);
        }
        if (now >= next_stats) {
            add_stats();
            next_stats = now + seconds(cfg.stats_interval_s);
        }
    }
    meter.finish();
    encoder->flush();
    add_stats();
    encoder->flush();
    io.poll();
    work.reset();
    bool delivered = transport->finish(io, seconds(cfg.drain_timeout_s));

    const auto& c = meter.counters();
    if (c.malformed) {
        spdlog::warn("{} frames could not be parsed and were skipped (exported as ignoredPacketTotalCount)",
                     c.malformed);
    }
    if (!delivered) {
        spdlog::error("{} records were not delivered to {} (see the errors above)", transport->records_not_sent(),
                      url.str());
    }
    std::fflush(stderr);
    fmt::print(stderr,
               "bpfix-exporter: summary: frames={} ip_packets={} ip_octets={} non_ip={} malformed={} flows={} "
               "records={} messages={} not_sent_records={}\n",
               c.frames, c.ip_packets, c.ip_octets, c.non_ip, c.malformed, encoder->flow_records(),
               encoder->data_records(), encoder->messages(), transport->records_not_sent());
    return delivered ? 0 : 1;
}

}  // namespace bpfix
