// DNS messages as flow enrichment sees them: the header and the first
// question of a query or response (RFC 1035 section 4.1), from a UDP payload
// or a TCP segment (2-byte length prefix, RFC 1035 section 4.2.2), and the
// matching of responses to queries for their latency.
#pragma once

#include <array>
#include <compare>
#include <deque>
#include <functional>
#include <cstring>
#include <cstdint>
#include <optional>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bpfix_abi.h"
#include "flow_table.h"

namespace bpfix {

// Longest query name kept (RFC 1035: 255 octets on the wire, at most 253
// characters dotted; escapes can make the text longer).
inline constexpr size_t kDnsMaxName = 253;

// A query name as the enricher keeps it, in 32 bytes: up to kInline
// characters in place (nearly every name), a longer one in a buffer of
// kDnsMaxName on the heap, made once and reused. A name per message and
// per flow summary as std::string was a malloc and a free per DNS message
// (names are mostly longer than its 15 in-place characters).
class DnsName {
public:
    static constexpr size_t kInline = 31;

    DnsName() = default;
    DnsName(const DnsName& o) { copy(o); }
    DnsName& operator=(const DnsName& o) {
        if (this != &o) copy(o);
        return *this;
    }
    DnsName(DnsName&& o) noexcept { steal(o); }
    DnsName& operator=(DnsName&& o) noexcept {
        if (this != &o) {
            delete[] heap();
            steal(o);
        }
        return *this;
    }
    ~DnsName() { delete[] heap(); }

    // Keeps the first kDnsMaxName characters of `s`.
    void assign(std::string_view s);
    std::string_view view() const { return {len_ > kInline ? heap() : buf_, len_}; }
    size_t size() const { return len_; }
    bool empty() const { return len_ == 0; }
    friend bool operator==(const DnsName& a, std::string_view b) { return a.view() == b; }

private:
    // A name in place is copied as the whole 32 bytes (inline, no call: a
    // name is copied several times per DNS message).
    void copy(const DnsName& o) {
        if (o.len_ <= kInline && len_ <= kInline) {
            std::memcpy(this, &o, sizeof *this);
        } else {
            assign(o.view());
        }
    }
    void steal(DnsName& o) {
        std::memcpy(this, &o, sizeof *this);
        o.len_ = 0;
    }
    // buf_ holds the characters, or (len_ > kInline) the heap buffer's address.
    char* heap() const {
        if (len_ <= kInline) return nullptr;
        char* p;
        std::memcpy(&p, buf_, sizeof p);
        return p;
    }
    char buf_[kInline] = {};
    uint8_t len_ = 0;
};
static_assert(sizeof(DnsName) == 32);
std::ostream& operator<<(std::ostream& os, const DnsName& n);

struct DnsMessage {
    uint16_t id = 0;
    uint16_t flags = 0;  // the header's second 16 bits: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE
    uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
    // The first question, when there is one.
    DnsName qname;  // dotted, without the final dot ("." for the root); see parse_dns
    uint16_t qtype = 0;
    uint16_t qclass = 0;

    bool response() const { return flags & 0x8000; }
    uint8_t opcode() const { return (flags >> 11) & 0xf; }
    bool truncated() const { return flags & 0x0200; }
    uint8_t rcode() const { return flags & 0xf; }
};

// Parses a DNS message. Label bytes other than letters, digits, '-' and
// '_' are written as \DDD (decimal, as dig does) and a '.' inside a label
// as "\."; the name is cut at kDnsMaxName characters. Compression pointers
// are followed backwards only, at most 16. Returns nullopt and sets `error`
// (when given) for anything that is not a well-formed header and question.
std::optional<DnsMessage> parse_dns(std::span<const uint8_t> msg, std::string* error = nullptr);

// The DNS messages in a TCP segment's payload that starts at a message
// boundary (the usual case: one query or response per segment, each behind
// its 2-byte length). A message the segment cuts is parsed from what is
// there (its header and question come first). Without stream reassembly a
// segment continuing a message could pass for one: only messages with one
// question of class IN, CH, HS or ANY and a known opcode are kept.
std::vector<DnsMessage> parse_dns_tcp(std::span<const uint8_t> payload);

// Matches responses to queries: a query is keyed by (client address and
// port, server address and port, id); its response comes back with the
// ports and addresses swapped. Addresses are 16 bytes (IPv4 mapped).
class DnsTransactions {
public:
    struct Endpoint {
        std::array<uint8_t, 16> addr{};
        uint16_t port = 0;
        auto operator<=>(const Endpoint&) const = default;
    };
    struct Outcome {
        bpfix_flow_key query_flow{};  // the flow the query travelled in
        DnsMessage query;
        uint64_t query_ns = 0;
        std::optional<DnsMessage> response;  // nullopt: unanswered within the timeout
        uint64_t latency_ns = 0;             // response time - query time
    };

    explicit DnsTransactions(uint64_t timeout_ns, size_t max_pending = 65536)
        : timeout_ns_(timeout_ns), max_pending_(max_pending) {}

    // A query from `client` to `server` at `t_ns`. A repeated query (same
    // key) restarts its clock: the latency is the last try's.
    void query(const Endpoint& client, const Endpoint& server, const DnsMessage& q, uint64_t t_ns,
               const bpfix_flow_key& flow = {});
    // A response from `server` to `client`; returns the transaction when it
    // answers a pending query (which is then done).
    std::optional<Outcome> response(const Endpoint& server, const Endpoint& client, const DnsMessage& r,
                                    uint64_t t_ns);
    // Queries pending longer than the timeout at `now_ns`: removed and
    // returned as unanswered (in the order of their keys). Costs what it
    // removes, not what is pending: called for every packet.
    std::vector<Outcome> expire(uint64_t now_ns);

    size_t pending() const { return pending_.size(); }
    // Queries forgotten because max_pending were waiting (counted, not lost silently).
    uint64_t overflow() const { return overflow_; }

private:
    using Key = std::tuple<Endpoint, Endpoint, uint16_t>;
    struct KeyHash {
        size_t operator()(const Key& k) const;
    };
    struct KeyEqual {
        // Word-wise (tuple's == compared the addresses through a memcmp call).
        bool operator()(const Key& a, const Key& b) const {
            const auto& [ac, as, aid] = a;
            const auto& [bc, bs, bid] = b;
            return aid == bid && ac.port == bc.port && as.port == bs.port && same(ac.addr, bc.addr) &&
                   same(as.addr, bs.addr);
        }
        static bool same(const std::array<uint8_t, 16>& x, const std::array<uint8_t, 16>& y) {
            uint64_t x0, x1, y0, y1;
            std::memcpy(&x0, x.data(), 8);
            std::memcpy(&x1, x.data() + 8, 8);
            std::memcpy(&y0, y.data(), 8);
            std::memcpy(&y1, y.data() + 8, 8);
            return ((x0 ^ y0) | (x1 ^ y1)) == 0;
        }
    };
    struct Pending {
        DnsMessage query;
        uint64_t t_ns = 0;
        bpfix_flow_key flow{};
    };
    uint64_t timeout_ns_;
    size_t max_pending_;
    // In the order their query was (last) sent, oldest first (capture time
    // only moves forward, so appending keeps the order). An ordered map's
    // key comparisons, then a node-based hash map's misses, were a tenth of
    // pcap mode's time on DNS-heavy traffic.
    KeyedNodes<Key, Pending, KeyHash, KeyEqual> pending_;
    uint64_t overflow_ = 0;
};

// What a flow record says about the DNS messages of its flow (see
// docs/fields.md). The direction decides: a flow carrying queries reports
// its last query and how many of its queries went unanswered; a flow
// carrying responses reports its last response (with the query's name and
// type as echoed) and the latency of the last and of the slowest
// response it answered.
struct DnsSummary {
    uint16_t id = 0;        // of the last message
    uint16_t flags = 0;     // header flags word of the last message
    uint16_t qtype = 0;
    DnsName qname;
    uint32_t messages = 0;     // DNS messages parsed in this flow since its last record
    uint32_t unanswered = 0;   // queries of this flow with no response within the timeout
    uint32_t answered = 0;     // responses of this flow that matched a query
    // Of the answered ones, in microseconds as exported (at most UINT32_MAX).
    uint32_t last_latency_us = 0, max_latency_us = 0;
    // A query of this flow waiting for its response, kept here when the
    // enricher can find flows (a locator, pcap mode): the response's flow
    // finds it through the reverse flow, with no table of transactions.
    uint32_t waiting_ns_lo = 0, waiting_ns_hi = 0;  // its time (two halves: 4-byte alignment)
    uint16_t waiting_id = 0;
    bool waiting = false;
    bool response() const { return flags & 0x8000; }
    uint64_t waiting_ns() const { return static_cast<uint64_t>(waiting_ns_hi) << 32 | waiting_ns_lo; }
    void wait(uint16_t qid, uint64_t t_ns) {
        waiting = true;
        waiting_id = qid;
        waiting_ns_lo = static_cast<uint32_t>(t_ns);
        waiting_ns_hi = static_cast<uint32_t>(t_ns >> 32);
    }
};
static_assert(sizeof(DnsSummary) == 72, "a DNS summary stays within its byte budget");

// DNS enrichment for one metering process (pcap mode, or live mode from the
// packets the kernel hands up): parses the DNS messages in UDP and TCP
// payloads of the DNS ports, matches responses to queries, and keeps a
// DnsSummary per flow until the flow's record takes it. A flow's summary
// is found by a number the caller keeps with the flow (`ext`: pcap mode's
// flow table entry holds it, FlowTable::ext) or, for a caller without one
// (live mode) and for a flow not open at the time, by flow key.
class DnsEnricher {
public:
    struct Config {
        uint64_t timeout_ns = 5'000'000'000ULL;  // a query unanswered this long counts as unanswered
        std::vector<uint16_t> ports = {53};
        // Summaries (and pending queries) held at once; beyond, new flows are
        // not enriched (counted in overflow()). Enrichment sets the flow
        // table's max_flows.
        size_t max_flows = 65536;
    };
    static constexpr uint32_t kNoSummary = UINT32_MAX;  // an `ext` with no summary yet
    explicit DnsEnricher(Config cfg);

    // Where an open flow keeps its summary number (pcap mode:
    // FlowTable::ext_of); used when a query times out, to count it in its
    // flow. Without a locator, or for a flow not open, summaries go by key.
    using Locator = std::function<uint32_t*(const bpfix_flow_key&)>;
    void set_locator(Locator l) { locate_ = std::move(l); }

    // Whether a packet of this flow key may carry DNS (protocol and ports).
    bool wants(const bpfix_flow_key& key) const;
    // One packet's transport payload (UDP datagram or TCP segment) at
    // `ts_ns`; `ext`: the flow's summary number (kNoSummary: none yet; set
    // here), nullptr to go by key.
    void packet(const bpfix_flow_key& key, uint64_t ts_ns, std::span<const uint8_t> payload,
                uint32_t* ext = nullptr);
    // Queries older than the timeout at `now_ns` become unanswered, counted
    // in their query flow's summary.
    void advance(uint64_t now_ns);
    // The record of the flow with summary number `ext` comes soon.
    void prefetch(uint32_t ext) const {
        if (ext != kNoSummary) summaries_.prefetch(ext);
    }
    // The summary of this flow since its last record (and forgets it;
    // `ext` as for packet(), set to kNoSummary).
    std::optional<DnsSummary> take(const bpfix_flow_key& key, uint32_t* ext = nullptr);

    uint64_t malformed() const { return malformed_; }
    uint64_t overflow() const { return overflow_ + tx_.overflow(); }
    size_t flows() const { return summaries_.size(); }

private:
    DnsSummary* summary(const bpfix_flow_key& key, uint32_t* ext);
    void message(const bpfix_flow_key& key, uint64_t ts_ns, const DnsMessage& m, uint32_t* ext);
    // The latency of the query `r` answers, if one waits (in its flow's
    // summary or in tx_); the query is then done.
    std::optional<uint64_t> answer(const bpfix_flow_key& key, const DnsMessage& r, uint64_t ts_ns);
    static DnsTransactions::Endpoint source(const bpfix_flow_key& key);
    static DnsTransactions::Endpoint destination(const bpfix_flow_key& key);

    Config cfg_;
    DnsTransactions tx_;
    Locator locate_;
    // Queries waiting in their flow's summary, oldest first: the summary's
    // number, the query's id and time (a later answer or a newer query of
    // the same flow leaves the item here: it is skipped when it no longer
    // matches). At most max_flows; beyond, queries go to tx_.
    struct Waiting {
        uint64_t t_ns;
        uint32_t summary;
        uint16_t id;
    };
    std::deque<Waiting> waiting_;
    // The summaries, by number. Found through the flow table's entry (pcap
    // mode), a summary costs 64 bytes and no lookup: a table of its own by
    // flow key (the key again, an index, a probe per message and per record)
    // was half of pcap mode's time on DNS-heavy traffic.
    Slots<DnsSummary> summaries_;
    // Summary numbers of the flows that keep none (live mode, or a flow not
    // open when its query timed out), by key.
    KeyedNodes<bpfix_flow_key, uint32_t, FlowKeyHash, FlowKeyEqual> by_key_;
    uint64_t malformed_ = 0, overflow_ = 0;
};

}  // namespace bpfix
