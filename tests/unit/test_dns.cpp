// DNS header and question parsing (UDP and TCP framing), hostile names,
// and query/response matching for latency and unanswered lookups.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dns.h"

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
    auto q2 = Msg::header(2, 0x0100).name({"b", "test"}).u16(16).u16(1);
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
    seg.resize(seg.size() - 3);
    EXPECT_EQ(parse_dns_tcp(seg).size(), 1u);
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
