// bpf tier (root): the TC flow meter as a function. Frames built in code run
// through BPF_PROG_TEST_RUN; the flow map must hold exactly the flows the
// pcap path (FlowMeter) makes of the same frames: one set of expectations,
// two engines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <tuple>
#include <vector>

#include "bpfix_abi.h"
#include "filter_rules.h"
#include "flow_meter.h"
#include "flow_meter.skel.h"
#include "packet_builder.h"

using namespace bpfix;
using bpfix::test::Frame;

namespace {

struct SkelDeleter {
    void operator()(flow_meter* s) const { flow_meter__destroy(s); }
};

// Totals per flow key, whichever engine made them.
struct Totals {
    uint64_t packets = 0, bytes = 0;
    uint16_t flags = 0;
    bool operator==(const Totals&) const = default;
};
using FlowKeyBytes = std::vector<uint8_t>;
using FlowSet = std::map<FlowKeyBytes, Totals>;

FlowKeyBytes key_bytes(const bpfix_flow_key& k) {
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    return FlowKeyBytes(p, p + sizeof k);
}

std::string describe(const FlowKeyBytes& kb) {
    bpfix_flow_key k;
    memcpy(&k, kb.data(), sizeof k);
    return "v" + std::to_string(k.ip_version) + " proto " + std::to_string(k.protocol) + " ports " +
           std::to_string(k.src_port) + "->" + std::to_string(k.dst_port) + " icmp " +
           std::to_string(k.icmp_type_code) + " vlan " + std::to_string(k.vlan_id) + "/" +
           std::to_string(k.inner_vlan_id) + " src[3] " + std::to_string(k.src_addr[3]);
}

std::vector<Frame> fixture_frames() {
    std::vector<Frame> f;
    auto add = [&f](Frame x) { f.push_back(std::move(x)); };
    const std::initializer_list<uint8_t> a{10, 0, 0, 1}, b{10, 0, 0, 2};
    // A TCP connection, both directions, FIN and RST.
    add(Frame().eth(0x0800).ipv4(6, a, b, 40).tcp(40000, 80, 0x02));
    add(Frame().eth(0x0800).ipv4(6, b, a, 40).tcp(80, 40000, 0x12));
    add(Frame().eth(0x0800).ipv4(6, a, b, 540).tcp(40000, 80, 0x18).zeros(500));
    add(Frame().eth(0x0800).ipv4(6, a, b, 40).tcp(40000, 80, 0x11));
    add(Frame().eth(0x0800).ipv4(6, b, a, 40).tcp(80, 40000, 0x14));
    // UDP, with TOS, with IPv4 options, tagged, double tagged.
    add(Frame().eth(0x0800).ipv4(17, a, b, 128, 0, 1, 5, 0x28).udp(5353, 53, 108).zeros(100));
    add(Frame().eth(0x0800).ipv4(17, a, b, 36, 0, 1, 7).udp(5353, 53, 8));
    add(Frame().eth(0x8100).vlan(0x0800, 100).ipv4(17, a, b, 28).udp(5353, 53, 8));
    add(Frame().eth(0x88a8).vlan(0x8100, 200).vlan(0x0800, 300).ipv4(17, a, b, 28).udp(5353, 53, 8));
    // ICMP and ICMPv6.
    add(Frame().eth(0x0800).ipv4(1, a, b, 84).icmp(8, 0).zeros(56));
    add(Frame().eth(0x0800).ipv4(1, b, a, 84).icmp(0, 0).zeros(56));
    add(Frame().eth(0x86dd).ipv6(58, 1, 2, 8).icmp(128, 0));
    // IPv6 TCP behind hop-by-hop and destination options.
    {
        Frame x;
        x.eth(0x86dd).ipv6(0, 1, 2, 8 + 16 + 20);
        x.b(60).b(0).zeros(6);
        x.b(6).b(1).zeros(14);
        x.tcp(443, 50000, 0x18);
        add(x);
    }
    // An IPv6 jumbogram (RFC 2675): Payload Length 0, the length in a Jumbo
    // option behind Pad1 and PadN; and TCP behind an Authentication Header.
    {
        Frame x;
        x.eth(0x86dd).ipv6(0, 5, 6, 0);
        x.b(17).b(1).b(0).b(1).b(1).b(0xc2).b(0xc2).b(4).be32(70000).b(1).b(2).zeros(2);
        x.udp(4000, 4001, 8 + 64).zeros(64);
        add(x);
        Frame ah;
        ah.eth(0x86dd).ipv6(51, 5, 6, 24 + 20);
        ah.b(6).b(4).zeros(2).be32(0x100).be32(1).zeros(12);
        ah.tcp(22, 60000, 0x10);
        add(ah);
    }
    // SCTP and DCCP carry ports too.
    add(Frame().eth(0x0800).ipv4(132, a, b, 32).be16(3868).be16(3868).zeros(8));
    add(Frame().eth(0x0800).ipv4(33, a, b, 32).be16(5004).be16(5005).zeros(8));
    // IPv4 fragments: first, a later one of the same datagram, an orphan.
    add(Frame().eth(0x0800).ipv4(17, a, b, 1500, 0x2000, 77).udp(7000, 7001, 2000).zeros(1472));
    add(Frame().eth(0x0800).ipv4(17, a, b, 548, 185, 77).zeros(528));
    add(Frame().eth(0x0800).ipv4(17, a, b, 548, 185, 99).zeros(528));
    // IPv6 fragments: first (carries UDP ports), then a later one.
    {
        Frame first;
        first.eth(0x86dd).ipv6(44, 3, 4, 8 + 8 + 32);
        first.b(17).b(0).be16(0x0001).be32(0x1234);  // offset 0, M=1
        first.udp(9000, 9001, 1000).zeros(32);
        add(first);
        Frame later;
        later.eth(0x86dd).ipv6(44, 3, 4, 8 + 64);
        later.b(17).b(0).be16(5 << 3).be32(0x1234);
        later.zeros(64);
        add(later);
    }
    // Not IP, and broken frames: each must be counted, never a flow.
    add(Frame().eth(0x0806).zeros(28));
    // (BPF_PROG_TEST_RUN refuses frames shorter than their IP header, so
    // the cut cases here are cut after it; the unit tests cover the rest.)
    add(Frame().eth(0x0800).ipv4(6, a, b, 40).be16(1));                          // TCP header cut
    add(Frame().eth(0x0800).ipv4(6, a, b, 40, 0, 1, 4).tcp(1, 2, 2));            // IHL 4
    add(Frame().eth(0x0800).ipv4(17, a, b, 36).udp(1, 2, 16).zeros(8).b(0x60));  // fine, trailing byte
    {
        Frame endless;
        endless.eth(0x86dd).ipv6(60, 1, 2, 400);
        for (int i = 0; i < 3; ++i) endless.b(60).b(0).zeros(6);
        add(endless);
        Frame too_many;
        too_many.eth(0x86dd).ipv6(60, 1, 2, 20 * 8);
        for (int i = 0; i < 20; ++i) too_many.b(60).b(0).zeros(6);
        add(too_many);
    }
    return f;
}

// Every flow in the first cache and flow map, the values of every CPU and
// of both places summed per key.
FlowSet kernel_flows(flow_meter* skel, std::vector<bpfix_counter>& counters_out) {
    FlowSet out;
    int ncpu = libbpf_num_possible_cpus();
    auto add = [&out](const bpfix_flow_key& k, const bpfix_flow_stats& v) {
        if (v.packets == 0) return;
        Totals& t = out[key_bytes(k)];
        t.packets += v.packets;
        t.bytes += v.bytes;
        t.flags |= v.tcp_flags;
    };
    int fd = bpf_map__fd(skel->maps.flows_0);
    std::vector<bpfix_flow_stats> values(static_cast<size_t>(ncpu));
    bpfix_flow_key key{}, next{};
    bpfix_flow_key* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        EXPECT_EQ(bpf_map_lookup_elem(fd, &next, values.data()), 0);
        for (const auto& v : values) add(next, v);
        key = next;
        prev = &key;
    }
    int cache = bpf_map__fd(skel->maps.cache_0);
    std::vector<bpfix_flow_slot> slots(static_cast<size_t>(ncpu));
    for (uint32_t i = 0; i < bpf_map__max_entries(skel->maps.cache_0); ++i) {
        EXPECT_EQ(bpf_map_lookup_elem(cache, &i, slots.data()), 0);
        for (const auto& s : slots) add(s.key, s.stats);
    }
    int cfd = bpf_map__fd(skel->maps.counters);
    std::vector<bpfix_counter> per_cpu(static_cast<size_t>(ncpu));
    counters_out.assign(BPFIX_CNT_MAX, {});
    for (uint32_t i = 0; i < BPFIX_CNT_MAX; ++i) {
        EXPECT_EQ(bpf_map_lookup_elem(cfd, &i, per_cpu.data()), 0);
        for (const auto& c : per_cpu) {
            counters_out[i].packets += c.packets;
            counters_out[i].bytes += c.bytes;
        }
    }
    return out;
}

}  // namespace

// The flow meter with a cache of `slots` slots (0: no cache), as
// KernelMeter sets it up.
flow_meter* load_meter(uint32_t slots) {
    flow_meter* skel = flow_meter__open();
    if (!skel) return nullptr;
    bpf_map__set_max_entries(skel->maps.cache_0, slots ? slots : 1);
    skel->rodata->cache_enabled = slots != 0;
    skel->rodata->cache_mask = slots ? slots - 1 : 0;
    if (flow_meter__load(skel) != 0) {
        flow_meter__destroy(skel);
        return nullptr;
    }
    return skel;
}

// Cache sizes: the default, one slot (every flow but the first collides
// and goes to the flow map), and no cache at all. The flows must not change.
class FlowMeterCache : public ::testing::TestWithParam<uint32_t> {};
INSTANTIATE_TEST_SUITE_P(Slots, FlowMeterCache, ::testing::Values(4096u, 1u, 0u));

TEST_P(FlowMeterCache, SameFlowsAsThePcapPath) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<flow_meter, SkelDeleter> skel(load_meter(GetParam()));
    ASSERT_TRUE(skel) << "flow_meter failed to load (see libbpf output above)";

    auto frames = fixture_frames();
    for (const Frame& f : frames) {
        std::vector<uint8_t> data = f.data();
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                    .repeat = 1);
        ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_ingress), &opts), 0)
            << "frame of " << data.size() << " bytes";
        EXPECT_EQ(opts.retval, 0);  // TC_ACT_OK: metering never changes the packet's fate
    }
    std::vector<bpfix_counter> counters;
    FlowSet kernel = kernel_flows(skel.get(), counters);
    ASSERT_FALSE(kernel.empty());

    // Every kernel key carries the test device and the ingress direction.
    uint32_t ifindex = 0;
    for (const auto& [kb, t] : kernel) {
        bpfix_flow_key k;
        memcpy(&k, kb.data(), sizeof k);
        EXPECT_EQ(k.direction, BPFIX_DIR_INGRESS);
        if (ifindex == 0) ifindex = k.ifindex;
        EXPECT_EQ(k.ifindex, ifindex);
    }

    // The pcap path over the same frames, timeouts long enough to keep one
    // record per flow except where TCP ends it; records are summed per flow
    // identity (the kernel aggregates until user space drains).
    FlowTableConfig cfg;
    cfg.idle_timeout_ns = cfg.active_timeout_ns = 3600ULL * 1'000'000'000ULL;
    uint64_t ts = 1'700'000'000ULL * 1'000'000'000ULL;
    std::vector<FlowRecord> records;
    FlowMeter meter(cfg, ifindex, BPFIX_DIR_INGRESS, [&](const FlowRecord& r) { records.push_back(r); });
    for (const Frame& f : frames) {
        meter.packet(f.data().data(), f.size(), f.size(), 1, ts += 1'000'000);
    }
    meter.finish();

    // Convert kernel flows into the same record form and compare as sets of
    // (flow identity, totals), summing user records that share an identity.
    auto identity = [](const FlowRecord& r) {
        FlowRecord id = r;
        id.flowStartMilliseconds = id.flowEndMilliseconds = 0;
        id.packetDeltaCount = id.octetDeltaCount = 0;
        id.tcpControlBits = 0;
        id.ipClassOfService = 0;
        id.flowEndReason = 0;
        const auto* p = reinterpret_cast<const uint8_t*>(&id);
        return std::vector<uint8_t>(p, p + sizeof id);
    };
    std::map<std::vector<uint8_t>, Totals> from_user, from_kernel;
    for (const auto& r : records) {
        Totals& t = from_user[identity(r)];
        t.packets += r.packetDeltaCount;
        t.bytes += r.octetDeltaCount;
        t.flags |= r.tcpControlBits;
    }
    std::map<std::vector<uint8_t>, std::string> names;
    for (const auto& [kb, t] : kernel) {
        bpfix_flow_key k;
        memcpy(&k, kb.data(), sizeof k);
        auto id = identity(make_flow_record(k));
        from_kernel[id] = t;
        names[id] = describe(kb);
    }
    for (const auto& [id, t] : from_kernel) {
        auto it = from_user.find(id);
        if (it == from_user.end()) {
            ADD_FAILURE() << "kernel flow missing in the pcap path: " << names[id];
            continue;
        }
        EXPECT_EQ(t.packets, it->second.packets) << names[id];
        EXPECT_EQ(t.bytes, it->second.bytes) << names[id];
        EXPECT_EQ(t.flags, it->second.flags) << names[id];
    }
    EXPECT_EQ(from_kernel.size(), from_user.size());

    EXPECT_EQ(counters[BPFIX_CNT_NON_IP].packets, meter.counters().non_ip);
    EXPECT_EQ(counters[BPFIX_CNT_MALFORMED].packets, meter.counters().malformed);
    EXPECT_EQ(counters[BPFIX_CNT_MAP_FULL].packets, 0u);
    // Every frame is in a flow or a counter.
    uint64_t in_flows = 0;
    for (const auto& [kb, t] : kernel) in_flows += t.packets;
    EXPECT_EQ(in_flows + counters[BPFIX_CNT_NON_IP].packets + counters[BPFIX_CNT_MALFORMED].packets, frames.size());
}

TEST(FlowMeterBpf, GsoSuperPacketCountsItsSegments) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<flow_meter, SkelDeleter> skel(flow_meter__open_and_load());
    ASSERT_TRUE(skel);
    // One TSO super-packet: IPv4 + TCP with 12 bytes of options (doff 8),
    // three 1000-byte segments' worth of payload.
    constexpr unsigned kSegs = 3, kPayload = 1000, kHdr = 20 + 32;
    Frame f;
    f.eth(0x0800).ipv4(6, {10, 0, 0, 1}, {10, 0, 0, 2}, kHdr + kSegs * kPayload);
    f.be16(40000).be16(5201).be32(1).be32(1).b(0x80).b(0x18).be16(512).be16(0).be16(0);
    f.zeros(12 + kSegs * kPayload);
    std::vector<uint8_t> data = f.data();
    __sk_buff ctx{};
    ctx.gso_segs = kSegs;
    ctx.gso_size = kPayload;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_egress), &opts), 0);
    std::vector<bpfix_counter> counters;
    FlowSet flows = kernel_flows(skel.get(), counters);
    ASSERT_EQ(flows.size(), 1u);
    const Totals& t = flows.begin()->second;
    EXPECT_EQ(t.packets, kSegs);
    // Every segment on the wire carries its own IP and TCP headers.
    EXPECT_EQ(t.bytes, kSegs * (kHdr + kPayload));
}

// With one cache slot the first flow owns it and every other flow must go
// to the flow map: flows that differ from it in a single key field stay
// apart, each with its own count.
TEST(FlowMeterBpf, CacheKeepsFlowsThatDifferInOneField) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<flow_meter, SkelDeleter> skel(load_meter(1));
    ASSERT_TRUE(skel);
    const std::initializer_list<uint8_t> a{10, 0, 0, 1}, b{10, 0, 0, 2};
    struct Case {
        Frame frame;
        bool egress;
        int times;
    };
    std::vector<Case> cases;
    cases.push_back({Frame().eth(0x0800).ipv4(17, a, b, 28).udp(7, 7, 8), false, 3});        // the slot's owner
    cases.push_back({Frame().eth(0x0800).ipv4(136, a, b, 28).udp(7, 7, 8), false, 4});       // protocol
    cases.push_back({Frame().eth(0x0800).ipv4(17, a, b, 28).udp(7, 7, 8), true, 5});         // direction
    cases.push_back({Frame().eth(0x8100).vlan(0x0800, 7).ipv4(17, a, b, 28).udp(7, 7, 8), false, 6});  // VLAN
    cases.push_back({Frame().eth(0x88a8).vlan(0x8100, 0).vlan(0x0800, 7).ipv4(17, a, b, 28).udp(7, 7, 8), false,
                     7});  // inner VLAN
    cases.push_back({Frame().eth(0x0800).ipv4(17, a, b, 28).udp(7, 8, 8), false, 8});  // port
    for (const Case& c : cases) {
        std::vector<uint8_t> data = c.frame.data();
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                    .repeat = c.times);
        ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(c.egress ? skel->progs.meter_egress
                                                                   : skel->progs.meter_ingress),
                                         &opts),
                  0);
    }
    std::vector<bpfix_counter> counters;
    FlowSet flows = kernel_flows(skel.get(), counters);
    ASSERT_EQ(flows.size(), cases.size());
    std::multiset<uint64_t> got, want;  // packets per flow
    for (const auto& [kb, t] : flows) got.insert(t.packets);
    for (const Case& c : cases) want.insert(static_cast<uint64_t>(c.times));
    EXPECT_EQ(got, want);
}

// BIG TCP: GSO packets over 64 KiB carry IPv4 Total Length 0 or IPv6
// Payload Length 0 without a Jumbo option (the length is the skb's), or an
// IPv6 Jumbo option in a hop-by-hop header the segments do not carry.
TEST(FlowMeterBpf, BigTcpSuperPacketsTakeTheirLengthFromTheSkb) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<flow_meter, SkelDeleter> skel(flow_meter__open_and_load());
    ASSERT_TRUE(skel);
    // BPF_PROG_TEST_RUN takes at most a page of data: a small super-packet
    // with the length field zeroed stands for a big one.
    constexpr unsigned kSegs = 2, kPayload = 1000;
    Frame v4;
    v4.eth(0x0800).ipv4(6, {10, 0, 0, 1}, {10, 0, 0, 2}, 0).tcp(40000, 5201, 0x10).zeros(kSegs * kPayload);
    Frame v6;
    v6.eth(0x86dd).ipv6(6, 1, 2, 0).tcp(40000, 5201, 0x10).zeros(kSegs * kPayload);
    // The IPv6 stack (6.18 here) adds an 8-octet hop-by-hop header with a
    // Jumbo option to the super-packet; the segments on the wire lack it.
    Frame v6hbh;
    v6hbh.eth(0x86dd).ipv6(0, 1, 2, 0).b(6).b(0).b(0xc2).b(4).be32(8 + 20 + kSegs * kPayload);
    v6hbh.tcp(40001, 5201, 0x10).zeros(kSegs * kPayload);
    for (const Frame* f : {&v4, &v6, &v6hbh}) {
        std::vector<uint8_t> data = f->data();
        __sk_buff ctx{};
        ctx.gso_segs = kSegs;
        ctx.gso_size = kPayload;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                    .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = 1);
        ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_egress), &opts), 0);
    }
    std::vector<bpfix_counter> counters;
    FlowSet flows = kernel_flows(skel.get(), counters);
    EXPECT_EQ(counters[BPFIX_CNT_MALFORMED].packets, 0u);
    ASSERT_EQ(flows.size(), 3u);
    for (const auto& [kb, t] : flows) {
        bpfix_flow_key k;
        memcpy(&k, kb.data(), sizeof k);
        unsigned hdr = (k.ip_version == BPFIX_IPV4 ? 20 : 40) + 20;
        EXPECT_EQ(t.packets, kSegs) << describe(kb);
        EXPECT_EQ(t.bytes, kSegs * (hdr + kPayload)) << describe(kb);
    }
    // Without GSO a zero length is still malformed, as in the pcap path.
    std::vector<uint8_t> data = v4.data();
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_egress), &opts), 0);
    flows = kernel_flows(skel.get(), counters);
    EXPECT_EQ(counters[BPFIX_CNT_MALFORMED].packets, 1u);
}

TEST(FlowMeterBpf, SamplingMetersOneInN) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<flow_meter, SkelDeleter> skel(flow_meter__open());
    ASSERT_TRUE(skel);
    skel->rodata->sampling_interval = 10;
    ASSERT_EQ(flow_meter__load(skel.get()), 0);
    Frame f;
    f.eth(0x0800).ipv4(17, {10, 0, 0, 1}, {10, 0, 0, 2}, 28).udp(1, 2, 8);
    std::vector<uint8_t> data = f.data();
    // BPF_PROG_TEST_RUN repeats on one CPU, so the per-CPU count is exact.
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                .repeat = 1000);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_ingress), &opts), 0);
    std::vector<bpfix_counter> counters;
    FlowSet flows = kernel_flows(skel.get(), counters);
    ASSERT_EQ(flows.size(), 1u);
    EXPECT_EQ(flows.begin()->second.packets, 100u);
    EXPECT_EQ(counters[BPFIX_CNT_SAMPLED_OUT].packets, 900u);
}

TEST(FlowMeterBpf, FilterRulesFirstMatchWins) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    // Reject DNS either way, accept 10.0.0.0/8 peers, reject the rest (allow list).
    auto filter = compile_filter({{"reject", "udp", "", "", "", "53", "", "", ""},
                                  {"accept", "", "", "", "10.0.0.0/8", "", "", "", ""}});
    std::unique_ptr<flow_meter, SkelDeleter> skel(flow_meter__open());
    ASSERT_TRUE(skel);
    ASSERT_EQ(flow_meter__load(skel.get()), 0) << "the verifier refused the filter loop";
    auto install = [&](const CompiledFilter& f) {
        install_filter(bpf_map__fd(skel->maps.filter_rules), skel->data->filter_sets, &skel->bss->filter_bank, f,
                       "live.filter");
    };
    install(filter);
    std::vector<Frame> frames = {
        Frame().eth(0x0800).ipv4(17, {10, 0, 0, 1}, {10, 0, 0, 2}, 28).udp(5353, 53, 8),       // DNS: rejected
        Frame().eth(0x0800).ipv4(17, {192, 0, 2, 1}, {10, 9, 9, 9}, 28).udp(4000, 5000, 8),    // peer in 10/8
        Frame().eth(0x0800).ipv4(6, {192, 0, 2, 1}, {198, 51, 100, 1}, 40).tcp(1, 2, 0x02),   // no rule: rejected
    };
    auto run = [&] {
        for (const Frame& f : frames) {
            std::vector<uint8_t> data = f.data();
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                        .data_size_in = static_cast<__u32>(data.size()), .repeat = 1);
            ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_ingress), &opts), 0);
        }
    };
    run();
    std::vector<bpfix_counter> counters;
    FlowSet flows = kernel_flows(skel.get(), counters);
    ASSERT_EQ(flows.size(), 1u);
    bpfix_flow_key k;
    memcpy(&k, flows.begin()->first.data(), sizeof k);
    EXPECT_EQ(k.src_port, 4000);
    EXPECT_EQ(counters[BPFIX_CNT_FILTERED].packets, 2u);

    // A reload while loaded: the other bank, then the switch. Now only TCP
    // is refused (no accept rule: the default accepts).
    const uint32_t bank = skel->bss->filter_bank;
    install(compile_filter({{"reject", "tcp", "", "", "", "", "", "", ""}}));
    EXPECT_EQ(skel->bss->filter_bank, bank ^ 1u);
    run();
    flows = kernel_flows(skel.get(), counters);
    EXPECT_EQ(flows.size(), 2u);  // DNS metered now, beside the 4000 -> 5000 flow
    EXPECT_EQ(counters[BPFIX_CNT_FILTERED].packets, 3u);
    // And no rules at all: every packet metered.
    install(CompiledFilter{});
    run();
    flows = kernel_flows(skel.get(), counters);
    EXPECT_EQ(flows.size(), 3u);
    EXPECT_EQ(counters[BPFIX_CNT_FILTERED].packets, 3u);
}

// DNS enrichment: packets to or from a configured DNS port hand their
// payload (up to BPFIX_DNS_SNAP bytes) to user space through the ring
// buffer; others, and packets without payload, do not.
TEST(FlowMeterBpf, DnsPayloadsReachUserSpaceThroughTheRing) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    for (uint32_t ports : {0u, 1u}) {
        flow_meter* raw = flow_meter__open();
        ASSERT_TRUE(raw);
        std::unique_ptr<flow_meter, SkelDeleter> skel(raw);
        skel->rodata->dns_port_count = ports;
        skel->rodata->dns_ports[0] = 53;
        ASSERT_EQ(flow_meter__load(raw), 0);
        // a query for example.org, type A
        std::vector<uint8_t> q = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7,   'e', 'x', 'a',
                                  'm',  'p',  'l',  'e',  3, 'o', 'r', 'g', 0, 0, 1, 0, 1};
        const std::initializer_list<uint8_t> a{10, 0, 0, 1}, b{10, 0, 0, 2};
        std::vector<Frame> frames;
        frames.push_back(Frame().eth(0x0800).ipv4(17, a, b, static_cast<uint16_t>(28 + q.size()))
                             .udp(40000, 53, static_cast<uint16_t>(8 + q.size())).bytes(q));
        std::vector<uint8_t> tcpq = {0, static_cast<uint8_t>(q.size())};
        tcpq.insert(tcpq.end(), q.begin(), q.end());
        frames.push_back(Frame().eth(0x0800).ipv4(6, b, a, static_cast<uint16_t>(40 + tcpq.size()))
                             .tcp(53, 40001, 0x18).bytes(tcpq));
        frames.push_back(Frame().eth(0x0800).ipv4(6, a, b, 40).tcp(40001, 53, 0x10));  // pure ACK: nothing
        frames.push_back(Frame().eth(0x0800).ipv4(17, a, b, 28 + 20).udp(40000, 80, 28).zeros(20));  // not DNS
        frames.push_back(Frame().eth(0x0800).ipv4(17, b, a, 28 + 1000).udp(53, 40000, 1008).zeros(1000));  // big
        for (const Frame& f : frames) {
            std::vector<uint8_t> data = f.data();
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                        .data_size_in = static_cast<__u32>(data.size()), .repeat = 1);
            ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.meter_ingress), &opts), 0);
        }
        std::vector<bpfix_dns_event> events;
        auto cb = [](void* ctx, void* data, size_t size) -> int {
            EXPECT_EQ(size, sizeof(bpfix_dns_event));
            auto* out = static_cast<std::vector<bpfix_dns_event>*>(ctx);
            out->push_back(*static_cast<const bpfix_dns_event*>(data));
            return 0;
        };
        ring_buffer* rb = ring_buffer__new(bpf_map__fd(skel->maps.dns_events), cb, &events, nullptr);
        ASSERT_TRUE(rb);
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        if (ports == 0) {
            EXPECT_TRUE(events.empty()) << "DNS off, yet " << events.size() << " events";
            continue;
        }
        ASSERT_EQ(events.size(), 3u);
        EXPECT_EQ(events[0].key.src_port, 40000);
        EXPECT_EQ(events[0].key.dst_port, 53);
        EXPECT_EQ(events[0].key.direction, BPFIX_DIR_INGRESS);
        ASSERT_EQ(events[0].len, q.size());
        EXPECT_EQ(std::vector<uint8_t>(events[0].data, events[0].data + events[0].len), q);
        EXPECT_NE(events[0].ts_ns, 0u);
        EXPECT_EQ(events[1].key.protocol, 6);
        EXPECT_EQ(std::vector<uint8_t>(events[1].data, events[1].data + events[1].len), tcpq);
        EXPECT_EQ(events[2].orig_len, 1000u);
        EXPECT_EQ(events[2].len, static_cast<uint32_t>(BPFIX_DNS_SNAP));
    }
}
