// The tracers (drop tracker, RTT sampler) are loaded by a loader program the
// kernel runs, so this process never parses the kernel's BTF: its peak RSS
// grows by far less than libbpf's parse (two copies of the 5+ MiB BTF) would
// add, the maps work (the drains flip the .bss index through the mapping
// and read the maps), and the links keep the programs attached.
// Root, a kernel with BTF and kfree_skb drop reasons (5.17+).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "drop_tracker.h"
#include "error.h"
#include "kernel_btf.h"
#include "kernel_rtt.h"

using namespace bpfix;

namespace {

long peak_rss_kib() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

}  // namespace

TEST(KernelLoader, TracersLoadWithoutTheKernelsBtfInThisProcess) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!KernelBtf::available()) GTEST_SKIP() << "no kernel BTF";
    const long before = peak_rss_kib();
    ASSERT_GT(before, 0);
    std::unique_ptr<DropTracker> drops;
    try {
        drops = std::make_unique<DropTracker>();
    } catch (const Error& e) {
        GTEST_SKIP() << "no drop tracing on this kernel: " << e.what();
    }
    EXPECT_TRUE(drops->loaded_in_kernel());
    KernelRtt rtt("auto");
    EXPECT_TRUE(rtt.loaded_in_kernel() || rtt.hook() == "kprobe") << rtt.hook();
    const long grown = peak_rss_kib() - before;
    // libbpf's parse alone: about 11 MiB.
    EXPECT_LT(grown, 4 * 1024) << "peak RSS grew by " << grown << " KiB while loading the tracers";
    for (int i = 0; i < 3; ++i) {
        drops->drain();
        rtt.drain();
    }
    EXPECT_EQ(rtt.lost(), 0u);
}
