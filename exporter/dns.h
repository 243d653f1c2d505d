// DNS messages as flow enrichment sees them: the header and the first
// question of a query or response (RFC 1035 section 4.1), from a UDP payload
// or a TCP segment (2-byte length prefix, RFC 1035 section 4.2.2), and the
// matching of responses to queries for their latency.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace bpfix {

struct DnsMessage {
    uint16_t id = 0;
    uint16_t flags = 0;  // the header's second 16 bits: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE
    uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
    // The first question, when there is one.
    std::string qname;  // dotted, without the final dot ("." for the root); see parse_dns
    uint16_t qtype = 0;
    uint16_t qclass = 0;

    bool response() const { return flags & 0x8000; }
    uint8_t opcode() const { return (flags >> 11) & 0xf; }
    bool truncated() const { return flags & 0x0200; }
    uint8_t rcode() const { return flags & 0xf; }
};

// Longest query name kept (RFC 1035: 255 octets on the wire, at most 253
// characters dotted; escapes can make the text longer).
inline constexpr size_t kDnsMaxName = 253;

// Parses a DNS message. Label bytes other than letters, digits, '-' and
// '_' are written as \DDD (decimal, as dig does) and a '.' inside a label
// as "\."; the name is cut at kDnsMaxName characters. Compression pointers
// are followed backwards only, at most 16. Returns nullopt and sets `error`
// (when given) for anything that is not a well-formed header and question.
std::optional<DnsMessage> parse_dns(std::span<const uint8_t> msg, std::string* error = nullptr);

// The DNS messages in a TCP segment's payload that starts at a message
// boundary (the usual case: one query or response per segment, each behind
// its 2-byte length). A message cut by the segment end is not parsed.
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
        DnsMessage query;
        uint64_t query_ns = 0;
        std::optional<DnsMessage> response;  // nullopt: unanswered within the timeout
        uint64_t latency_ns = 0;             // response time - query time
    };

    explicit DnsTransactions(uint64_t timeout_ns, size_t max_pending = 65536)
        : timeout_ns_(timeout_ns), max_pending_(max_pending) {}

    // A query from `client` to `server` at `t_ns`. A repeated query (same
    // key) restarts its clock: the latency is the last try's.
    void query(const Endpoint& client, const Endpoint& server, const DnsMessage& q, uint64_t t_ns);
    // A response from `server` to `client`; returns the transaction when it
    // answers a pending query (which is then done).
    std::optional<Outcome> response(const Endpoint& server, const Endpoint& client, const DnsMessage& r,
                                    uint64_t t_ns);
    // Queries pending longer than the timeout at `now_ns`: removed and
    // returned as unanswered.
    std::vector<Outcome> expire(uint64_t now_ns);

    size_t pending() const { return pending_.size(); }
    // Queries forgotten because max_pending were waiting (counted, not lost silently).
    uint64_t overflow() const { return overflow_; }

private:
    using Key = std::tuple<Endpoint, Endpoint, uint16_t>;
    struct Pending {
        DnsMessage query;
        uint64_t t_ns;
    };
    uint64_t timeout_ns_;
    size_t max_pending_;
    std::map<Key, Pending> pending_;
    uint64_t overflow_ = 0;
};

}  // namespace bpfix
