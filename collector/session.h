#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "info_model.h"
#include "ipfix_decoder.h"
#include "template_store.h"

namespace bpfix {

// What one exporter sent in one observation domain.
struct DomainStats {
    uint64_t messages = 0;
    uint64_t records = 0;       // data records decoded (options records included)
    uint64_t bytes = 0;         // IPFIX message bytes
    uint64_t lost_records = 0;  // sequence-number gaps: records the exporter sent that never arrived
    uint64_t out_of_order = 0;  // messages whose sequence number went backwards
    uint64_t malformed = 0;     // messages that could not be decoded (in full)
    bool have_next_seq = false;
    uint32_t next_seq = 0;
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
    ExporterSession(InfoModel& model, std::string exporter, std::string peer, LinesSink sink);
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
    void set_max_templates(size_t n) { decoder_->set_max_templates(n); }
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
    const std::map<uint32_t, DomainStats>& domains() const { return domains_; }

private:
    // Adds "exporter", "observationDomainId" and "templateId" to a line.
    void tail(std::string& out, uint32_t domain, uint16_t tid) const;

    std::string exporter_, peer_, exporter_json_;
    LinesSink sink_;
    RawSink raw_;
    std::string lines_;
    bool count_only_ = false;
    std::map<uint32_t, DomainStats> domains_;
    std::unique_ptr<IpfixDecoder> decoder_;
    std::unique_ptr<TemplateStore> store_;
    bool store_failed_ = false;
};

// Totals over sessions, for the log and the exit summary.
struct CollectorTotals {
    uint64_t sessions = 0, messages = 0, records = 0, bytes = 0, lost_records = 0, out_of_order = 0,
             malformed = 0, rejected_sessions = 0, template_limit_hits = 0, templates_expired = 0;
    void add(const ExporterSession& s);
};

}  // namespace bpfix
