// DNS header and question parsing (UDP and TCP framing), hostile names,
// and query/response matching for latency and unanswered lookups.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include "dns.h"
#include "flow_table.h"
#include "packet_builder.h"
#include "packet_parser.h"

using namespace bpfix;

namespace {

struct Msg {
    std::vector<uint8_t> b;
    Msg& u8(uint8_t v) {
        b.push_back(v);
        return *this;
    }
    Msg& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
    Msg& label(const std::string& s) {
        u8(static_cast<uint8_t>(s.size()));
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Msg& name(const std::vector<std::string>& labels) {
        for (const auto& l : labels) label(l);
        return u8(0);
    }
    static Msg header(uint16_t id, uint16_t flags, uint16_t qd = 1, uint16_t an = 0) {
        Msg m;
        m.u16(id).u16(flags).u16(qd).u16(an).u16(0).u16(0);
        return m;
    }
};

}  // namespace

TEST(Dns, QueryHeaderAndQuestion) {
    auto m = Msg::header(0xbeef, 0x0100).name({"www", "Example", "org"}).u16(28).u16(1);
    std::string err;
    auto d = parse_dns(m.b, &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->id, 0xbeef);
    EXPECT_FALSE(d->response());
    EXPECT_EQ(d->opcode(), 0);
    EXPECT_EQ(d->qname, "www.Example.org");
    EXPECT_EQ(d->qtype, 28);
    EXPECT_EQ(d->qclass, 1);
}

TEST(Dns, ResponseWithRcodeTruncationAndACompressedAnswer) {
    // NXDOMAIN (3), TC set; the answer's name is a pointer to the question.
    auto m = Msg::header(7, 0x8383, 1, 1).name({"nope", "test"}).u16(1).u16(1);
    m.u16(0xc00c).u16(1).u16(1).u16(0).u16(60).u16(4).u8(192).u8(0).u8(2).u8(1);
    auto d = parse_dns(m.b);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->response());
    EXPECT_TRUE(d->truncated());
    EXPECT_EQ(d->rcode(), 3);
    EXPECT_EQ(d->ancount, 1);
    EXPECT_EQ(d->qname, "nope.test");
}

TEST(Dns, RootAndOddBytesAreEscaped) {
    auto root = Msg::header(1, 0).name({}).u16(2).u16(1);
    ASSERT_TRUE(parse_dns(root.b));
    EXPECT_EQ(parse_dns(root.b)->qname, ".");
    auto odd = Msg::header(1, 0).name({std::string("a.b\x01 ", 5), "x"}).u16(1).u16(1);
    ASSERT_TRUE(parse_dns(odd.b));
    EXPECT_EQ(parse_dns(odd.b)->qname, "a\\.b\\001\\032.x");
}

TEST(DnsName, ShortNamesInPlaceLongOnesOnTheHeapCopiesIndependent) {
    DnsName n;
    EXPECT_TRUE(n.empty());
    EXPECT_EQ(n, "");
    const std::string at_limit(DnsName::kInline, 'a'), long_one(DnsName::kInline + 1, 'b');
    n.assign(at_limit);
    EXPECT_EQ(n, at_limit);
    n.assign(long_one);
    EXPECT_EQ(n, long_one);
    DnsName copy = n;
    n.assign("x.test");  // back in place: the heap buffer goes, the copy keeps its own
    EXPECT_EQ(n, "x.test");
    EXPECT_EQ(copy, long_one);
    copy = copy;
    EXPECT_EQ(copy, long_one);
    n = copy;
    copy.assign(std::string(300, 'c'));  // cut at kDnsMaxName
    EXPECT_EQ(copy.size(), kDnsMaxName);
    EXPECT_EQ(copy, std::string(kDnsMaxName, 'c'));
    EXPECT_EQ(n, long_one);
    std::ostringstream os;
    os << n;
    EXPECT_EQ(os.str(), long_one);
    DnsName moved = std::move(n);  // takes the heap buffer
    EXPECT_EQ(moved, long_one);
    EXPECT_TRUE(n.empty());
    DnsName short_one;
    short_one.assign("s.test");
    moved = std::move(short_one);  // frees its own buffer, takes the name in place
    EXPECT_EQ(moved, "s.test");
    moved = copy;  // in place -> on the heap
    EXPECT_EQ(moved, std::string(kDnsMaxName, 'c'));
}

TEST(Dns, LongNamesAreBoundedAndOverlongOnesRefused) {
    std::vector<std::string> labels(4, std::string(62, 'a'));  // 4 * 63 + 1 = 253 octets
    auto m = Msg::header(1, 0).name(labels).u16(1).u16(1);
    auto d = parse_dns(m.b);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->qname.size(), 4u * 62 + 3);
    labels.push_back("abc");  // 257 octets
    auto big = Msg::header(1, 0).name(labels).u16(1).u16(1);
    std::string err;
    EXPECT_FALSE(parse_dns(big.b, &err));
    EXPECT_NE(err.find("longer than 255"), std::string::npos) << err;
}

TEST(Dns, MalformedMessagesAreRefusedWithAReason) {
    std::string err;
    EXPECT_FALSE(parse_dns(std::vector<uint8_t>(11, 0), &err));
    EXPECT_NE(err.find("12-byte"), std::string::npos);
    // label past the end
    auto cut = Msg::header(1, 0).u8(10).u8('a');
    EXPECT_FALSE(parse_dns(cut.b, &err));
    EXPECT_NE(err.find("past the message end"), std::string::npos) << err;
    // pointer to itself (a loop) and forward
    auto loop = Msg::header(1, 0).u16(0xc00c).u16(1).u16(1);
    EXPECT_FALSE(parse_dns(loop.b, &err));
    EXPECT_NE(err.find("points forward"), std::string::npos) << err;
    // extended label type
    auto ext = Msg::header(1, 0).u8(0x41).u16(1).u16(1);
    EXPECT_FALSE(parse_dns(ext.b, &err));
    // type and class cut off
    auto noq = Msg::header(1, 0).name({"a"}).u8(0);
    EXPECT_FALSE(parse_dns(noq.b, &err));
    EXPECT_NE(err.find("type and class"), std::string::npos) << err;
    // no question at all is fine (e.g. some NOTIFY/UPDATE responses)
    auto none = Msg::header(9, 0x8000, 0);
    ASSERT_TRUE(parse_dns(none.b));
    EXPECT_EQ(parse_dns(none.b)->qname, "");
}

TEST(Dns, TcpFramingTwoMessagesAndACutOne) {
    auto q1 = Msg::header(1, 0x0100).name({"a", "test"}).u16(1).u16(1);
    // a response with an answer (TXT "hi") after its question
    auto q2 = Msg::header(2, 0x8180, 1, 1).name({"b", "test"}).u16(16).u16(1);
    q2.u16(0xc00c).u16(16).u16(1).u16(0).u16(60).u16(3).u8(2).u8('h').u8('i');
    std::vector<uint8_t> seg;
    for (auto* q : {&q1, &q2}) {
        seg.push_back(static_cast<uint8_t>(q->b.size() >> 8));
        seg.push_back(static_cast<uint8_t>(q->b.size()));
        seg.insert(seg.end(), q->b.begin(), q->b.end());
    }
    auto got = parse_dns_tcp(seg);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].qname, "a.test");
    EXPECT_EQ(got[1].qtype, 16);
    seg.resize(seg.size() - 3);  // the second message cut: its question is still whole
    EXPECT_EQ(parse_dns_tcp(seg).size(), 2u);
    seg.resize(seg.size() - 18);  // now the cut takes the question: only the first
    EXPECT_EQ(parse_dns_tcp(seg).size(), 1u);
    // a continuation segment: bytes from the middle of a message
    std::vector<uint8_t> middle(q1.b.begin() + 5, q1.b.end());
    middle.insert(middle.begin(), {0, 40});
    EXPECT_TRUE(parse_dns_tcp(middle).empty());
}

TEST(Dns, TransactionsMatchByIdAndEndpointsAndTimeOut) {
    DnsTransactions tx(2'000'000'000);  // 2 s
    DnsTransactions::Endpoint client{{}, 40000}, server{{}, 53}, other{{}, 40001};
    client.addr[15] = 1;
    server.addr[15] = 2;
    other.addr[15] = 1;
    auto q = *parse_dns(Msg::header(5, 0x0100).name({"x", "test"}).u16(1).u16(1).b);
    auto q2 = q;
    q2.id = 6;
    tx.query(client, server, q, 1'000);
    tx.query(other, server, q, 2'000);  // same id, other client port
    tx.query(client, server, q2, 3'000);
    auto r = q;
    r.flags = 0x8180;
    EXPECT_FALSE(tx.response(server, client, [&] { auto x = r; x.id = 99; return x; }(), 5'000));
    auto got = tx.response(server, client, r, 501'000);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->latency_ns, 500'000u);
    EXPECT_EQ(got->query.qname, "x.test");
    EXPECT_FALSE(tx.response(server, client, r, 600'000));  // answered already
    EXPECT_EQ(tx.pending(), 2u);
    EXPECT_TRUE(tx.expire(1'000'000'000).empty());
    auto lost = tx.expire(2'500'000'000);
    ASSERT_EQ(lost.size(), 2u);
    EXPECT_FALSE(lost[0].response);
    EXPECT_EQ(tx.pending(), 0u);
}

TEST(Dns, ExpiryFollowsTheLastTryAndReturnsKeyOrder) {
    // Expiry walks the queries oldest first and stops at the first that is
    // not due (its cost is what it removes); a query asked again moves to
    // the back; what is due comes back in key order, as before.
    DnsTransactions tx(1'000'000'000);  // 1 s
    DnsTransactions::Endpoint client{{}, 40000}, server{{}, 53};
    auto q = *parse_dns(Msg::header(1, 0x0100).name({"x", "test"}).u16(1).u16(1).b);
    auto with_id = [&](uint16_t id) {
        auto m = q;
        m.id = id;
        return m;
    };
    tx.query(client, server, with_id(9), 0);
    tx.query(client, server, with_id(3), 100);
    tx.query(client, server, with_id(7), 200);
    tx.query(client, server, with_id(9), 900'000'000);  // asked again: its clock restarts
    auto due = tx.expire(1'500'000'000);
    ASSERT_EQ(due.size(), 2u);
    EXPECT_EQ(due[0].query.id, 3);
    EXPECT_EQ(due[1].query.id, 7);
    EXPECT_EQ(tx.pending(), 1u);
    EXPECT_TRUE(tx.expire(1'800'000'000).empty());
    ASSERT_TRUE(tx.response(server, client, [&] { auto r = with_id(9); r.flags = 0x8180; return r; }(), 1'850'000'000));
    EXPECT_TRUE(tx.expire(5'000'000'000).empty());
    EXPECT_EQ(tx.pending(), 0u);
}

TEST(Dns, PendingQueriesAreBounded) {
    DnsTransactions tx(1'000'000'000, 2);
    DnsTransactions::Endpoint c{{}, 1}, s{{}, 53};
    DnsMessage q;
    for (uint16_t id = 0; id < 5; ++id) {
        q.id = id;
        tx.query(c, s, q, 0);
    }
    EXPECT_EQ(tx.pending(), 2u);
    EXPECT_EQ(tx.overflow(), 3u);
}

namespace {

// One DNS message over UDP from 10.0.0.1:40000 to 10.0.0.2:53 (or back),
// through the real frame parser, into the enricher.
struct Wire {
    DnsEnricher& dns;
    bpfix_flow_key send(const std::vector<uint8_t>& msg, bool from_client, uint64_t ts, bool tcp = false) {
        bpfix::test::Frame f;
        std::vector<uint8_t> payload = msg;
        if (tcp) {
            payload.insert(payload.begin(), {static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())});
        }
        uint16_t l4 = tcp ? 20 : 8;
        f.eth(0x0800).ipv4(tcp ? 6 : 17, from_client ? std::initializer_list<uint8_t>{10, 0, 0, 1}
                                                     : std::initializer_list<uint8_t>{10, 0, 0, 2},
                           from_client ? std::initializer_list<uint8_t>{10, 0, 0, 2}
                                       : std::initializer_list<uint8_t>{10, 0, 0, 1},
                           static_cast<uint16_t>(20 + l4 + payload.size()));
        uint16_t sport = from_client ? 40000 : 53, dport = from_client ? 53 : 40000;
        if (tcp) {
            f.tcp(sport, dport, 0x18);
        } else {
            f.udp(sport, dport, static_cast<uint16_t>(8 + payload.size()));
        }
        f.bytes(payload);
        ParsedPacket p;
        EXPECT_EQ(parse_packet(f.data().data(), f.size(), f.size(), 1, p), ParseStatus::ok);
        EXPECT_EQ(p.payload_len, payload.size());
        EXPECT_TRUE(dns.wants(p.key));
        dns.packet(p.key, ts, std::span<const uint8_t>(p.payload, p.payload_len));
        return p.key;
    }
};

}  // namespace

TEST(DnsEnricher, QueryFlowAndResponseFlowEachSayTheirPart) {
    DnsEnricher dns({});
    Wire w{dns};
    auto q = Msg::header(0x1234, 0x0100).name({"www", "example", "org"}).u16(1).u16(1).b;
    auto r = Msg::header(0x1234, 0x8183).name({"www", "example", "org"}).u16(1).u16(1).b;  // NXDOMAIN
    auto qkey = w.send(q, true, 1'000'000'000);
    auto rkey = w.send(r, false, 1'003'500'000);  // 3.5 ms later
    auto qs = dns.take(qkey);
    auto rs = dns.take(rkey);
    ASSERT_TRUE(qs && rs);
    EXPECT_FALSE(qs->response());
    EXPECT_EQ(qs->id, 0x1234);
    EXPECT_EQ(qs->qname, "www.example.org");
    EXPECT_EQ(qs->messages, 1u);
    EXPECT_EQ(qs->answered, 0u);
    EXPECT_TRUE(rs->response());
    EXPECT_EQ(rs->flags & 0xf, 3);
    EXPECT_EQ(rs->answered, 1u);
    EXPECT_EQ(rs->last_latency_us, 3'500u);
    EXPECT_FALSE(dns.take(qkey));  // taken
}

TEST(DnsEnricher, UnansweredQueriesCountInTheQueryFlowAfterTheTimeout) {
    DnsEnricher::Config cfg;
    cfg.timeout_ns = 2'000'000'000;
    DnsEnricher dns(cfg);
    Wire w{dns};
    auto q1 = Msg::header(1, 0x0100).name({"a", "test"}).u16(1).u16(1).b;
    auto q2 = Msg::header(2, 0x0100).name({"b", "test"}).u16(28).u16(1).b;
    auto r2 = Msg::header(2, 0x8180).name({"b", "test"}).u16(28).u16(1).b;
    auto qkey = w.send(q1, true, 0);
    w.send(q2, true, 1'000'000);
    auto rkey = w.send(r2, false, 9'000'000);
    dns.advance(1'000'000'000);
    EXPECT_EQ(dns.take(qkey)->unanswered, 0u);  // record taken before the timeout: nothing yet
    dns.advance(2'500'000'000);
    auto late = dns.take(qkey);  // the flow's next record reports it, with the query it is about
    ASSERT_TRUE(late);
    EXPECT_EQ(late->unanswered, 1u);
    EXPECT_EQ(late->id, 1);
    EXPECT_EQ(late->qname, "a.test");
    EXPECT_EQ(dns.take(rkey)->max_latency_us, 8'000u);
}

TEST(DnsEnricher, TcpMessagesAndPortsAndMalformedPayloads) {
    DnsEnricher dns({});
    Wire w{dns};
    auto q = Msg::header(9, 0x0100).name({"big", "test"}).u16(255).u16(1).b;
    auto r = Msg::header(9, 0x8180).name({"big", "test"}).u16(255).u16(1).b;
    w.send(q, true, 100, true);
    auto rkey = w.send(r, false, 500'100, true);
    auto rs = dns.take(rkey);
    ASSERT_TRUE(rs);
    EXPECT_EQ(rs->qtype, 255);
    EXPECT_EQ(rs->last_latency_us, 500u);
    // not a DNS message over UDP: counted as malformed, no summary
    auto junk = std::vector<uint8_t>{1, 2, 3};
    auto jkey = w.send(junk, true, 600'000);
    EXPECT_EQ(dns.malformed(), 1u);
    EXPECT_FALSE(dns.take(jkey));
    bpfix_flow_key web{};
    web.protocol = 6;
    web.src_port = 40000;
    web.dst_port = 443;
    EXPECT_FALSE(dns.wants(web));
    DnsEnricher::Config other;
    other.ports = {53, 5353};
    web.dst_port = 5353;
    EXPECT_TRUE(DnsEnricher(other).wants(web));
}

TEST(DnsEnricher, SummariesAreBoundedAndAFreedOneStartsClean) {
    DnsEnricher::Config cfg;
    cfg.max_flows = 3;
    DnsEnricher dns(cfg);
    auto key = [](uint16_t client_port) {
        bpfix_flow_key k{};
        k.ip_version = BPFIX_IPV4;
        k.protocol = BPFIX_PROTO_UDP;
        k.src_addr[0] = 10, k.src_addr[3] = 1;
        k.dst_addr[0] = 10, k.dst_addr[3] = 2;
        k.src_port = client_port;
        k.dst_port = 53;
        return k;
    };
    auto q = [](uint16_t id, const char* label) {
        return Msg::header(id, 0x0100).name({label, "test"}).u16(1).u16(1).b;
    };
    for (uint16_t i = 0; i < 5; ++i) {
        auto m = q(i, "n");
        dns.packet(key(static_cast<uint16_t>(40000 + i)), 1000 + i, m);
    }
    EXPECT_EQ(dns.flows(), 3u);
    // flows 3 and 4: not enriched, counted (and their queries not followed:
    // the transaction table has the same bound)
    EXPECT_EQ(dns.overflow(), 4u);
    EXPECT_FALSE(dns.take(key(40003)));
    auto first = dns.take(key(40001));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, 1);
    EXPECT_EQ(dns.flows(), 2u);
    auto m = q(77, "fresh");
    dns.packet(key(40009), 2000, m);                // takes the freed summary
    auto m2 = q(78, "again");
    dns.packet(key(40000), 2001, m2);               // an existing flow: found, not a new one
    EXPECT_EQ(dns.flows(), 3u);
    auto fresh = dns.take(key(40009));
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->messages, 1u);
    EXPECT_EQ(fresh->id, 77);
    EXPECT_EQ(fresh->qname, "fresh.test");
    EXPECT_EQ(fresh->unanswered, 0u);
    auto again = dns.take(key(40000));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->messages, 2u);
    EXPECT_EQ(again->qname, "again.test");
    EXPECT_TRUE(dns.take(key(40002)));
    EXPECT_EQ(dns.flows(), 0u);
}

namespace {

// A DNS exchange, message by message, fed to two enrichers: one that finds
// flows through a real FlowTable (summary numbers, queries waiting in their
// flow's summary: pcap mode) and one that goes by key (live mode). Records
// end by the idle timeout (or `take_at` for a record before its query's
// answer) and every summary is compared.
struct Step {
    uint16_t client_port;
    bool from_client;
    uint16_t id;
    uint64_t ts;
};

std::vector<std::pair<uint16_t, DnsSummary>> run_both(const std::vector<Step>& steps, bool with_table,
                                                     uint64_t take_at = 0, uint16_t take_port = 0) {
    DnsEnricher::Config cfg;
    cfg.timeout_ns = 2'000'000'000;
    DnsEnricher dns(cfg);
    FlowTableConfig fc;
    fc.idle_timeout_ns = 10'000'000'000;
    std::vector<std::pair<uint16_t, DnsSummary>> out;
    FlowTable table(fc, [](const FlowRecord&) {});
    auto flow = [](uint16_t client_port, bool from_client) {
        bpfix_flow_key k{};
        k.ip_version = BPFIX_IPV4;
        k.protocol = BPFIX_PROTO_UDP;
        k.src_addr[10] = k.src_addr[11] = k.dst_addr[10] = k.dst_addr[11] = 0xff;
        k.src_addr[12] = 10, k.src_addr[15] = from_client ? 1 : 2;
        k.dst_addr[12] = 10, k.dst_addr[15] = from_client ? 2 : 1;
        k.src_port = from_client ? client_port : 53;
        k.dst_port = from_client ? 53 : client_port;
        return k;
    };
    auto keep = [&out](const bpfix_flow_key& k, std::optional<DnsSummary> s) {
        if (s) out.emplace_back(k.src_port == 53 ? k.dst_port : k.src_port, std::move(*s));
    };
    if (with_table) {
        dns.set_locator([&table](const bpfix_flow_key& k) { return table.ext_of(k); });
        table.set_enrich([&](const bpfix_flow_key& k, uint32_t& ext, FlowRecord&) { keep(k, dns.take(k, &ext)); });
    }
    bool taken = false;
    for (const Step& st : steps) {
        dns.advance(st.ts);
        if (with_table) table.advance(st.ts);
        if (take_at && !taken && st.ts >= take_at) {
            // the record of one flow goes early (as at an active timeout)
            taken = true;
            const auto k = flow(take_port, true);
            if (with_table) {
                if (uint32_t* e = table.ext_of(k)) keep(k, dns.take(k, e));
            } else {
                keep(k, dns.take(k));
            }
        }
        const auto k = flow(st.client_port, st.from_client);
        auto m = Msg::header(st.id, st.from_client ? 0x0100 : 0x8180).name({"n" + std::to_string(st.id), "test"})
                     .u16(1).u16(1).b;
        if (with_table) {
            const uint32_t e = table.add(k, st.ts, 60, 0, 0);
            dns.packet(k, st.ts, m, &table.ext(e));
        } else {
            dns.packet(k, st.ts, m);
        }
    }
    const uint64_t end = steps.back().ts + 30'000'000'000;
    dns.advance(end);
    if (with_table) {
        table.advance(end);
    }
    for (uint16_t port = 40000; port < 40010; ++port) {
        for (bool c : {true, false}) keep(flow(port, c), dns.take(flow(port, c)));
    }
    // by client port, queries first, then what they counted
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        auto order = [](const auto& x) {
            return std::make_tuple(x.first, x.second.response(), x.second.messages, x.second.unanswered,
                                   x.second.answered);
        };
        return order(a) < order(b);
    });
    return out;
}

void expect_same(const std::vector<std::pair<uint16_t, DnsSummary>>& a,
                 const std::vector<std::pair<uint16_t, DnsSummary>>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        SCOPED_TRACE(i);
        const DnsSummary &x = a[i].second, &y = b[i].second;
        EXPECT_EQ(a[i].first, b[i].first);
        EXPECT_EQ(x.id, y.id);
        EXPECT_EQ(x.flags, y.flags);
        EXPECT_EQ(x.qname, y.qname.view());
        EXPECT_EQ(x.messages, y.messages);
        EXPECT_EQ(x.answered, y.answered);
        EXPECT_EQ(x.unanswered, y.unanswered);
        EXPECT_EQ(x.last_latency_us, y.last_latency_us);
        EXPECT_EQ(x.max_latency_us, y.max_latency_us);
    }
}

}  // namespace

TEST(DnsEnricher, QueriesWaitingInTheirFlowGiveWhatTheTransactionTableGives) {
    constexpr uint64_t ms = 1'000'000;
    const std::vector<Step> steps{
        {40000, true, 1, 0},            // answered after 3 ms
        {40001, true, 2, 1 * ms},       // never answered
        {40000, false, 1, 3 * ms},
        {40002, true, 3, 4 * ms},       // asked again 1 s later: the latency is the last try's
        {40002, true, 3, 1004 * ms},
        {40002, false, 3, 1010 * ms},
        {40003, true, 4, 1100 * ms},    // two queries waiting in one flow, answered in reverse order
        {40003, true, 5, 1101 * ms},
        {40003, false, 5, 1150 * ms},
        {40003, false, 4, 1190 * ms},
        {40004, false, 6, 1200 * ms},   // a response without a query
        {40005, true, 7, 1300 * ms},    // answered after the timeout: unanswered, then a late response
        {40005, false, 7, 3400 * ms},
        {40006, true, 8, 3500 * ms},
    };
    const auto by_table = run_both(steps, true), by_key = run_both(steps, false);
    expect_same(by_table, by_key);
    // and they say what they should
    ASSERT_EQ(by_table.size(), 11u);
    EXPECT_EQ(by_table[1].second.last_latency_us, 3000u);   // 40000 response
    EXPECT_EQ(by_table[2].second.unanswered, 1u);           // 40001 query
    EXPECT_EQ(by_table[4].second.last_latency_us, 6000u);   // 40002 response
    EXPECT_EQ(by_table[5].second.messages, 2u);             // 40003 queries: both answered
    EXPECT_EQ(by_table[5].second.unanswered, 0u);
    EXPECT_EQ(by_table[6].second.answered, 2u);             // 40003 responses
    EXPECT_EQ(by_table[6].second.max_latency_us, 90'000u);
    EXPECT_EQ(by_table[7].second.answered, 0u);             // 40004 response: nothing asked
    EXPECT_EQ(by_table[8].second.unanswered, 1u);           // 40005 query
    EXPECT_EQ(by_table[9].second.answered, 0u);             // 40005 late response
    EXPECT_EQ(by_table[10].second.unanswered, 1u);          // 40006 query
}

TEST(DnsEnricher, AQueryWaitingWhenItsFlowsRecordGoesIsCountedInALaterRecord) {
    constexpr uint64_t ms = 1'000'000;
    const std::vector<Step> steps{
        {40000, true, 1, 0},
        {40001, true, 2, 100 * ms},     // its record goes at 500 ms, before any answer
        {40001, false, 2, 900 * ms},    // answered later: the response flow still gets the latency
        {40002, true, 3, 1000 * ms},    // ...
        {40003, true, 4, 1100 * ms},
        {40000, false, 1, 1200 * ms},
    };
    expect_same(run_both(steps, true, 500 * ms, 40001), run_both(steps, false, 500 * ms, 40001));
    const std::vector<Step> unanswered{
        {40001, true, 2, 100 * ms},     // its record goes at 500 ms; never answered
        {40002, true, 3, 1000 * ms},
        {40003, true, 4, 5000 * ms},
    };
    const auto by_table = run_both(unanswered, true, 500 * ms, 40001);
    expect_same(by_table, run_both(unanswered, false, 500 * ms, 40001));
    // 40001: the early record (1 message), then a record with only the unanswered query
    ASSERT_GE(by_table.size(), 2u);
    EXPECT_EQ(by_table[0].first, 40001);
    EXPECT_EQ(by_table[1].first, 40001);
    EXPECT_EQ(by_table[0].second.messages + by_table[1].second.messages, 1u);
    EXPECT_EQ(by_table[0].second.unanswered + by_table[1].second.unanswered, 1u);
}

TEST(DnsEnricher, AQueryCrossingACaptureOnTwoVlansIsMatchedOnEach) {
    // pcap mode: the query and its response pass a trunk twice (VLAN 10 to
    // the router, VLAN 20 to the server); each copy of the query is answered
    // by the response on its own VLAN.
    DnsEnricher dns({});
    FlowTable table(FlowTableConfig{}, [](const FlowRecord&) {});
    dns.set_locator([&table](const bpfix_flow_key& k) { return table.ext_of(k); });
    auto flow = [](bool from_client, uint16_t vlan) {
        bpfix_flow_key k{};
        k.ip_version = BPFIX_IPV4;
        k.protocol = BPFIX_PROTO_UDP;
        k.vlan_id = vlan;
        k.src_addr[15] = from_client ? 1 : 2;
        k.dst_addr[15] = from_client ? 2 : 1;
        k.src_port = from_client ? 40000 : 53;
        k.dst_port = from_client ? 53 : 40000;
        return k;
    };
    auto q = Msg::header(7, 0x0100).name({"v", "test"}).u16(1).u16(1).b;
    auto r = Msg::header(7, 0x8180).name({"v", "test"}).u16(1).u16(1).b;
    auto send = [&](const bpfix_flow_key& k, const std::vector<uint8_t>& m, uint64_t ts) {
        dns.packet(k, ts, m, &table.ext(table.add(k, ts, 60, 0, 0)));
    };
    send(flow(true, 10), q, 1'000'000);
    send(flow(true, 20), q, 1'100'000);
    send(flow(false, 20), r, 5'100'000);  // 4 ms after the copy on VLAN 20
    send(flow(false, 10), r, 5'300'000);  // 4.3 ms after the one on VLAN 10
    dns.advance(60'000'000'000);
    for (auto [vlan, latency] : {std::pair<uint16_t, uint32_t>{10, 4300}, {20, 4000}}) {
        SCOPED_TRACE(vlan);
        auto rs = dns.take(flow(false, vlan), table.ext_of(flow(false, vlan)));
        ASSERT_TRUE(rs);
        EXPECT_EQ(rs->answered, 1u);
        EXPECT_EQ(rs->last_latency_us, latency);
        auto qs = dns.take(flow(true, vlan), table.ext_of(flow(true, vlan)));
        ASSERT_TRUE(qs);
        EXPECT_EQ(qs->unanswered, 0u);
    }
}
