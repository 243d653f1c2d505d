// bpf tier (root): the TC program built by bpf_object() loads from its
// skeleton and counts exactly what BPF_PROG_TEST_RUN feeds it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cstring>
#include <memory>
#include <vector>

#include "bpfix_abi.h"
#include "tc_counter.skel.h"

namespace {

struct SkelDeleter {
    void operator()(tc_counter* s) const { tc_counter__destroy(s); }
};

}  // namespace

TEST(TcCounter, CountsEveryPacketAndByte) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to load BPF programs";
    std::unique_ptr<tc_counter, SkelDeleter> skel(tc_counter__open());
    ASSERT_TRUE(skel);
    skel->rodata->direction = BPFIX_DIR_EGRESS;  // tunables are set between open and load
    ASSERT_EQ(tc_counter__load(skel.get()), 0);

    std::vector<uint8_t> pkt(98, 0);
    pkt[12] = 0x08;  // Ethernet, IPv4 ethertype
    pkt[14] = 0x45;
    constexpr int kRuns = 1000;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_size_in = static_cast<__u32>(pkt.size()),
                .repeat = kRuns);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.count_packets), &opts), 0);
    EXPECT_EQ(opts.retval, 0);  // TC_ACT_OK: the packet goes on

    int ncpu = libbpf_num_possible_cpus();
    ASSERT_GT(ncpu, 0);
    std::vector<bpfix_if_counters> per_cpu(static_cast<size_t>(ncpu));
    for (__u32 idx : {static_cast<__u32>(BPFIX_DIR_INGRESS), static_cast<__u32>(BPFIX_DIR_EGRESS)}) {
        ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &idx, per_cpu.data()), 0);
        uint64_t packets = 0, bytes = 0;
        for (const auto& c : per_cpu) {
            packets += c.packets;
            bytes += c.bytes;
        }
        if (idx == BPFIX_DIR_EGRESS) {
            EXPECT_EQ(packets, static_cast<uint64_t>(kRuns));
            EXPECT_EQ(bytes, static_cast<uint64_t>(kRuns) * pkt.size());
        } else {
            EXPECT_EQ(packets, 0u);
        }
    }
}
