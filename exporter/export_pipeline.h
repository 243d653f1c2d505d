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
    // The current collector's transport and encoder.
    Transport& transport() { return *now_->transport; }
    IpfixEncoder& encoder() { return *now_->encoder; }
    const CollectorUrl& url() const { return now_->url; }

    void add_flow(const FlowRecord& r) { now_->encoder->add_flow(r); }
    // Sends templates (UDP) and statistics when their timers are due, and
    // closes a replaced collector's session once its queue is delivered.
    void tick(const MeterLoss& loss);
    // Statistics now, flush, deliver what is queued; false when records
    // were lost.
    bool finish(const MeterLoss& loss);

    // Reload: from now on records go to the collector (URL, transport,
    // observation domain, timers) of `cfg`, in a new transport session.
    // The old one gets its statistics and everything pending, then keeps
    // delivering its queue for up to its drain timeout. Throws
    // bpfix::Error (the running session stays) for an unusable URL.
    void switch_collector(const ExporterConfig& cfg, const MeterLoss& loss);

    // Totals over every session of this run (a reload starts a new one).
    uint64_t flow_records() const;
    uint64_t data_records() const;
    uint64_t messages() const;
    uint64_t packet_reports() const;
    uint64_t records_not_sent() const;

private:
    // One transport session: a collector and the encoder feeding it.
    struct Session {
        ExporterConfig cfg;
        CollectorUrl url;
        std::unique_ptr<Transport> transport;
        std::unique_ptr<IpfixEncoder> encoder;
        std::chrono::steady_clock::time_point retire_by{};
        bool closed = false, delivered = true;
    };
    std::unique_ptr<Session> open_session(const ExporterConfig& cfg);
    void add_stats(Session& s, const MeterLoss& loss);
    bool close_session(Session& s, std::chrono::milliseconds wait);
    template <typename F>
    uint64_t sum(F f) const;

    uint64_t init_ms_;
    InfoModel model_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    uint32_t enrichments_;
    std::unique_ptr<Session> now_;
    // Replaced sessions, kept until the pipeline ends: their sockets'
    // handlers may still run after they are closed.
    std::vector<std::unique_ptr<Session>> old_;
    std::chrono::steady_clock::time_point next_refresh_, next_stats_;
};

}  // namespace bpfix
