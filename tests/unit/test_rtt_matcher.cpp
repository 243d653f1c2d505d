#include <gtest/gtest.h>

#include <cstring>

#include "rtt_matcher.h"

namespace bpfix {
namespace {

bpfix_flow_key flow(uint8_t src, uint8_t dst, uint16_t sport, uint16_t dport, uint32_t ifindex, uint8_t dir) {
    bpfix_flow_key k{};
    k.src_addr[0] = 10;
    k.src_addr[3] = src;
    k.dst_addr[0] = 10;
    k.dst_addr[3] = dst;
    k.src_port = sport;
    k.dst_port = dport;
    k.protocol = BPFIX_PROTO_TCP;
    k.ip_version = BPFIX_IPV4;
    k.ifindex = ifindex;
    k.direction = dir;
    return k;
}

RttSample sample(uint8_t local, uint8_t remote, uint16_t lport, uint16_t rport, uint32_t lo, uint32_t hi,
                 uint32_t last, uint32_t n, uint64_t ts) {
    RttSample s;
    std::memset(&s.key, 0, sizeof s.key);
    s.key.src_addr[0] = 10;
    s.key.src_addr[3] = local;
    s.key.dst_addr[0] = 10;
    s.key.dst_addr[3] = remote;
    s.key.src_port = lport;
    s.key.dst_port = rport;
    s.key.ip_version = BPFIX_IPV4;
    s.key.protocol = BPFIX_PROTO_TCP;
    s.min_us = lo;
    s.max_us = hi;
    s.last_us = last;
    s.samples = n;
    s.last_ns = ts;
    return s;
}

TEST(RttMatcher, SocketSamplesReachBothDirectionsOnEveryInterface) {
    RttMatcher m(60'000'000'000ULL);
    auto out = flow(1, 2, 40000, 80, 3, BPFIX_DIR_EGRESS);
    auto in = flow(2, 1, 80, 40000, 3, BPFIX_DIR_INGRESS);
    auto other_if = flow(1, 2, 40000, 80, 7, BPFIX_DIR_INGRESS);  // e.g. the bridge port the packets cross
    auto unrelated = flow(1, 2, 40001, 80, 3, BPFIX_DIR_EGRESS);
    for (const auto& k : {out, in, other_if, unrelated}) m.observe(k, 1);
    EXPECT_TRUE(m.add(sample(1, 2, 40000, 80, 900, 1200, 1000, 5, 100)));
    EXPECT_TRUE(m.add(sample(1, 2, 40000, 80, 800, 1100, 850, 2, 200)));
    for (const auto& k : {out, in, other_if}) {
        auto a = m.take(k);
        ASSERT_TRUE(a);
        EXPECT_EQ(a->min_us, 800u);
        EXPECT_EQ(a->max_us, 1200u);
        EXPECT_EQ(a->last_us, 850u);  // the later sample
        EXPECT_EQ(a->samples, 7u);
        EXPECT_FALSE(m.take(k));  // the next record starts empty
    }
    EXPECT_FALSE(m.take(unrelated));
}

TEST(RttMatcher, UnknownTupleAndNonTcpAreIgnored) {
    RttMatcher m(60'000'000'000ULL);
    auto udp = flow(1, 2, 40000, 80, 3, BPFIX_DIR_EGRESS);
    udp.protocol = BPFIX_PROTO_UDP;
    m.observe(udp, 1);
    EXPECT_EQ(m.flow_keys(), 0u);
    EXPECT_FALSE(m.add(sample(1, 2, 40000, 80, 1, 1, 1, 1, 1)));
}

TEST(RttMatcher, KeysNotSeenForTheLifetimeAreForgotten) {
    const uint64_t life = 10'000'000'000ULL;
    RttMatcher m(life);
    auto k = flow(1, 2, 40000, 80, 3, BPFIX_DIR_EGRESS);
    m.observe(k, 1'000'000'000ULL);
    m.add(sample(1, 2, 40000, 80, 5, 5, 5, 1, 1));
    m.expire(1'000'000'000ULL + life + 1);
    EXPECT_EQ(m.flow_keys(), 0u);
    EXPECT_FALSE(m.take(k));
    EXPECT_FALSE(m.add(sample(1, 2, 40000, 80, 5, 5, 5, 1, 2)));
}

}  // namespace
}  // namespace bpfix
