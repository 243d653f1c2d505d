// RTT from the TCP handshake seen at the capture point (pcap mode).
#include <gtest/gtest.h>

#include "tcp_rtt.h"

using namespace bpfix;

namespace {

bpfix_flow_key client_to_server() {
    bpfix_flow_key k{};
    k.src_addr[15] = 1;
    k.dst_addr[15] = 2;
    k.src_port = 40000;
    k.dst_port = 443;
    k.protocol = 6;
    k.ip_version = 4;
    return k;
}

constexpr uint16_t SYN = 0x02, ACK = 0x10, RST = 0x04, PSH = 0x08;

}  // namespace

TEST(HandshakeRtt, SynSynAckAckGivesBothSidesAndTheWhole) {
    HandshakeRttEstimator est;
    auto c = client_to_server();
    auto s = reverse_key(c);
    est.packet(c, 1'000'000, SYN);
    est.packet(s, 1'000'000 + 30'000'000, SYN | ACK);  // server 30 ms away
    est.packet(c, 1'000'000 + 30'000'000 + 2'000'000, ACK);  // client 2 ms away
    est.packet(c, 40'000'000, ACK | PSH);  // data: no new sample
    auto a = est.take(c);
    auto b = est.take(s);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->rtt_ns, 32'000'000u);
    EXPECT_EQ(a->server_side_ns, 30'000'000u);
    EXPECT_EQ(a->client_side_ns, 2'000'000u);
    EXPECT_EQ(b->rtt_ns, a->rtt_ns);
    EXPECT_FALSE(est.take(c));
    EXPECT_EQ(est.measured(), 1u);
    EXPECT_EQ(est.pending(), 0u);
}

TEST(HandshakeRtt, RetransmittedSynCountsFromTheLastAndIncompleteOnesGiveNothing) {
    HandshakeRttEstimator est;
    auto c = client_to_server();
    auto s = reverse_key(c);
    est.packet(c, 0, SYN);
    est.packet(c, 1'000'000'000, SYN);  // retransmitted after 1 s
    est.packet(s, 1'010'000'000, SYN | ACK);
    est.packet(c, 1'011'000'000, ACK);
    ASSERT_TRUE(est.take(c));
    EXPECT_EQ(est.take(s)->rtt_ns, 11'000'000u);

    auto c2 = c;
    c2.src_port = 40001;
    est.packet(c2, 0, SYN);
    est.packet(reverse_key(c2), 5, RST | ACK);  // refused
    est.packet(c2, 10, ACK);
    EXPECT_FALSE(est.take(c2));
    auto c3 = c;
    c3.src_port = 40002;
    est.packet(c3, 0, SYN);  // never answered
    est.packet(c3, 10, ACK);  // an ACK without a SYN-ACK: not a handshake
    EXPECT_FALSE(est.take(c3));
    est.expire(100);
    EXPECT_EQ(est.pending(), 0u);
}

TEST(HandshakeRtt, ExpiryForgetsOnlyHandshakesStartedBeforeTheLimit) {
    HandshakeRttEstimator est;
    auto a = client_to_server(), b = a, c = a;
    b.src_port = 40011;
    c.src_port = 40012;
    est.packet(a, 10, SYN);
    est.packet(b, 20, SYN);
    est.packet(c, 30, SYN);
    est.packet(a, 40, SYN);  // retransmitted: counts from 40 now
    est.expire(35);          // b and c started before 35
    EXPECT_EQ(est.pending(), 1u);
    est.packet(reverse_key(a), 50, SYN | ACK);
    est.packet(a, 60, ACK);
    ASSERT_TRUE(est.take(a));
    EXPECT_EQ(est.take(reverse_key(a))->rtt_ns, 20u);
    est.packet(reverse_key(b), 70, SYN | ACK);  // b was forgotten
    est.packet(b, 80, ACK);
    EXPECT_FALSE(est.take(b));
}

TEST(HandshakeRtt, Bounded) {
    HandshakeRttEstimator est(2);
    auto c = client_to_server();
    for (uint16_t p = 1; p <= 4; ++p) {
        c.src_port = p;
        est.packet(c, 0, SYN);
    }
    EXPECT_EQ(est.pending(), 2u);
    EXPECT_EQ(est.overflow(), 2u);
}
