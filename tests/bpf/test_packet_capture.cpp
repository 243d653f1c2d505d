// bpf tier (root): the capture programs as functions. Frames built in code
// run through BPF_PROG_TEST_RUN; the ring buffer must hold exactly the
// frames the capture filter takes, cut at the snap length, and the programs
// must hand every packet on (TC_ACT_UNSPEC) whatever they decide.
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
#include "packet_capture.skel.h"

using namespace bpfix;
using bpfix::test::Frame;

namespace {

struct Record {
    bpfix_capture_hdr hdr;
    std::vector<uint8_t> data;
};

struct Settings {
    uint32_t snap = BPFIX_CAPTURE_MAX_SNAP, first = 0, sampling = 1;
    uint32_t ring = 1 << 20;
    std::vector<FilterRuleText> rules;
};

class Capture {
public:
    explicit Capture(const Settings& s) {
        skel_ = packet_capture__open();
        if (!skel_) return;
        CompiledFilter f = compile_filter(s.rules, "capture.filter");
        skel_->rodata->snap_len = s.snap;
        skel_->rodata->first_packets = s.first;
        skel_->rodata->sampling_interval = s.sampling;
        skel_->rodata->filter_rule_count = static_cast<uint32_t>(f.rules.size());
        skel_->rodata->filter_default_action = f.default_action;
        bpf_map__set_max_entries(skel_->maps.capture_ring, s.ring);
        if (packet_capture__load(skel_) != 0) {
            packet_capture__destroy(skel_);
            skel_ = nullptr;
            return;
        }
        for (uint32_t i = 0; i < f.rules.size(); ++i) {
            bpf_map_update_elem(bpf_map__fd(skel_->maps.filter_rules), &i, &f.rules[i], BPF_ANY);
        }
        rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.capture_ring), &Capture::on_record, this, nullptr);
    }
    ~Capture() {
        if (rb_) ring_buffer__free(rb_);
        if (skel_) packet_capture__destroy(skel_);
    }
    bool ok() const { return skel_ && rb_; }

    // Runs one frame through the ingress program; returns its verdict.
    int run(const Frame& f, bool egress = false) {
        std::vector<uint8_t> data = f.data();
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                    .data_size_in = static_cast<__u32>(data.size()), .repeat = 1);
        bpf_program* p = egress ? skel_->progs.capture_egress : skel_->progs.capture_ingress;
        EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(p), &opts), 0);
        return static_cast<int>(opts.retval);
    }
    std::vector<Record> records() {
        got_.clear();
        ring_buffer__consume(rb_);
        return got_;
    }
    uint64_t counter(uint32_t idx) const {
        std::vector<bpfix_counter> v(static_cast<size_t>(libbpf_num_possible_cpus()));
        bpf_map_lookup_elem(bpf_map__fd(skel_->maps.capture_counters), &idx, v.data());
        uint64_t n = 0;
        for (const auto& c : v) n += c.packets;
        return n;
    }

private:
    static int on_record(void* ctx, void* data, size_t size) {
        auto* self = static_cast<Capture*>(ctx);
        Record r;
        std::memcpy(&r.hdr, data, sizeof r.hdr);
        EXPECT_GE(size, sizeof r.hdr + r.hdr.cap_len);
        const auto* p = static_cast<const uint8_t*>(data) + sizeof r.hdr;
        r.data.assign(p, p + r.hdr.cap_len);
        self->got_.push_back(std::move(r));
        return 0;
    }
    packet_capture* skel_ = nullptr;
    ring_buffer* rb_ = nullptr;
    std::vector<Record> got_;
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
    ASSERT_TRUE(c.ok());
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
        EXPECT_EQ(got[i].hdr.orig_len, dns.data().size());
        EXPECT_EQ(got[i].hdr.vlan_present, 0);
        EXPECT_GT(got[i].hdr.ts_ns, 0u);
    }
    EXPECT_EQ(got[0].hdr.direction, BPFIX_DIR_INGRESS);
    EXPECT_EQ(got[1].hdr.direction, BPFIX_DIR_EGRESS);
    EXPECT_EQ(c.counter(BPFIX_CAP_SEEN), 5u);
    EXPECT_EQ(c.counter(BPFIX_CAP_FILTERED), 3u);  // the non-IP frame too: an accept rule makes an allow list
    EXPECT_EQ(c.counter(BPFIX_CAP_CAPTURED), 2u);
    EXPECT_EQ(c.counter(BPFIX_CAP_LOST), 0u);
}

TEST(PacketCapture, NoRulesTakeEverythingCutAtTheSnapLength) {
    NEED_ROOT();
    for (uint32_t snap : {64u, 100u, 1500u, uint32_t{BPFIX_CAPTURE_MAX_SNAP}}) {
        Settings s;
        s.snap = snap;
        Capture c(s);
        ASSERT_TRUE(c.ok());
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
            EXPECT_EQ(got[i].hdr.orig_len, want.size());
            EXPECT_EQ(got[i].hdr.cap_len, cut) << "snap " << snap << " frame " << i;
            EXPECT_EQ(got[i].data, std::vector<uint8_t>(want.begin(), want.begin() + static_cast<long>(cut)));
        }
    }
}

TEST(PacketCapture, FirstPacketsOfEachFlow) {
    NEED_ROOT();
    Settings s;
    s.first = 2;
    Capture c(s);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 5; ++i) c.run(udp(1111, 53, 10));
    for (int i = 0; i < 3; ++i) c.run(udp(2222, 53, 10));
    // The other direction of a flow is a flow of its own.
    for (int i = 0; i < 3; ++i) c.run(udp(1111, 53, 10), true);
    auto got = c.records();
    EXPECT_EQ(got.size(), 6u);
    EXPECT_EQ(c.counter(BPFIX_CAP_SKIPPED), 5u);
}

TEST(PacketCapture, OneInN) {
    NEED_ROOT();
    Settings s;
    s.sampling = 3;
    Capture c(s);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 9; ++i) c.run(udp(1111, 53, 10));
    EXPECT_EQ(c.records().size(), 3u);
    EXPECT_EQ(c.counter(BPFIX_CAP_SKIPPED), 6u);
}

}  // namespace

TEST(PacketCapture, AFullRingLosesPacketsAndCountsThem) {
    NEED_ROOT();
    Settings s;
    s.ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));  // the smallest ring: a few records
    Capture c(s);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 100; ++i) EXPECT_EQ(c.run(udp(1111, 53, 40)), TC_ACT_UNSPEC);  // nobody reads meanwhile
    uint64_t captured = c.counter(BPFIX_CAP_CAPTURED), lost = c.counter(BPFIX_CAP_LOST);
    EXPECT_EQ(captured + lost, 100u);
    EXPECT_GT(lost, 0u);
    EXPECT_EQ(c.records().size(), captured);  // what was captured is whole
}
