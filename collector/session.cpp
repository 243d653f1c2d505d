#include "session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "error.h"

namespace bpfix {

ExporterSession::ExporterSession(InfoModel& model, std::string exporter, std::string peer, LinesSink sink)
    : exporter_(std::move(exporter)), peer_(std::move(peer)), sink_(std::move(sink)) {
    exporter_json_ = nlohmann::json(exporter_).dump();
    decoder_ = std::make_unique<IpfixDecoder>(model, [this](const DecodedRecord& rec) {
        // Records the decoder does not format itself (RFC 5610 type records,
        // templates repeating an element): element names first, then where
        // the record came from.
        std::string line = rec.fields.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        line.pop_back();  // the closing brace
        if (line.size() > 1) line += ',';
        lines_ += line;
        tail(lines_, rec.observation_domain, rec.template_id);
        lines_ += "}\n";
    });
    decoder_->set_jsonl_output(&lines_, [this](std::string& out, uint32_t domain, uint16_t tid) {
        tail(out, domain, tid);
    });
}

void ExporterSession::tail(std::string& out, uint32_t domain, uint16_t tid) const {
    out += "\"exporter\":";
    out += exporter_json_;
    out += ",\"observationDomainId\":";
    out += std::to_string(domain);
    out += ",\"templateId\":";
    out += std::to_string(tid);
}

ExporterSession::~ExporterSession() {
    if (raw_) raw_({}, 0);
}

size_t ExporterSession::persist_templates(const std::string& path) {
    auto saved = TemplateStore::load(path);
    store_ = std::make_unique<TemplateStore>(path);
    for (const auto& m : saved) {
        // Template sets only: nothing reaches the sink or the accounting.
        std::string problem = decoder_->decode_message(m);
        if (!problem.empty()) {
            spdlog::warn("exporter {}: saved templates in {} are unusable ({}); waiting for new ones", peer_, path,
                         problem);
            break;
        }
        store_->observe(m);
    }
    return saved.size();
}

std::string ExporterSession::message(std::span<const uint8_t> msg,
                                     std::optional<std::chrono::steady_clock::time_point> now) {
    uint32_t domain = 0, seq = 0;
    bool header = msg.size() >= 16;
    if (header) {
        seq = static_cast<uint32_t>(msg[8]) << 24 | static_cast<uint32_t>(msg[9]) << 16 |
              static_cast<uint32_t>(msg[10]) << 8 | msg[11];
        domain = static_cast<uint32_t>(msg[12]) << 24 | static_cast<uint32_t>(msg[13]) << 16 |
                 static_cast<uint32_t>(msg[14]) << 8 | msg[15];
    }
    DomainStats& d = domains_[domain];
    d.bytes += msg.size();
    uint64_t before = decoder_->records();
    std::string problem = decoder_->decode_message(msg, now);
    uint64_t decoded = decoder_->records() - before;
    if (!problem.empty()) {
        ++d.malformed;
    } else {
        ++d.messages;
    }
    d.records += decoded;
    if (header && problem.empty()) {
        // RFC 7011: the sequence number counts the data records sent before
        // this message in this domain.
        if (d.have_next_seq && seq != d.next_seq) {
            uint32_t gap = seq - d.next_seq;
            if (gap < 0x80000000u) {
                d.lost_records += gap;
            } else {
                ++d.out_of_order;
            }
        }
        d.have_next_seq = true;
        d.next_seq = seq + static_cast<uint32_t>(decoded);
    }
    if (store_ && problem.empty() && store_->observe(msg)) {
        try {
            store_->save_if_changed();
        } catch (const Error& e) {
            if (!store_failed_) spdlog::warn("exporter {}: {}; templates are not kept across restarts", peer_, e.what());
            store_failed_ = true;
        }
    }
    if (decoded && !count_only_) {
        sink_(std::move(lines_), decoded);
        lines_.clear();
    }
    if (raw_ && problem.empty()) raw_(msg, decoded);
    return problem;
}

void CollectorTotals::add(const ExporterSession& s) {
    ++sessions;
    template_limit_hits += s.template_limit_hits();
    templates_expired += s.templates_expired();
    for (const auto& [id, d] : s.domains()) {
        messages += d.messages;
        records += d.records;
        bytes += d.bytes;
        lost_records += d.lost_records;
        out_of_order += d.out_of_order;
        malformed += d.malformed;
    }
}

}  // namespace bpfix
