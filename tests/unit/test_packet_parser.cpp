#include <gtest/gtest.h>

#include "packet_builder.h"
#include "packet_parser.h"

using namespace bpfix;
using bpfix::test::Frame;

namespace {
constexpr int kEth = 1;

ParseStatus parse(const Frame& f, ParsedPacket& p, int dlt = kEth) {
    return parse_packet(f.data().data(), f.size(), f.size(), dlt, p);
}
}  // namespace

TEST(PacketParser, Ipv4Tcp) {
    Frame f;
    f.eth(0x0800).ipv4(6, {10, 0, 0, 1}, {10, 0, 0, 2}, 40, 0, 1, 5, 0x20).tcp(1234, 80, 0x12);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.ip_version, 4);
    EXPECT_EQ(p.key.protocol, 6);
    EXPECT_EQ(p.key.src_addr[0], 10);
    EXPECT_EQ(p.key.dst_addr[3], 2);
    EXPECT_EQ(p.key.src_port, 1234);
    EXPECT_EQ(p.key.dst_port, 80);
    EXPECT_EQ(p.tcp_flags, 0x12);
    EXPECT_EQ(p.ip_octets, 40u);
    EXPECT_EQ(p.tos, 0x20);
    EXPECT_FALSE(p.fragment);
}

TEST(PacketParser, Ipv4OptionsAreSkipped) {
    Frame f;
    f.eth(0x0800).ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 36, 0, 1, 7).udp(53, 5353, 8);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.src_port, 53);
    EXPECT_EQ(p.key.dst_port, 5353);
}

TEST(PacketParser, VlanAndQinQ) {
    Frame f;
    f.eth(0x88a8).vlan(0x8100, 100).vlan(0x0800, 0x2000 | 200).ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 28).udp(1, 2, 8);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.vlan_id, 100);
    EXPECT_EQ(p.key.inner_vlan_id, 200);  // PCP bits masked off
    EXPECT_EQ(p.key.src_port, 1);
}

TEST(PacketParser, IcmpTypeCode) {
    Frame f;
    f.eth(0x0800).ipv4(1, {1, 1, 1, 1}, {2, 2, 2, 2}, 28).icmp(3, 4);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.icmp_type_code, 0x0304);
    EXPECT_EQ(p.key.src_port, 0);
    EXPECT_EQ(p.key.dst_port, 0);
}

TEST(PacketParser, Ipv6ExtensionHeadersThenTcp) {
    Frame f;
    // hop-by-hop (8 bytes) -> destination options (16 bytes) -> TCP
    f.eth(0x86dd).ipv6(0, 1, 2, 8 + 16 + 20);
    f.b(60).b(0).zeros(6);
    f.b(6).b(1).zeros(14);
    f.tcp(443, 50000, 0x18);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.ip_version, 6);
    EXPECT_EQ(p.key.protocol, 6);
    EXPECT_EQ(p.key.src_port, 443);
    EXPECT_EQ(p.ip_octets, 40u + 44u);
}

TEST(PacketParser, Ipv6EndlessChainIsMalformed) {
    Frame f;
    f.eth(0x86dd).ipv6(60, 1, 2, 400);
    for (int i = 0; i < 3; ++i) f.b(60).b(0).zeros(6);  // chain runs past the captured bytes
    ParsedPacket p;
    EXPECT_EQ(parse(f, p), ParseStatus::malformed);

    Frame g;
    g.eth(0x86dd).ipv6(60, 1, 2, 20 * 8);
    for (int i = 0; i < 20; ++i) g.b(60).b(0).zeros(6);  // more than 16 headers
    EXPECT_EQ(parse(g, p), ParseStatus::malformed);
}

TEST(PacketParser, Ipv4Fragments) {
    Frame first;
    first.eth(0x0800).ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 1500, 0x2000, 77).udp(1000, 2000, 3000);
    ParsedPacket p;
    ASSERT_EQ(parse(first, p), ParseStatus::ok);
    EXPECT_TRUE(p.fragment);
    EXPECT_TRUE(p.first_fragment);
    EXPECT_EQ(p.frag_id, 77u);
    EXPECT_EQ(p.key.src_port, 1000);

    Frame later;
    later.eth(0x0800).ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 1020, 185, 77).zeros(16);
    ASSERT_EQ(parse(later, p), ParseStatus::ok);
    EXPECT_TRUE(p.fragment);
    EXPECT_FALSE(p.first_fragment);
    EXPECT_EQ(p.key.src_port, 0);
    EXPECT_EQ(p.ip_octets, 1020u);
}

TEST(PacketParser, Ipv6NonFirstFragmentTakesProtocolFromFragmentHeader) {
    Frame f;
    f.eth(0x86dd).ipv6(44, 1, 2, 8 + 100);
    f.b(17).b(0).be16(100 << 3).be32(0xabcdef);
    f.zeros(100);
    ParsedPacket p;
    ASSERT_EQ(parse(f, p), ParseStatus::ok);
    EXPECT_EQ(p.key.protocol, 17);
    EXPECT_FALSE(p.first_fragment);
    EXPECT_EQ(p.frag_id, 0xabcdefu);
}

TEST(PacketParser, TruncatedAndBroken) {
    ParsedPacket p;
    Frame cut_ip;
    cut_ip.eth(0x0800).b(0x45).b(0).be16(60);  // IPv4 header cut after 4 bytes
    EXPECT_EQ(parse(cut_ip, p), ParseStatus::malformed);

    Frame cut_tcp;
    cut_tcp.eth(0x0800).ipv4(6, {1, 1, 1, 1}, {2, 2, 2, 2}, 40).be16(1);
    EXPECT_EQ(parse(cut_tcp, p), ParseStatus::malformed);

    Frame bad_ihl;
    bad_ihl.eth(0x0800).ipv4(6, {1, 1, 1, 1}, {2, 2, 2, 2}, 40, 0, 1, 4).tcp(1, 2, 2);
    EXPECT_EQ(parse(bad_ihl, p), ParseStatus::malformed);

    Frame runt;
    runt.b(1).b(2).b(3);
    EXPECT_EQ(parse(runt, p), ParseStatus::malformed);

    Frame arp;
    arp.eth(0x0806).zeros(28);
    EXPECT_EQ(parse(arp, p), ParseStatus::non_ip);
}

TEST(PacketParser, RawAndCookedLinkTypes) {
    Frame raw;
    raw.ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 28).udp(7, 9, 8);
    ParsedPacket p;
    ASSERT_EQ(parse(raw, p, 101), ParseStatus::ok);
    EXPECT_EQ(p.key.dst_port, 9);

    Frame sll;
    sll.be16(0).be16(1).be16(6).zeros(8).be16(0x0800).ipv4(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 28).udp(7, 9, 8);
    ASSERT_EQ(parse(sll, p, 113), ParseStatus::ok);
    EXPECT_EQ(p.key.src_port, 7);
}

TEST(PacketParser, NeverReadsPastCaplen) {
    // Every prefix of a valid frame parses without touching bytes beyond it
    // (valgrind/ASan make this bite); a prefix that cuts the headers we need
    // (up to the end of the TCP header at byte 86) is an error, the rest parse.
    Frame f;
    f.eth(0x8100).vlan(0x86dd, 5).ipv6(0, 1, 2, 8 + 20);
    f.b(6).b(0).zeros(6);
    f.tcp(1, 2, 2);
    for (size_t n = 0; n < f.size(); ++n) {
        std::vector<uint8_t> prefix(f.data().begin(), f.data().begin() + static_cast<long>(n));
        ParsedPacket p;
        auto st = parse_packet(prefix.data(), n, f.size(), kEth, p);
        if (n < 86) {
            EXPECT_EQ(st, ParseStatus::malformed) << n;
        } else {
            EXPECT_EQ(st, ParseStatus::ok) << n;
        }
    }
}
