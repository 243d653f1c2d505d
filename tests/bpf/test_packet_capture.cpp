// bpf tier (root): the capture programs as functions, loaded and read by the
// exporter's PacketCapture. Frames built in code run through
// BPF_PROG_TEST_RUN; what comes out of the ring must be exactly the frames
// the capture filter takes, cut at the snap length, and the programs must
// hand every packet on (TC_ACT_UNSPEC) whatever they decide.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <memory>
#include <vector>

#include "bpfix_abi.h"
#include "filter_rules.h"
#include "packet_builder.h"
#include "packet_capture.h"

using namespace bpfix;
using bpfix::test::Frame;

namespace {

struct Record {
    uint64_t ts_ns;
    uint32_t orig_len;
    uint8_t direction;
    std::vector<uint8_t> data;
};

struct Settings {
    uint32_t snap = BPFIX_CAPTURE_MAX_SNAP, first = 0, sampling = 1;
    uint32_t ring = 1 << 20;
    std::vector<FilterRuleText> rules;
};

CaptureConfig config(const Settings& s) {
    CaptureConfig c;
    c.snaplen = s.snap;
    c.first_packets = s.first;
    c.sampling = s.sampling;
    c.ring_bytes = s.ring;
    c.filters = s.rules;
    return c;
}

// The exporter's own PacketCapture (loading, rules, ring reading), its
// programs run on frames instead of being attached.
class Capture {
public:
    explicit Capture(const Settings& s)
        : pc_(config(s), AttachMode::kAuto, [this](const CapturedPacket& p) {
              got_.push_back({p.ts_ns, p.orig_len, p.direction, std::vector<uint8_t>(p.data.begin(), p.data.end())});
          }) {}

    // Runs one frame through a program; returns its verdict.
    int run(const Frame& f, bool egress = false) {
        std::vector<uint8_t> data = f.data();
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                    .data_size_in = static_cast<__u32>(data.size()), .repeat = 1);
        EXPECT_EQ(bpf_prog_test_run_opts(pc_.program_fd(egress ? BPFIX_DIR_EGRESS : BPFIX_DIR_INGRESS), &opts), 0);
        return static_cast<int>(opts.retval);
    }
    std::vector<Record> records() {
        got_.clear();
        pc_.poll();
        return got_;
    }
    CaptureCounters counters() const { return pc_.counters(); }

private:
    std::vector<Record> got_;
    PacketCapture pc_;
};

const std::initializer_list<uint8_t> kA{10, 0, 0, 1}, kB{10, 0, 0, 2};

Frame udp(uint16_t sport, uint16_t dport, uint16_t payload) {
    Frame f;
    f.eth(0x0800).ipv4(17, kA, kB, static_cast<uint16_t>(28 + payload)).udp(sport, dport,
                                                                             static_cast<uint16_t>(8 + payload));
    for (uint16_t i = 0; i < payload; ++i) f.b(static_cast<uint8_t>(i * 7 + 3));
    return f;
}

#define NEED_ROOT() \
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs"

TEST(PacketCapture, RulesChooseThePacketsAndEveryPacketGoesOn) {
    NEED_ROOT();
    FilterRuleText rule;
    rule.action = "accept";
    rule.protocol = "udp";
    rule.port = "53";
    Settings s;
    s.rules = {rule};
    Capture c(s);
    Frame dns = udp(5353, 53, 30);
    Frame tcp;
    tcp.eth(0x0800).ipv4(6, kA, kB, 40).tcp(40000, 80, 0x02);
    Frame other = udp(1000, 2000, 30);
    Frame arp;
    arp.eth(0x0806).zeros(28);
    for (const Frame* f : {&dns, &tcp, &other, &arp}) EXPECT_EQ(c.run(*f), TC_ACT_UNSPEC);
    EXPECT_EQ(c.run(dns, true), TC_ACT_UNSPEC);
    auto got = c.records();
    ASSERT_EQ(got.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(got[i].data, dns.data());
        EXPECT_EQ(got[i].orig_len, dns.data().size());
        EXPECT_GT(got[i].ts_ns, 1'600'000'000'000'000'000ULL);  // UNIX time
    }
    EXPECT_EQ(got[0].direction, BPFIX_DIR_INGRESS);
    EXPECT_EQ(got[1].direction, BPFIX_DIR_EGRESS);
    CaptureCounters n = c.counters();
    EXPECT_EQ(n.seen, 5u);
    EXPECT_EQ(n.filtered, 3u);  // the non-IP frame too: an accept rule makes an allow list
    EXPECT_EQ(n.captured, 2u);
    EXPECT_EQ(n.lost, 0u);
    EXPECT_EQ(n.delivered, 2u);
}

TEST(PacketCapture, NoRulesTakeEverythingCutAtTheSnapLength) {
    NEED_ROOT();
    for (uint32_t snap : {64u, 100u, 1500u, uint32_t{BPFIX_CAPTURE_MAX_SNAP}}) {
        Settings s;
        s.snap = snap;
        Capture c(s);
        // Sizes across the ring's size classes (BPF_PROG_TEST_RUN takes at
        // most about a page).
        std::vector<Frame> frames;
        for (uint16_t payload : {18, 100, 600, 1460, 2500, 3500}) frames.push_back(udp(7, 9, payload));
        Frame arp;
        arp.eth(0x0806).zeros(28);
        frames.push_back(arp);
        for (const auto& f : frames) EXPECT_EQ(c.run(f), TC_ACT_UNSPEC);
        auto got = c.records();
        ASSERT_EQ(got.size(), frames.size()) << "snap " << snap;
        for (size_t i = 0; i < frames.size(); ++i) {
            const auto& want = frames[i].data();
            size_t cut = std::min<size_t>(want.size(), snap);
            EXPECT_EQ(got[i].orig_len, want.size());
            EXPECT_EQ(got[i].data.size(), cut) << "snap " << snap << " frame " << i;
            EXPECT_EQ(got[i].data, std::vector<uint8_t>(want.begin(), want.begin() + static_cast<long>(cut)));
        }
    }
}

TEST(PacketCapture, FirstPacketsOfEachFlow) {
    NEED_ROOT();
    Settings s;
    s.first = 2;
    Capture c(s);
    for (int i = 0; i < 5; ++i) c.run(udp(1111, 53, 10));
    for (int i = 0; i < 3; ++i) c.run(udp(2222, 53, 10));
    // The other direction of a flow is a flow of its own.
    for (int i = 0; i < 3; ++i) c.run(udp(1111, 53, 10), true);
    auto got = c.records();
    EXPECT_EQ(got.size(), 6u);
    EXPECT_EQ(c.counters().skipped, 5u);
}

TEST(PacketCapture, OneInN) {
    NEED_ROOT();
    Settings s;
    s.sampling = 3;
    Capture c(s);
    for (int i = 0; i < 9; ++i) c.run(udp(1111, 53, 10));
    EXPECT_EQ(c.records().size(), 3u);
    EXPECT_EQ(c.counters().skipped, 6u);
}

}  // namespace

TEST(PacketCapture, AFullRingLosesPacketsAndCountsThem) {
    NEED_ROOT();
    Settings s;
    s.ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));  // the smallest ring: a few records
    Capture c(s);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(c.run(udp(1111, 53, 40)), TC_ACT_UNSPEC);  // nobody reads meanwhile
    uint64_t captured = c.counters().captured, lost = c.counters().lost;
    EXPECT_EQ(captured + lost, 100u);
    EXPECT_GT(lost, 0u);
    EXPECT_EQ(c.records().size(), captured);  // what was captured is whole
}
