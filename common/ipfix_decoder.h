#pragma once

#include <fixbuf/public.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "info_model.h"

namespace bpfix {

struct DecodedRecord {
    uint32_t observation_domain = 0;
    uint16_t template_id = 0;
    bool options = false;
    // Element name -> value, in template order. Addresses as text,
    // dateTime elements as RFC 3339 UTC strings, numbers as numbers,
    // octet arrays as hex. An element the template repeats maps to an array
    // of its values.
    nlohmann::ordered_json fields;
};

// A packet report (RFC 7133): a data record whose template carries
// dataLinkFrameSection.
struct DecodedPacket {
    uint32_t observation_domain = 0;
    uint16_t template_id = 0;
    uint64_t ts_ns = 0;      // observationTime{Nano,Micro,Milli}seconds as UNIX ns; 0: none in the template
    uint32_t orig_len = 0;   // dataLinkFrameSize, else the section's length
    uint32_t ifindex = 0;    // ingressInterface, or egressInterface when flowDirection says egress
    uint8_t direction = 0;   // flowDirection (0 ingress when absent)
    std::span<const uint8_t> frame;  // dataLinkFrameSection; valid during the call only
};

// Decodes IPFIX messages of any exporter with libfixbuf, generically: every
// template received gets a matching internal template, so every element is
// named (IANA, our enterprise elements, and those learned from RFC 5610 type
// records). One decoder = one transport session, one thread.
class IpfixDecoder {
public:
    using Sink = std::function<void(const DecodedRecord&)>;

    IpfixDecoder(InfoModel& model, Sink sink);
    ~IpfixDecoder();
    IpfixDecoder(const IpfixDecoder&) = delete;
    IpfixDecoder& operator=(const IpfixDecoder&) = delete;

    // Decodes one complete message (header included). Returns an empty
    // string, or what was wrong with the message; records decoded before the
    // problem have been delivered. `now`: the caller's clock reading for
    // template lifetimes (a receive batch reads the clock once, not once
    // per message); none: read here when a lifetime is set.
    std::string decode_message(std::span<const uint8_t> message,
                               std::optional<std::chrono::steady_clock::time_point> now = std::nullopt);

    // The fast path for writers: each data record is appended to `*out` as
    // one JSON line (the same keys and value forms as DecodedRecord::fields,
    // without building a JSON object), with `tail(out, domain, template id)`
    // called to add more members before the closing brace. The Sink still
    // gets RFC 5610 type records and records of templates that repeat an
    // element. nullptr goes back to the Sink for everything.
    // At most `n` templates held at once (all observation domains of this
    // session together; 0: no limit). A template beyond it makes its message
    // an error from that set on, counted in template_limit_hits().
    void set_max_templates(size_t n) { max_templates_ = n; }
    uint64_t template_limit_hits() const { return template_limit_hits_; }
    size_t templates_held() const { return known_templates_.size(); }

    // RFC 7011 section 8.4 (UDP): a template not received again within
    // `lifetime` expires; data for it is then counted as data of an unknown
    // template until the exporter sends it again. 0: templates never expire
    // (TCP, files). Checked as messages arrive, at most once a second.
    void set_template_lifetime(std::chrono::seconds lifetime) { lifetime_ = lifetime; }
    // Expires the templates last received before `now - lifetime`; returns
    // how many (decode_message calls it with the current time).
    size_t expire_templates(std::chrono::steady_clock::time_point now);
    uint64_t templates_expired() const { return templates_expired_; }

    // Count data records without formatting them (a writer that stores the
    // messages themselves). RFC 5610 type records still reach the Sink.
    void set_count_only(bool on) { count_only_ = on; }

    // Packet reports go to `sink` instead of the JSON paths (a pcap store);
    // none: they are records like any other.
    using PacketSink = std::function<void(const DecodedPacket&)>;
    void set_packet_sink(PacketSink sink) { packet_sink_ = std::move(sink); }
    uint64_t packets() const { return packets_; }

    using JsonlTail = std::function<void(std::string& out, uint32_t domain, uint16_t template_id)>;
    void set_jsonl_output(std::string* out, JsonlTail tail);

    uint64_t messages() const { return messages_; }
    uint64_t records() const { return records_; }
    uint64_t malformed() const { return malformed_; }
    // Sets with a reserved set id (0, 1, 4-255), skipped per RFC 7011.
    uint64_t skipped_sets() const { return skipped_sets_; }
    // Data sets whose template this session does not have: not decoded.
    uint64_t unknown_template_sets() const { return unknown_template_sets_; }
    // The template id of the last such set (for a log line naming it).
    uint16_t last_unknown_template() const { return last_unknown_template_; }

    struct TemplateInfo;

private:
    struct Screen;
    // A template as its data records lie on the wire, for the screen.
    struct WireShape {
        std::vector<uint16_t> lengths;  // FB_IE_VARLEN: variable length
        size_t min_len = 0;             // of the shortest record
        bool fixed = true;              // no variable-length field: every record is min_len long
    };
    std::string decode_screened(std::vector<uint8_t>& message, uint32_t domain);
    static void on_new_template(fbSession_t*, uint16_t, fbTemplate_t*, void*, void**, fbTemplateCtxFree_fn*);
    void decode_record(const TemplateInfo& info, uint32_t domain);
    void append_jsonl(const TemplateInfo& info, uint32_t domain);
    void deliver_packet(const TemplateInfo& info, uint32_t domain);

    InfoModel& model_;
    Sink sink_;
    fBuf_t* fbuf_ = nullptr;  // owns the session
    fbSession_t* session_ = nullptr;
    uint16_t next_internal_id_ = 0x8000;
    std::vector<uint8_t> record_;
    uint64_t messages_ = 0;
    uint64_t records_ = 0;
    uint64_t malformed_ = 0;
    uint64_t skipped_sets_ = 0;
    uint64_t unknown_template_sets_ = 0;
    uint16_t last_unknown_template_ = 0;
    // The session's templates, (domain, id) -> set id (2 or 3) and the
    // record as received: a refresh with the same bytes changes nothing
    // and is kept from libfixbuf (which would build the template anew).
    struct KnownTemplate {
        uint16_t set_id;
        std::vector<uint8_t> record;
    };
    std::map<std::pair<uint32_t, uint16_t>, KnownTemplate> known_templates_;
    // The screen's shapes of the session's templates, (domain, id) -> shape,
    // so a data set costs no template walk; emptied by any template set
    // that changes a template.
    std::map<std::pair<uint32_t, uint16_t>, WireShape> shapes_;
    std::vector<std::pair<size_t, size_t>> kept_sets_;  // (offset, length) the screen accepted
    size_t max_templates_ = 0;
    std::chrono::seconds lifetime_{0};
    std::chrono::steady_clock::time_point now_{}, next_expiry_check_{};
    std::map<std::pair<uint32_t, uint16_t>, std::chrono::steady_clock::time_point> template_seen_;
    uint64_t templates_expired_ = 0;
    uint64_t template_limit_hits_ = 0;
    std::string* jsonl_ = nullptr;
    bool count_only_ = false;
    PacketSink packet_sink_;
    uint64_t packets_ = 0;
    JsonlTail jsonl_tail_;
    int64_t cached_second_ = INT64_MIN;  // "YYYY-MM-DDTHH:MM:SS" of it, for timestamps
    char cached_text_[24] = {};
};

// Frames a stream of IPFIX messages (TCP, files): the length of the complete
// message at the front of `buf`, or nullopt when more bytes are needed or the
// front is not an IPFIX message header; then `error` says what is wrong
// (version not 10, length below 16) and the stream cannot be framed any more.
std::optional<size_t> ipfix_message_length(std::span<const uint8_t> buf, std::string& error);

// Reads an IPFIX file (RFC 5655: IPFIX messages back to back) and decodes
// every message. Throws bpfix::Error naming the file and offset of a broken
// message, after delivering everything before it.
void read_ipfix_file(const std::string& path, IpfixDecoder& decoder);

}  // namespace bpfix
