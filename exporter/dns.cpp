#include "dns.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <ostream>

namespace bpfix {

void DnsName::assign(std::string_view s) {
    const size_t n = std::min(s.size(), kDnsMaxName);
    char* h = heap();
    if (n > kInline) {
        if (!h) {
            h = new char[kDnsMaxName];
            std::memcpy(buf_, &h, sizeof h);
        }
        std::memmove(h, s.data(), n);
    } else {
        char text[kInline];
        std::memcpy(text, s.data(), n);  // `s` may be in the buffer freed here
        delete[] h;
        std::memcpy(buf_, text, n);
    }
    len_ = static_cast<uint8_t>(n);
}

std::ostream& operator<<(std::ostream& os, const DnsName& n) { return os << n.view(); }

namespace {

uint16_t be16(std::span<const uint8_t> m, size_t off) { return static_cast<uint16_t>(m[off] << 8 | m[off + 1]); }

bool fail(std::string* error, std::string what) {
    if (error) *error = std::move(what);
    return false;
}

// The dotted text of a name, cut at kDnsMaxName characters.
struct NameText {
    char c[kDnsMaxName];
    size_t n = 0;
    void put(char ch) {
        if (n < kDnsMaxName) c[n++] = ch;
    }
};

// Reads the name at `off`; `end` gets the offset after it in the message
// (after the first pointer when there is one).
bool read_name(std::span<const uint8_t> m, size_t off, NameText& name, size_t& end, std::string* error) {
    bool jumped = false;
    int jumps = 0;
    size_t wire = 0;  // octets of the name as uncompressed wire format
    for (;;) {
        if (off >= m.size()) return fail(error, fmt::format("name runs past the message end at offset {}", off));
        uint8_t len = m[off];
        if ((len & 0xc0) == 0xc0) {
            if (off + 1 >= m.size()) return fail(error, "compression pointer cut by the message end");
            size_t target = static_cast<size_t>(len & 0x3f) << 8 | m[off + 1];
            if (target >= off) return fail(error, fmt::format("compression pointer at {} points forward", off));
            if (++jumps > 16) return fail(error, "more than 16 compression pointers in one name");
            if (!jumped) end = off + 2;
            jumped = true;
            off = target;
            continue;
        }
        if (len & 0xc0) return fail(error, fmt::format("label type 0x{:02x} at offset {} is not supported", len, off));
        if (len == 0) {
            if (!jumped) end = off + 1;
            if (wire == 0) name.put('.');
            return true;
        }
        if (wire != 0) name.put('.');
        wire += 1u + len;
        if (wire + 1 > 255) return fail(error, "name longer than 255 octets");
        if (off + 1 + len > m.size()) return fail(error, fmt::format("label at offset {} runs past the message end", off));
        for (size_t i = 0; i < len; ++i) {
            uint8_t c = m[off + 1 + i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
                name.put(static_cast<char>(c));
            } else if (c == '.') {
                name.put('\\');
                name.put('.');
            } else {
                name.put('\\');
                name.put(static_cast<char>('0' + c / 100));
                name.put(static_cast<char>('0' + c / 10 % 10));
                name.put(static_cast<char>('0' + c % 10));
            }
        }
        off += 1u + len;
    }
}

}  // namespace

std::optional<DnsMessage> parse_dns(std::span<const uint8_t> m, std::string* error) {
    if (m.size() < 12) {
        fail(error, fmt::format("{} bytes are shorter than the 12-byte DNS header", m.size()));
        return std::nullopt;
    }
    DnsMessage d;
    d.id = be16(m, 0);
    d.flags = be16(m, 2);
    d.qdcount = be16(m, 4);
    d.ancount = be16(m, 6);
    d.nscount = be16(m, 8);
    d.arcount = be16(m, 10);
    if (d.qdcount == 0) return d;
    size_t end = 0;
    NameText name;
    if (!read_name(m, 12, name, end, error)) return std::nullopt;
    if (end + 4 > m.size()) {
        fail(error, "question type and class run past the message end");
        return std::nullopt;
    }
    d.qtype = be16(m, end);
    d.qclass = be16(m, end + 2);
    d.qname.assign(std::string_view(name.c, name.n));
    return d;
}

std::vector<DnsMessage> parse_dns_tcp(std::span<const uint8_t> payload) {
    std::vector<DnsMessage> out;
    size_t off = 0;
    while (payload.size() - off >= 2 + 12) {
        size_t len = be16(payload, off);
        if (len < 12) break;
        // The last message may go on in later segments (or past a capture's
        // snap length): its header and question are normally all here.
        size_t have = std::min(len, payload.size() - off - 2);
        auto d = parse_dns(payload.subspan(off + 2, have));
        // Without reassembly, a segment that continues an earlier message
        // can look like one: keep only what reads as a query or response
        // with one question of a real class.
        if (!d || d->qdcount != 1 || !(d->qclass == 1 || d->qclass == 3 || d->qclass == 4 || d->qclass == 255) ||
            d->opcode() > 6) {
            break;
        }
        out.push_back(std::move(*d));
        off += 2 + len;
        if (off > payload.size()) break;
    }
    return out;
}

size_t DnsTransactions::KeyHash::operator()(const Key& k) const {
    const auto& [client, server, id] = k;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ id;
    auto mix = [&h](const Endpoint& e) {
        uint64_t a, b;
        std::memcpy(&a, e.addr.data(), 8);
        std::memcpy(&b, e.addr.data() + 8, 8);
        h = (h ^ a) * 0xff51afd7ed558ccdULL;
        h = (h ^ b ^ (static_cast<uint64_t>(e.port) << 48)) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    };
    mix(client);
    mix(server);
    return static_cast<size_t>(h ^ (h >> 29));
}

void DnsTransactions::query(const Endpoint& client, const Endpoint& server, const DnsMessage& q, uint64_t t_ns,
                            const bpfix_flow_key& flow) {
    Key k{client, server, q.id};
    uint32_t i = pending_.find(k);
    if (i != pending_.kNone) {
        pending_.move_to_back(i);
    } else {
        if (pending_.size() >= max_pending_) {
            ++overflow_;
            return;
        }
        i = pending_.insert(k, true);
    }
    Pending& p = pending_.value(i);
    p.query = q;
    p.t_ns = t_ns;
    p.flow = flow;
}

std::optional<DnsTransactions::Outcome> DnsTransactions::response(const Endpoint& server, const Endpoint& client,
                                                                   const DnsMessage& r, uint64_t t_ns) {
    if (pending_.size() == 0) return std::nullopt;
    const uint32_t i = pending_.find(Key{client, server, r.id});
    if (i == pending_.kNone) return std::nullopt;
    Pending& p = pending_.value(i);
    Outcome o{p.flow, std::move(p.query), p.t_ns, r, t_ns >= p.t_ns ? t_ns - p.t_ns : 0};
    pending_.erase(i);
    return o;
}

std::vector<DnsTransactions::Outcome> DnsTransactions::expire(uint64_t now_ns) {
    std::vector<Outcome> out;
    std::vector<uint32_t> due;
    for (uint32_t i = pending_.front(); i != pending_.kNone; i = pending_.next(i)) {
        const Pending& p = pending_.value(i);
        if (now_ns < p.t_ns || now_ns - p.t_ns <= timeout_ns_) break;
        due.push_back(i);
    }
    if (due.empty()) return out;
    std::sort(due.begin(), due.end(), [this](uint32_t a, uint32_t b) { return pending_.key(a) < pending_.key(b); });
    for (uint32_t i : due) {
        Pending& p = pending_.value(i);
        out.push_back({p.flow, std::move(p.query), p.t_ns, std::nullopt, 0});
        pending_.erase(i);
    }
    return out;
}

DnsEnricher::DnsEnricher(Config cfg) : cfg_(std::move(cfg)), tx_(cfg_.timeout_ns, cfg_.max_flows) {}

bool DnsEnricher::wants(const bpfix_flow_key& key) const {
    if (key.protocol != BPFIX_PROTO_UDP && key.protocol != BPFIX_PROTO_TCP) return false;
    for (uint16_t p : cfg_.ports) {
        if (key.src_port == p || key.dst_port == p) return true;
    }
    return false;
}

DnsSummary* DnsEnricher::summary(const bpfix_flow_key& key, uint32_t* ext) {
    if (ext && *ext != kNoSummary) return &summaries_[*ext];
    uint32_t i = by_key_.size() ? by_key_.find(key) : by_key_.kNone;
    if (i != by_key_.kNone) {
        const uint32_t n = by_key_.value(i);
        if (ext) {
            // made while the flow was not open: now the flow keeps it
            *ext = n;
            by_key_.erase(i);
        }
        return &summaries_[n];
    }
    if (summaries_.size() >= cfg_.max_flows) {
        ++overflow_;
        return nullptr;
    }
    const uint32_t n = summaries_.make();
    if (ext) {
        *ext = n;
    } else {
        by_key_.value(by_key_.insert(key)) = n;
    }
    return &summaries_[n];
}

void DnsEnricher::packet(const bpfix_flow_key& key, uint64_t ts_ns, std::span<const uint8_t> payload,
                         uint32_t* ext) {
    if (payload.empty() || !wants(key)) return;
    if (key.protocol == BPFIX_PROTO_TCP) {
        // Segments without a whole message at their start (continuations,
        // pure ACKs) carry nothing to parse.
        for (const auto& m : parse_dns_tcp(payload)) message(key, ts_ns, m, ext);
        return;
    }
    if (auto m = parse_dns(payload)) {
        message(key, ts_ns, *m, ext);
    } else {
        ++malformed_;
    }
}

DnsTransactions::Endpoint DnsEnricher::source(const bpfix_flow_key& key) {
    DnsTransactions::Endpoint e;
    std::memcpy(e.addr.data(), key.src_addr, 16);
    e.port = key.src_port;
    return e;
}

DnsTransactions::Endpoint DnsEnricher::destination(const bpfix_flow_key& key) {
    DnsTransactions::Endpoint e;
    std::memcpy(e.addr.data(), key.dst_addr, 16);
    e.port = key.dst_port;
    return e;
}

std::optional<uint64_t> DnsEnricher::answer(const bpfix_flow_key& key, const DnsMessage& r, uint64_t ts_ns) {
    if (locate_ && !waiting_.empty()) {
        // The query came in the reverse flow (the same observation point).
        if (const uint32_t* e = locate_(reverse_key(key)); e && *e != kNoSummary) {
            DnsSummary& qs = summaries_[*e];
            if (qs.waiting && qs.waiting_id == r.id) {
                qs.waiting = false;
                const uint64_t sent = qs.waiting_ns();
                return ts_ns >= sent ? ts_ns - sent : 0;
            }
        }
    }
    if (auto o = tx_.response(source(key), destination(key), r, ts_ns)) return o->latency_ns;
    return std::nullopt;
}

void DnsEnricher::message(const bpfix_flow_key& key, uint64_t ts_ns, const DnsMessage& m, uint32_t* ext) {
    std::optional<uint64_t> latency;
    if (m.response()) latency = answer(key, m, ts_ns);
    DnsSummary* s = summary(key, ext);
    if (!m.response()) {
        // Kept in the flow's summary when the flow can be found again (the
        // response's reverse flow) and no other query of the flow waits
        // there; else in the table of transactions.
        if (s && ext && locate_ && (!s->waiting || s->waiting_id == m.id) && waiting_.size() < cfg_.max_flows) {
            s->wait(m.id, ts_ns);
            waiting_.push_back(Waiting{ts_ns, *ext, m.id});
        } else {
            tx_.query(source(key), destination(key), m, ts_ns, key);
        }
    }
    if (!s) return;
    s->id = m.id;
    s->flags = m.flags;
    s->qtype = m.qtype;
    s->qname = m.qname;
    ++s->messages;
    if (latency) {
        ++s->answered;
        s->last_latency_us = static_cast<uint32_t>(std::min<uint64_t>(*latency / 1000, UINT32_MAX));
        s->max_latency_us = std::max(s->max_latency_us, s->last_latency_us);
    }
}

void DnsEnricher::advance(uint64_t now_ns) {
    while (!waiting_.empty()) {
        const Waiting w = waiting_.front();
        if (now_ns < w.t_ns || now_ns - w.t_ns <= cfg_.timeout_ns) break;
        waiting_.pop_front();
        DnsSummary& s = summaries_[w.summary];
        // Still this query (not answered, not sent again, not handed to tx_
        // with its flow's record): unanswered. Its flow is open, its
        // summary counted since the record (messages > 0).
        if (s.waiting && s.waiting_id == w.id && s.waiting_ns() == w.t_ns) {
            s.waiting = false;
            ++s.unanswered;
        }
    }
    for (const auto& o : tx_.expire(now_ns)) {
        if (DnsSummary* s = summary(o.query_flow, locate_ ? locate_(o.query_flow) : nullptr)) {
            ++s->unanswered;
            if (s->messages == 0) {
                // the flow's record went out before the timeout: this record
                // of the same flow reports the query it is about
                s->id = o.query.id;
                s->flags = o.query.flags;
                s->qtype = o.query.qtype;
                s->qname = o.query.qname;
            }
        }
    }
}

std::optional<DnsSummary> DnsEnricher::take(const bpfix_flow_key& key, uint32_t* ext) {
    // Only flows of the DNS ports ever get a summary (packet() and the
    // query flows advance() counts): the others need no lookup.
    if (summaries_.size() == 0 || !wants(key)) return std::nullopt;
    uint32_t n = kNoSummary;
    if (ext && *ext != kNoSummary) {
        n = *ext;
        *ext = kNoSummary;
    } else if (by_key_.size()) {
        if (const uint32_t i = by_key_.find(key); i != by_key_.kNone) {
            n = by_key_.value(i);
            by_key_.erase(i);
        }
    }
    if (n == kNoSummary) return std::nullopt;
    std::optional<DnsSummary> s = std::move(summaries_[n]);
    summaries_[n].waiting = false;  // a queued expiry of this query finds the free slot not waiting
    summaries_.release(n);
    if (s->waiting) {
        // The record goes before its query's answer or timeout: the query
        // waits on in the table of transactions, which counts it in a later
        // record of this flow.
        DnsMessage q;
        q.id = s->waiting_id;
        q.flags = s->flags & 0x7fff;
        q.qtype = s->qtype;
        q.qname = s->qname;
        tx_.query(source(key), destination(key), q, s->waiting_ns(), key);
        s->waiting = false;
    }
    return s;
}

}  // namespace bpfix
