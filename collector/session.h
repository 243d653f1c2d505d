#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "exporter_counters.h"
#include "info_model.h"
#include "ipfix_decoder.h"
#include "sequence_tracker.h"
#include "template_store.h"

namespace bpfix {

// Counters of things that belong to a session rather than a domain,
// shared by all sessions (atomics: sessions live on several threads).
struct SessionCounters {
    std::atomic<uint64_t> sessions{0};             // sessions started
    std::atomic<uint64_t> template_limit_hits{0};  // templates refused over max_templates
    std::atomic<uint64_t> templates_expired{0};    // UDP templates not sent again in time
    std::atomic<uint64_t> domain_limit_hits{0};    // messages refused: a new domain over max_domains
};

// One transport session (RFC 7011 section 10: a UDP source address and
// port, or a TCP connection) of one exporter: its own libfixbuf session, so
// templates of one exporter never apply to another, and its accounting per
// observation domain. Records go to `sink` as JSON lines, one batch per
// message.
class ExporterSession {
public:
    // `exporter` is the address as text (the `exporter` key of every
    // record); `peer` adds the port, for logs.
    using LinesSink = std::function<void(std::string lines, uint64_t records)>;
    // `counters`: where the session counts what it decodes, per domain
    // (rows of its exporter address); `shared`: session-level counters.
    ExporterSession(InfoModel& model, std::string exporter, std::string peer, LinesSink sink,
                    CounterTable& counters, SessionCounters& shared);
    ~ExporterSession();  // tells the raw sink (an empty message) that the session is gone

    // Decodes one complete IPFIX message. Returns "" or what was wrong
    // (records before the problem have been delivered). `now`: see
    // IpfixDecoder::decode_message.
    std::string message(std::span<const uint8_t> msg,
                        std::optional<std::chrono::steady_clock::time_point> now = std::nullopt);

    // Keeps this session's templates in `path` and first replays what an
    // earlier run kept there (UDP: data before the next template refresh
    // decodes at once). Returns how many template messages were replayed.
    size_t persist_templates(const std::string& path);

    const std::string& peer() const { return peer_; }
    const std::string& exporter() const { return exporter_; }
    // Data records decoded in this session.
    uint64_t records() const { return decoder_->records(); }
    void set_max_templates(size_t n) { decoder_->set_max_templates(n); }
    // At most `n` observation domains in this session: a message of a new
    // domain beyond them is refused (counted, logged), so forged domain ids
    // cannot grow memory without bound.
    void set_max_domains(size_t n) { max_domains_ = n; }
    // UDP: templates not received again within `s` expire (0: never).
    void set_template_lifetime(std::chrono::seconds s) { decoder_->set_template_lifetime(s); }
    uint64_t templates_expired() const { return decoder_->templates_expired(); }
    // No JSON lines at all (the jsonl format is off): records only counted.
    void set_count_only() {
        decoder_->set_count_only(true);
        count_only_ = true;
    }
    // Also hands every message that decoded without a problem, with its
    // data record count, to `raw` (the ipfix output); an empty message when
    // the session ends.
    using RawSink = std::function<void(std::span<const uint8_t> message, uint64_t records)>;
    void set_raw_sink(RawSink raw) { raw_ = std::move(raw); }
    uint64_t template_limit_hits() const { return decoder_->template_limit_hits(); }
    // Packet reports (RFC 7133) go to `sink` (the pcap store), not to the
    // JSON lines.
    void set_packet_sink(IpfixDecoder::PacketSink sink) { decoder_->set_packet_sink(std::move(sink)); }
    // Messages this session could not decode in full (for rate-limiting
    // its log lines).
    uint64_t malformed() const { return malformed_; }

private:
    // Adds "exporter", "observationDomainId" and "templateId" to a line.
    void tail(std::string& out, uint32_t domain, uint16_t tid) const;

    std::string exporter_, peer_, exporter_json_;
    LinesSink sink_;
    RawSink raw_;
    std::string lines_;
    bool count_only_ = false;
    // Per observation domain: its sequence numbers and its counters' row.
    struct Domain {
        SequenceTracker seq;
        SequenceCounts reported;  // what of seq.counts() is already in `row`
        ExporterCounters* row = nullptr;
    };
    std::map<uint32_t, Domain> domains_;
    size_t max_domains_ = 0;
    CounterTable& counters_;
    SessionCounters& shared_;
    uint64_t malformed_ = 0;
    uint64_t limit_hits_seen_ = 0, expired_seen_ = 0;  // of the decoder's, already in shared_
    std::chrono::steady_clock::time_point next_unknown_log_{};
    uint64_t unknown_unlogged_ = 0;
    std::unique_ptr<IpfixDecoder> decoder_;
    std::unique_ptr<TemplateStore> store_;
    bool store_failed_ = false;
    static constexpr std::chrono::seconds kStoreRetry{10};
    std::chrono::steady_clock::time_point next_store_retry_{};
};

}  // namespace bpfix
