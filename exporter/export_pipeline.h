#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
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
class ExportPipeline {
public:
    explicit ExportPipeline(const ExporterConfig& cfg);

    asio::io_context& io() { return io_; }
    Transport& transport() { return *transport_; }
    IpfixEncoder& encoder() { return *encoder_; }
    const CollectorUrl& url() const { return url_; }

    void add_flow(const FlowRecord& r) { encoder_->add_flow(r); }
    // Sends templates (UDP) and statistics when their timers are due.
    // `ignored` are the packets/octets the meter could not parse.
    void tick(uint64_t ignored_packets, uint64_t ignored_octets);
    // Statistics now, flush, deliver what is queued; false when records
    // were lost.
    bool finish(uint64_t ignored_packets, uint64_t ignored_octets);

private:
    void add_stats(uint64_t ignored_packets, uint64_t ignored_octets);

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
