#include "export_pipeline.h"

namespace bpfix {

namespace {

uint64_t wall_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::chrono::milliseconds seconds(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

}  // namespace

ExportPipeline::ExportPipeline(const ExporterConfig& cfg, uint32_t enrichments)
    : cfg_(cfg), init_ms_(wall_ms()), model_(cfg.pen), url_(parse_collector_url(cfg.collector)),
      work_(asio::make_work_guard(io_)) {
    // The transport asks the encoder for templates when it (re)connects; the
    // encoder needs the transport's message size: build the transport first.
    transport_ = make_transport(url_, cfg.transport, io_, [this]() -> const std::vector<IpfixMessage>& {
        return encoder_->template_messages();
    });
    encoder_ = std::make_unique<IpfixEncoder>(model_, cfg.observation_domain, transport_->max_message_size(),
                                              [this](IpfixMessage&& m) { transport_->send(std::move(m)); },
                                              enrichments);
    auto now = std::chrono::steady_clock::now();
    next_refresh_ = now + seconds(cfg.template_refresh_s);
    next_stats_ = now + seconds(cfg.stats_interval_s);
}

void ExportPipeline::add_stats(const MeterLoss& loss) {
    StatsRecord s{};
    s.observationDomainId = cfg_.observation_domain;
    s.exportedMessageTotalCount = encoder_->messages();
    s.exportedFlowRecordTotalCount = encoder_->flow_records();
    s.exportedOctetTotalCount = encoder_->octets();
    s.ignoredPacketTotalCount = loss.ignored_packets;
    s.ignoredOctetTotalCount = loss.ignored_octets;
    s.notSentPacketTotalCount = loss.not_sent_packets;
    s.notSentOctetTotalCount = loss.not_sent_octets;
    s.notSentFlowTotalCount = transport_->records_not_sent();
    s.systemInitTimeMilliseconds = init_ms_;
    encoder_->add_stats(s);
    if (loss.sampling_interval > 1) {
        SamplingRecord r{};
        r.observationDomainId = cfg_.observation_domain;
        r.samplingPacketInterval = 1;
        r.samplingPacketSpace = loss.sampling_interval - 1;
        r.selectorAlgorithm = 1;
        r.selectorId = 1;
        r.selectorIdTotalPktsObserved = loss.observed_packets;
        r.selectorIdTotalPktsSelected = loss.selected_packets;
        encoder_->add_sampling(r);
    }
    if (encoder_->enrichments() & kSpecDrops) {
        for (const auto& [name, counts] : loss.unattributed_drops) {
            DropReasonRecord d{};
            d.observationDomainId = cfg_.observation_domain;
            d.bpfixDropReason.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
            d.bpfixDropReason.len = name.size();
            d.droppedPacketTotalCount = counts.first;
            d.droppedOctetTotalCount = counts.second;
            encoder_->add_drop_reason(d);
        }
    }
}

void ExportPipeline::tick(const MeterLoss& loss) {
    auto now = std::chrono::steady_clock::now();
    if (transport_->needs_template_refresh() && now >= next_refresh_) {
        encoder_->export_templates();
        next_refresh_ = now + seconds(cfg_.template_refresh_s);
    }
    if (now >= next_stats_) {
        add_stats(loss);
        next_stats_ = now + seconds(cfg_.stats_interval_s);
    }
}

bool ExportPipeline::finish(const MeterLoss& loss) {
    encoder_->flush();
    add_stats(loss);
    encoder_->flush();
    io_.poll();
    work_.reset();
    return transport_->finish(io_, seconds(cfg_.drain_timeout_s));
}

}  // namespace bpfix
