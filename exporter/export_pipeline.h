#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <memory>

#include "collector_url.h"
#include "exporter_config.h"
#include "info_model.h"
#include "ipfix_encoder.h"
#include "transport.h"

namespace bpfix {

// What both metering modes feed: the IPFIX encoder on its transport, the
// UDP template refresh and the statistics record on their timers, and the
// final drain. One asio io_context drives the sockets.
// What a meter could not put into flows, for the statistics record.
struct MeterLoss {
    uint64_t ignored_packets = 0, ignored_octets = 0;    // could not be parsed
    uint64_t not_sent_packets = 0, not_sent_octets = 0;  // parsed, but no room in a flow table
    // Sampling (live mode): interval 1 means every packet, and no record.
    uint32_t sampling_interval = 1;
    uint64_t observed_packets = 0, selected_packets = 0;
    // Kernel drops attributed to no flow, totals per drop reason name
    // (packets, octets); sent as options template 261 with the statistics
    // when the drops enrichment is on.
    std::map<std::string, std::pair<uint64_t, uint64_t>> unattributed_drops = {};
};

class ExportPipeline {
public:
    // `enrichments` (kSpecDrops, ...): the optional elements the flow
    // templates carry, for the enrichers that are running.
    explicit ExportPipeline(const ExporterConfig& cfg, uint32_t enrichments = 0);

    asio::io_context& io() { return io_; }
    Transport& transport() { return *transport_; }
    IpfixEncoder& encoder() { return *encoder_; }
    const CollectorUrl& url() const { return url_; }

    void add_flow(const FlowRecord& r) { encoder_->add_flow(r); }
    // Sends templates (UDP) and statistics when their timers are due.
    void tick(const MeterLoss& loss);
    // Statistics now, flush, deliver what is queued; false when records
    // were lost.
    bool finish(const MeterLoss& loss);

private:
    void add_stats(const MeterLoss& loss);

    const ExporterConfig& cfg_;
    uint64_t init_ms_;
    InfoModel model_;
    CollectorUrl url_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::unique_ptr<IpfixEncoder> encoder_;
    std::unique_ptr<Transport> transport_;
    std::chrono::steady_clock::time_point next_refresh_, next_stats_;
};

}  // namespace bpfix
