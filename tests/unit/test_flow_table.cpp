#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "flow_table.h"

using namespace bpfix;

namespace {

constexpr uint64_t kSec = 1'000'000'000ULL;
constexpr uint64_t kT0 = 1'700'000'000ULL * kSec;

bpfix_flow_key key(uint16_t sport, uint8_t proto = 6, uint16_t vlan = 0) {
    bpfix_flow_key k{};
    k.ip_version = 4;
    k.src_addr[0] = 10;
    k.src_addr[3] = 1;
    k.dst_addr[0] = 10;
    k.dst_addr[3] = 2;
    k.src_port = sport;
    k.dst_port = 80;
    k.protocol = proto;
    k.vlan_id = vlan;
    return k;
}

struct Harness {
    explicit Harness(FlowTableConfig cfg = {}) : table(cfg, [this](const FlowRecord& r) { out.push_back(r); }) {}
    void pkt(const bpfix_flow_key& k, uint64_t t, uint64_t len = 100, uint16_t flags = 0x10) {
        table.advance(t);
        table.add(k, t, len, flags, 0);
    }
    std::vector<FlowRecord> out;
    FlowTable table;
};

}  // namespace

TEST(FlowTable, AggregatesAndForcesEndAtFlush) {
    Harness h;
    h.pkt(key(1), kT0, 60, 0x02);
    h.pkt(key(1), kT0 + kSec / 2, 1500, 0x10);
    h.pkt(key(2, 17), kT0 + kSec, 80, 0);
    EXPECT_TRUE(h.out.empty());
    h.table.flush();
    ASSERT_EQ(h.out.size(), 2u);
    const FlowRecord& tcp = h.out[0];
    EXPECT_EQ(tcp.packetDeltaCount, 2u);
    EXPECT_EQ(tcp.octetDeltaCount, 1560u);
    EXPECT_EQ(tcp.tcpControlBits, 0x12);
    EXPECT_EQ(tcp.flowStartMilliseconds, kT0 / 1'000'000);
    EXPECT_EQ(tcp.flowEndMilliseconds, (kT0 + kSec / 2) / 1'000'000);
    EXPECT_EQ(tcp.flowEndReason, 4);
    EXPECT_EQ(tcp.sourceIPv4Address, 0x0a000001u);
    EXPECT_EQ(h.out[1].protocolIdentifier, 17);
}

TEST(FlowTable, IdleTimeoutSplitsAFlow) {
    Harness h;
    h.pkt(key(1, 17), kT0);
    h.pkt(key(1, 17), kT0 + 14 * kSec);  // within 15 s: same record
    h.pkt(key(1, 17), kT0 + 29 * kSec);  // exactly 15 s after the last: new record
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].flowEndReason, 1);
    EXPECT_EQ(h.out[0].packetDeltaCount, 2u);
    h.table.flush();
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[1].packetDeltaCount, 1u);
}

TEST(FlowTable, ActiveTimeoutExportsPeriodicRecords) {
    Harness h;
    for (int i = 0; i <= 150; ++i) h.pkt(key(1, 17), kT0 + static_cast<uint64_t>(i) * kSec);
    h.table.flush();
    ASSERT_EQ(h.out.size(), 3u);
    EXPECT_EQ(h.out[0].flowEndReason, 2);
    EXPECT_EQ(h.out[0].packetDeltaCount, 60u);  // t = 0..59
    EXPECT_EQ(h.out[1].flowEndReason, 2);
    EXPECT_EQ(h.out[1].packetDeltaCount, 60u);  // t = 60..119
    EXPECT_EQ(h.out[2].flowEndReason, 4);
    EXPECT_EQ(h.out[2].packetDeltaCount, 31u);  // t = 120..150
    uint64_t total = 0;
    for (const auto& r : h.out) total += r.packetDeltaCount;
    EXPECT_EQ(total, 151u);
}

TEST(FlowTable, FinLingersThenEnds) {
    Harness h;
    h.pkt(key(1), kT0, 60, 0x02);
    h.pkt(key(1), kT0 + kSec, 60, 0x11);       // FIN
    h.pkt(key(1), kT0 + kSec + kSec / 10, 60, 0x10);  // final ACK lands in the same record
    EXPECT_TRUE(h.out.empty());
    h.pkt(key(9, 17), kT0 + 3 * kSec + kSec / 10);  // 2 s after FIN: ended
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].flowEndReason, 3);
    EXPECT_EQ(h.out[0].packetDeltaCount, 3u);
    EXPECT_EQ(h.out[0].tcpControlBits, 0x13);
}

TEST(FlowTable, RstEndsAtOnceAndSynAfterFinOpensNewRecord) {
    Harness h;
    h.pkt(key(1), kT0, 60, 0x02);
    h.pkt(key(1), kT0 + 1, 60, 0x14);  // RST|ACK
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].flowEndReason, 3);
    EXPECT_EQ(h.out[0].packetDeltaCount, 2u);

    h.pkt(key(2), kT0 + 2, 60, 0x11);  // FIN
    h.pkt(key(2), kT0 + 3, 60, 0x02);  // new SYN on the same 5-tuple
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[1].flowEndReason, 3);
    EXPECT_EQ(h.out[1].packetDeltaCount, 1u);
    h.table.flush();
    ASSERT_EQ(h.out.size(), 3u);
    EXPECT_EQ(h.out[2].flowEndReason, 4);
    EXPECT_EQ(h.out[2].tcpControlBits, 0x02);
}

TEST(FlowTable, AFlowEndedWhileLingeringDoesNotCutShortTheNextOnesLinger) {
    // Flow 1 sees FIN, then RST ends it while its linger is pending; new
    // flows take freed entries and one of them sees FIN later. Each
    // lingering flow ends 2 s after its own FIN, never after another's.
    Harness h;
    h.pkt(key(1), kT0, 60, 0x11);               // FIN
    h.pkt(key(1), kT0 + kSec / 10, 60, 0x14);   // RST: ended now
    ASSERT_EQ(h.out.size(), 1u);
    for (uint16_t p = 2; p < 40; ++p) h.pkt(key(p, 17), kT0 + kSec / 5);  // short UDP flows
    for (uint16_t p = 2; p < 40; ++p) h.pkt(key(p, 17), kT0 + kSec / 5, 60, 0x14);  // (UDP: RST means nothing)
    h.pkt(key(50), kT0 + kSec, 60, 0x02);
    h.pkt(key(50), kT0 + kSec + kSec / 2, 60, 0x11);  // FIN at 1.5 s
    h.pkt(key(51), kT0 + 2 * kSec + kSec / 10);       // flow 1's linger would end here
    EXPECT_EQ(h.out.size(), 1u);  // nothing else ended: no flow took flow 1's linger
    h.pkt(key(51), kT0 + 3 * kSec + kSec / 2);        // 2 s after flow 50's FIN
    ASSERT_EQ(h.out.back().sourceTransportPort, 50);
    EXPECT_EQ(h.out.back().flowEndReason, 3);
    EXPECT_EQ(h.out.back().packetDeltaCount, 2u);
    h.table.flush();
    EXPECT_EQ(h.table.active_flows(), 0u);
}

TEST(FlowTable, HoldsAMillionFlowsAndEndsEachOnce) {
    // The table grows by remapping (entries never copied): every flow
    // keeps its counts through the growth.
    FlowTableConfig cfg;
    cfg.max_flows = 2'000'000;
    uint64_t records = 0, packets = 0;
    FlowTable t(cfg, [&](const FlowRecord& r) {
        ++records;
        packets += r.packetDeltaCount;
        EXPECT_EQ(r.packetDeltaCount, 2u);
    });
    for (int round = 0; round < 2; ++round) {
        for (uint32_t i = 0; i < 1'000'000; ++i) {
            bpfix_flow_key k = key(static_cast<uint16_t>(i), 17);
            k.dst_port = static_cast<uint16_t>(i >> 16);
            t.add(k, kT0 + round, 100, 0, 0);
        }
    }
    EXPECT_EQ(t.active_flows(), 1'000'000u);
    t.flush();
    EXPECT_EQ(records, 1'000'000u);
    EXPECT_EQ(packets, 2'000'000u);
}

TEST(FlowTable, FullTableEvictsLeastRecentlySeen) {
    FlowTableConfig cfg;
    cfg.max_flows = 2;
    Harness h(cfg);
    h.pkt(key(1, 17), kT0);
    h.pkt(key(2, 17), kT0 + 1);
    h.pkt(key(1, 17), kT0 + 2);  // 1 is now the most recent
    h.pkt(key(3, 17), kT0 + 3);  // evicts 2
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].sourceTransportPort, 2);
    EXPECT_EQ(h.out[0].flowEndReason, 5);
    EXPECT_EQ(h.table.evicted(), 1u);
    EXPECT_EQ(h.table.active_flows(), 2u);
}

TEST(FlowTable, VlanIsPartOfTheKey) {
    Harness h;
    h.pkt(key(1, 17, 10), kT0);
    h.pkt(key(1, 17, 20), kT0);
    h.table.flush();
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_NE(h.out[0].vlanId, h.out[1].vlanId);
}

TEST(FlowTable, KernelDeltasMergeIntoOneRecord) {
    Harness h;
    // Two drains of the same flow: 10 packets, then 5 with FIN.
    h.table.add_delta(key(1), kT0, kT0 + kSec, 10, 1000, 0x12, 0x20);
    h.table.advance(kT0 + kSec);
    h.table.add_delta(key(1), kT0 + kSec + 1, kT0 + 2 * kSec, 5, 500, 0x11, 0);
    h.table.advance(kT0 + 2 * kSec);
    EXPECT_TRUE(h.out.empty());
    h.table.advance(kT0 + 5 * kSec);  // FIN linger passed
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].packetDeltaCount, 15u);
    EXPECT_EQ(h.out[0].octetDeltaCount, 1500u);
    EXPECT_EQ(h.out[0].tcpControlBits, 0x13);
    EXPECT_EQ(h.out[0].ipClassOfService, 0x20);
    EXPECT_EQ(h.out[0].flowStartMilliseconds, kT0 / 1'000'000);
    EXPECT_EQ(h.out[0].flowEndMilliseconds, (kT0 + 2 * kSec) / 1'000'000);
    EXPECT_EQ(h.out[0].flowEndReason, 3);
}

TEST(FlowTable, FlushHintsTheEnricherOfEveryRecordAheadOfIt) {
    // pcap mode's enricher hears of each flow's key before its record is
    // enriched, in the order the records come, so its lookups can start early.
    Harness h;
    constexpr uint16_t kFlows = 100;
    for (uint16_t i = 0; i < kFlows; ++i) h.pkt(key(1000 + i, 17), kT0 + i * 1000);
    std::vector<uint16_t> hinted, enriched;
    h.table.set_enrich([&](const bpfix_flow_key& k, uint32_t&, FlowRecord&) { enriched.push_back(k.src_port); },
                       [&](const bpfix_flow_key& k, uint32_t) { hinted.push_back(k.src_port); });
    h.table.flush();
    ASSERT_EQ(h.out.size(), kFlows);
    ASSERT_EQ(hinted.size(), kFlows);
    ASSERT_EQ(enriched.size(), kFlows);
    for (uint16_t i = 0; i < kFlows; ++i) {
        EXPECT_EQ(enriched[i], 1000 + i);
        EXPECT_EQ(hinted[i], 1000 + i);
    }
    // Each hint comes 2 * kPrefetchLag records ahead of its record.
    std::vector<std::pair<char, uint16_t>> order;
    h.pkt(key(1, 17), kT0 + kSec);
    h.pkt(key(2, 17), kT0 + kSec);
    h.table.set_enrich([&](const bpfix_flow_key& k, uint32_t&, FlowRecord&) { order.emplace_back('e', k.src_port); },
                       [&](const bpfix_flow_key& k, uint32_t) { order.emplace_back('h', k.src_port); });
    h.table.flush();
    const std::vector<std::pair<char, uint16_t>> want{{'h', 1}, {'h', 2}, {'e', 1}, {'e', 2}};
    EXPECT_EQ(order, want);
}

TEST(FlowTable, AnEnricherNumberStaysWithItsFlowUntilTheRecordHandsItBack) {
    Harness h;
    const uint32_t a = h.table.add(key(1, 17), kT0, 100, 0, 0);
    const uint32_t b = h.table.add(key(2, 17), kT0, 100, 0, 0);
    ASSERT_NE(a, FlowTable::kNoEntry);
    EXPECT_EQ(h.table.ext(a), FlowTable::kNoExt);  // a new flow has none
    h.table.ext(a) = 7;
    h.table.ext(b) = 9;
    EXPECT_EQ(h.table.add(key(1, 17), kT0 + 1000, 100, 0, 0), a);
    ASSERT_NE(h.table.ext_of(key(2, 17)), nullptr);
    EXPECT_EQ(*h.table.ext_of(key(2, 17)), 9u);
    EXPECT_EQ(h.table.ext_of(key(3, 17)), nullptr);
    std::vector<std::pair<uint16_t, uint32_t>> given;
    h.table.set_enrich([&](const bpfix_flow_key& k, uint32_t& ext, FlowRecord&) {
        given.emplace_back(k.src_port, ext);
        ext = FlowTable::kNoExt;
    });
    h.table.advance(kT0 + 20 * kSec);  // both idle
    const std::vector<std::pair<uint16_t, uint32_t>> want{{1, 7}, {2, 9}};
    std::sort(given.begin(), given.end());
    EXPECT_EQ(given, want);
    // The entry is reused for a new flow: no number again.
    const uint32_t c = h.table.add(key(4, 17), kT0 + 21 * kSec, 100, 0, 0);
    EXPECT_EQ(h.table.ext(c), FlowTable::kNoExt);
    // A packet that ends its flow (RST) returns no entry.
    EXPECT_EQ(h.table.add(key(5, 6), kT0 + 21 * kSec, 40, BPFIX_TCP_RST, 0), FlowTable::kNoEntry);
}
