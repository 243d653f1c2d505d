#include "session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "error.h"

namespace bpfix {

ExporterSession::ExporterSession(InfoModel& model, std::string exporter, std::string peer, LinesSink sink,
                                 CounterTable& counters, SessionCounters& shared)
    : exporter_(std::move(exporter)),
      peer_(std::move(peer)),
      sink_(std::move(sink)),
      counters_(counters),
      shared_(shared) {
    ++shared_.sessions;
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
        // The ipfix output learns them too: it stores this session's data
        // only under templates it has seen.
        if (raw_) raw_(m, 0);
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
    auto it = domains_.find(domain);
    if (it == domains_.end()) {
        if (max_domains_ && domains_.size() >= max_domains_) {
            if (shared_.domain_limit_hits++ % 1000 == 0) {
                spdlog::warn("exporter {}: a message of observation domain {} refused: the session already has "
                             "{} domains ([limits] max_domains; counted in domain_limit_hits)",
                             peer_, domain, max_domains_);
            }
            return {};  // counted and logged here, not a malformed message
        }
        it = domains_.emplace(domain, Domain{}).first;
        it->second.row = &counters_.get(exporter_, domain);
    }
    Domain& d = it->second;
    ExporterCounters& row = *d.row;
    row.bytes += msg.size();
    uint64_t before = decoder_->records(), unknown_before = decoder_->unknown_template_sets();
    std::string problem = decoder_->decode_message(msg, now);
    uint64_t decoded = decoder_->records() - before;
    uint64_t unknown = decoder_->unknown_template_sets() - unknown_before;
    if (!problem.empty()) {
        ++row.malformed;
        ++malformed_;
    } else {
        ++row.messages;
    }
    row.records += decoded;
    if (unknown) {
        row.unknown_template_sets += unknown;
        // Data before its template: a UDP exporter's first messages after
        // our start, or a template that expired. Named once a minute at most.
        unknown_unlogged_ += unknown;
        auto t = now.value_or(std::chrono::steady_clock::now());
        if (t >= next_unknown_log_) {
            spdlog::warn("exporter {}: {} data set(s) for a template it has not sent (last: template {} in domain "
                         "{}) not decoded; counted in unknown_template; they decode once it sends the template",
                         peer_, unknown_unlogged_, decoder_->last_unknown_template(), domain);
            unknown_unlogged_ = 0;
            next_unknown_log_ = t + std::chrono::seconds(60);
        }
    }
    if (header && problem.empty()) {
        d.seq.observe(seq, static_cast<uint32_t>(decoded), unknown > 0);
        const SequenceCounts& c = d.seq.counts();
        // The shared rows are atomics: touched only when a count moved
        // (rarely), not for every message.
        auto add = [](std::atomic<uint64_t>& to, uint64_t delta) {
            if (delta) to += delta;
        };
        add(row.lost_records, c.lost_records - d.reported.lost_records);
        add(row.unknown_template_records, c.unknown_template_records - d.reported.unknown_template_records);
        add(row.out_of_order, c.out_of_order - d.reported.out_of_order);
        add(row.sequence_resets, c.resets - d.reported.resets);
        add(row.implausible_sequence, c.implausible - d.reported.implausible);
        d.reported = c;
    }
    if (uint64_t n = decoder_->template_limit_hits(); n != limit_hits_seen_) {
        shared_.template_limit_hits += n - limit_hits_seen_;
        limit_hits_seen_ = n;
    }
    if (uint64_t n = decoder_->templates_expired(); n != expired_seen_) {
        shared_.templates_expired += n - expired_seen_;
        expired_seen_ = n;
    }
    if (store_ && problem.empty() && store_->observe(msg)) {
        // A write the disk refused is tried again with the next message
        // after kStoreRetry (not with every message: each try costs an fsync).
        auto t = now.value_or(std::chrono::steady_clock::now());
        if (!store_failed_ || t >= next_store_retry_) {
            try {
                store_->save_if_changed();
                if (store_failed_) spdlog::info("exporter {}: its templates are kept across restarts again", peer_);
                store_failed_ = false;
            } catch (const Error& e) {
                if (!store_failed_) {
                    spdlog::warn("exporter {}: {}; templates are not kept across restarts until a write succeeds "
                                 "(tried again every {} s)",
                                 peer_, e.what(), kStoreRetry.count());
                }
                store_failed_ = true;
                next_store_retry_ = t + kStoreRetry;
            }
        }
    }
    if (decoded && !count_only_) {
        sink_(std::move(lines_), decoded);
        lines_.clear();
    }
    if (raw_ && problem.empty()) raw_(msg, decoded);
    return problem;
}

}  // namespace bpfix
