// Drop reason names from a kernel's BTF (enum skb_drop_reason), built in
// memory so the test needs no particular kernel; and the [enrich] key.
#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <unistd.h>

#include "btf_file.h"
#include "drop_tracker.h"
#include "error.h"
#include "exporter_config.h"

using namespace bpfix;
using bpfix::test::BtfPtr;
using bpfix::test::TempBtfFile;

namespace {

// An enum skb_drop_reason numbered like some kernel, plus the subsystem enum.
BtfPtr kernel_like_btf(bool with_reasons = true) {
    BtfPtr b(btf__new_empty());
    if (with_reasons) {
        EXPECT_GT(btf__add_enum(b.get(), "skb_drop_reason", 4), 0);
        btf__add_enum_value(b.get(), "SKB_NOT_DROPPED_YET", 0);
        btf__add_enum_value(b.get(), "SKB_CONSUMED", 1);
        btf__add_enum_value(b.get(), "SKB_DROP_REASON_NOT_SPECIFIED", 2);
        btf__add_enum_value(b.get(), "SKB_DROP_REASON_NETFILTER_DROP", 12);
        btf__add_enum_value(b.get(), "SKB_DROP_REASON_MAX", 13);
    }
    EXPECT_GT(btf__add_enum(b.get(), "skb_drop_reason_subsys", 4), 0);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_SUBSYS_CORE", 0);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2);
    return b;
}

}  // namespace

TEST(DropReasonNames, NamesComeFromTheKernelsEnumWithoutThePrefix) {
    auto b = kernel_like_btf();
    TempBtfFile file(b.get());
    DropReasonNames names{KernelBtf(file.path())};
    EXPECT_EQ(names.name(12), "NETFILTER_DROP");
    EXPECT_EQ(names.name(2), "NOT_SPECIFIED");
    EXPECT_EQ(names.name(1), "SKB_CONSUMED");
    // Markers are not reasons; values the kernel does not list say so.
    EXPECT_EQ(names.name(13), "UNKNOWN_13");
    EXPECT_EQ(names.name(2u << 16 | 5), "SUBSYS_OPENVSWITCH_5");
    EXPECT_EQ(names.name(9u << 16 | 5), "UNKNOWN_589829");
    // References stay valid while names are added.
    const std::string& first = names.name(12);
    for (uint32_t i = 100; i < 1000; ++i) names.name(i);
    EXPECT_EQ(first, "NETFILTER_DROP");
}

TEST(DropReasonNames, AKernelWithoutReasonsIsAClearError) {
    auto b = kernel_like_btf(false);
    try {
        TempBtfFile file(b.get());
    DropReasonNames names{KernelBtf(file.path())};
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("skb_drop_reason"), std::string::npos) << e.what();
    }
}

TEST(DropReasonNames, TheRunningKernelNamesItsNetfilterDrop) {
    // Where the kernel has BTF (this one does; the VM tier runs Debian's).
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) GTEST_SKIP() << "no kernel BTF";
    DropReasonNames names = DropReasonNames::from_kernel();
    bool found = false;
    for (uint32_t i = 0; i < 1024 && !found; ++i) found = names.name(i) == "NETFILTER_DROP";
    EXPECT_TRUE(found);
}

TEST(EnrichConfig, DropsKeyIsReadAndChecked) {
    char name[] = "/tmp/bpfix-enrich-XXXXXX";
    int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    ::close(fd);
    ExporterConfig def;
    EXPECT_TRUE(def.enrich_drops);
    std::ofstream(name) << "[enrich]\ndrops = false\n";
    ExporterConfig cfg;
    load_exporter_config(name, cfg);
    EXPECT_FALSE(cfg.enrich_drops);
    std::ofstream(name) << "[enrich]\ndrops = \"yes\"\n";
    try {
        load_exporter_config(name, cfg);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("enrich.drops: must be true or false"), std::string::npos) << e.what();
    }
    std::ofstream(name) << "[enrich]\ndns = false\nrtt = false\ndns_ports = [53, 5353]\ndns_timeout = 2.5\n";
    ExporterConfig dns;
    load_exporter_config(name, dns);
    EXPECT_FALSE(dns.enrich_dns);
    EXPECT_FALSE(dns.enrich_rtt);
    EXPECT_EQ(dns.dns_ports, (std::vector<uint16_t>{53, 5353}));
    EXPECT_EQ(dns.dns_timeout_s, 2.5);
    for (auto [text, want] : std::vector<std::pair<std::string, std::string>>{
             {"dns_ports = []", "enrich.dns_ports: give 1 to 8 ports"},
             {"dns_ports = [1,2,3,4,5,6,7,8,9]", "enrich.dns_ports: give 1 to 8 ports"},
             {"dns_ports = [0]", "enrich.dns_ports: 0 is out of range"},
             {"dns_timeout = 0", "enrich.dns_timeout"},
             {"dnss = true", "dnss"}}) {
        std::ofstream(name) << "[enrich]\n" << text << "\n";
        try {
            ExporterConfig c;
            load_exporter_config(name, c);
            ADD_FAILURE() << text << ": no error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
    }
    std::remove(name);
}
