#include "export_pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace bpfix {

namespace {

uint64_t wall_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::chrono::milliseconds seconds(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

}  // namespace

ExportPipeline::ExportPipeline(const ExporterConfig& cfg, uint32_t enrichments)
    : init_ms_(wall_ms()), model_(cfg.pen), work_(asio::make_work_guard(io_)), enrichments_(enrichments) {
    now_ = open_session(cfg);
}

std::unique_ptr<ExportPipeline::Session> ExportPipeline::open_session(const ExporterConfig& cfg) {
    auto s = std::make_unique<Session>();
    s->cfg = cfg;
    s->url = parse_collector_url(cfg.collector);
    Session* raw = s.get();
    // The transport asks the encoder for templates when it (re)connects; the
    // encoder needs the transport's message size: build the transport first.
    s->transport = make_transport(s->url, cfg.transport, io_, [raw]() -> const std::vector<IpfixMessage>& {
        return raw->encoder->template_messages();
    });
    s->encoder = std::make_unique<IpfixEncoder>(model_, cfg.observation_domain, s->transport->max_message_size(),
                                                [raw](IpfixMessage&& m) { raw->transport->send(std::move(m)); },
                                                enrichments_);
    auto now = std::chrono::steady_clock::now();
    next_refresh_ = now + seconds(cfg.template_refresh_s);
    next_stats_ = now + seconds(cfg.stats_interval_s);
    return s;
}

void ExportPipeline::add_stats(Session& sess, const MeterLoss& loss) {
    IpfixEncoder& enc = *sess.encoder;
    const uint32_t domain = sess.cfg.observation_domain;
    StatsRecord s{};
    s.observationDomainId = domain;
    s.exportedMessageTotalCount = enc.messages();
    s.exportedFlowRecordTotalCount = enc.flow_records();
    s.exportedOctetTotalCount = enc.octets();
    s.ignoredPacketTotalCount = loss.ignored_packets;
    s.ignoredOctetTotalCount = loss.ignored_octets;
    s.notSentPacketTotalCount = loss.not_sent_packets;
    s.notSentOctetTotalCount = loss.not_sent_octets;
    s.notSentFlowTotalCount = sess.transport->records_not_sent();
    s.systemInitTimeMilliseconds = init_ms_;
    enc.add_stats(s);
    if (loss.sampling_interval > 1) {
        SamplingRecord r{};
        r.observationDomainId = domain;
        r.samplingPacketInterval = 1;
        r.samplingPacketSpace = loss.sampling_interval - 1;
        r.selectorAlgorithm = 1;
        r.selectorId = 1;
        r.selectorIdTotalPktsObserved = loss.observed_packets;
        r.selectorIdTotalPktsSelected = loss.selected_packets;
        enc.add_sampling(r);
    }
    if (enc.enrichments() & kSpecDrops) {
        for (const auto& [name, counts] : loss.unattributed_drops) {
            DropReasonRecord d{};
            d.observationDomainId = domain;
            d.bpfixDropReason.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
            d.bpfixDropReason.len = name.size();
            d.droppedPacketTotalCount = counts.first;
            d.droppedOctetTotalCount = counts.second;
            enc.add_drop_reason(d);
        }
    }
}

bool ExportPipeline::close_session(Session& s, std::chrono::milliseconds wait) {
    if (s.closed) return s.delivered;
    s.closed = true;
    s.delivered = s.transport->finish(io_, wait);
    return s.delivered;
}

void ExportPipeline::tick(const MeterLoss& loss) {
    auto now = std::chrono::steady_clock::now();
    if (now_->transport->needs_template_refresh() && now >= next_refresh_) {
        now_->encoder->export_templates();
        next_refresh_ = now + seconds(now_->cfg.template_refresh_s);
    }
    if (now >= next_stats_) {
        add_stats(*now_, loss);
        next_stats_ = now + seconds(now_->cfg.stats_interval_s);
    }
    // A replaced session closes once its queue is out (or its time is up:
    // what is left is counted as not sent). Closing waits for nothing.
    for (auto& s : old_) {
        if (!s->closed && (s->transport->queued_bytes() == 0 || now >= s->retire_by)) {
            close_session(*s, std::chrono::milliseconds(0));
            spdlog::info("collector {}: session closed after the reload ({} flow records, {} not sent)",
                         s->url.str(), s->encoder->flow_records(), s->transport->records_not_sent());
        }
    }
}

void ExportPipeline::switch_collector(const ExporterConfig& cfg, const MeterLoss& loss) {
    auto next = open_session(cfg);  // throws before anything changes
    now_->encoder->flush();
    add_stats(*now_, loss);
    now_->encoder->flush();
    now_->retire_by = std::chrono::steady_clock::now() + seconds(now_->cfg.drain_timeout_s);
    old_.push_back(std::move(now_));
    now_ = std::move(next);
}

template <typename F>
uint64_t ExportPipeline::sum(F f) const {
    uint64_t n = f(*now_);
    for (const auto& s : old_) n += f(*s);
    return n;
}

uint64_t ExportPipeline::flow_records() const {
    return sum([](const Session& s) { return s.encoder->flow_records(); });
}
uint64_t ExportPipeline::data_records() const {
    return sum([](const Session& s) { return s.encoder->data_records(); });
}
uint64_t ExportPipeline::messages() const {
    return sum([](const Session& s) { return s.encoder->messages(); });
}
uint64_t ExportPipeline::packet_reports() const {
    return sum([](const Session& s) { return s.encoder->packet_reports(); });
}
uint64_t ExportPipeline::records_not_sent() const {
    return sum([](const Session& s) { return s.transport->records_not_sent(); });
}

bool ExportPipeline::finish(const MeterLoss& loss) {
    now_->encoder->flush();
    add_stats(*now_, loss);
    now_->encoder->flush();
    io_.poll();
    work_.reset();
    // Sessions a reload replaced first, each within what is left of its
    // own drain time; then the current one.
    bool delivered = true;
    for (auto& s : old_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s->retire_by -
                                                                          std::chrono::steady_clock::now());
        delivered = close_session(*s, std::max(left, std::chrono::milliseconds(0))) && delivered;
    }
    delivered = close_session(*now_, seconds(now_->cfg.drain_timeout_s)) && delivered;
    return delivered;
}

}  // namespace bpfix
