// SIGHUP reload, the parts that need no kernel: what a new configuration
// changes (and what it may not change while running), and the export
// pipeline's switch to another collector, which must lose no record and
// give each collector its own complete transport session.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "config_reload.h"
#include "error.h"
#include "export_pipeline.h"
#include "flow_table.h"
#include "info_model.h"
#include "ipfix_decoder.h"

using namespace bpfix;

namespace {

ExporterConfig live(std::vector<std::string> ifaces = {"veth0"}) {
    ExporterConfig c;
    c.interfaces = std::move(ifaces);
    return c;
}

FlowRecord flow(uint16_t sport) {
    bpfix_flow_key k{};
    k.ip_version = 4;
    uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 7};
    memcpy(k.src_addr, src, 4);
    memcpy(k.dst_addr, dst, 4);
    k.protocol = 17;
    k.src_port = sport;
    k.dst_port = 53;
    FlowRecord r = make_flow_record(k);
    r.packetDeltaCount = 1;
    r.octetDeltaCount = 100;
    return r;
}

struct FileCounts {
    size_t flows = 0, stats = 0, messages = 0;
    std::set<uint32_t> domains;
    std::set<uint64_t> ports;
};

// Decodes an IPFIX file (messages back to back) written by the pipeline.
FileCounts read_ipfix_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    InfoModel model;
    FileCounts c;
    IpfixDecoder dec(model, [&](const DecodedRecord& r) {
        c.domains.insert(r.observation_domain);
        if (r.fields.contains("sourceTransportPort")) {
            ++c.flows;
            c.ports.insert(r.fields["sourceTransportPort"].get<uint64_t>());
        } else if (r.fields.contains("exportedFlowRecordTotalCount")) {
            ++c.stats;
        }
    });
    size_t off = 0;
    while (off + 4 <= bytes.size()) {
        size_t len = static_cast<size_t>(bytes[off + 2] << 8 | bytes[off + 3]);
        EXPECT_GE(len, 16u);
        EXPECT_LE(off + len, bytes.size());
        if (len < 16 || off + len > bytes.size()) break;
        EXPECT_EQ(dec.decode_message(std::span<const uint8_t>(bytes.data() + off, len)), "");
        ++c.messages;
        off += len;
    }
    EXPECT_EQ(off, bytes.size());
    return c;
}

}  // namespace

TEST(ConfigReload, NothingChangedPlansNothing) {
    ReloadPlan p = plan_reload(live(), live());
    EXPECT_FALSE(p.changes_anything());
    EXPECT_TRUE(p.restart_only.empty());
    EXPECT_EQ(p.summary(), "nothing");
}

TEST(ConfigReload, EachReloadableGroupIsSeen) {
    ExporterConfig a = live(), b = live({"veth0", "tap*"});
    EXPECT_TRUE(plan_reload(a, b).interfaces);
    b = live();
    b.exclude = {"lo", "virbr*"};
    EXPECT_TRUE(plan_reload(a, b).interfaces);
    b = live();
    b.collector = "tcp://127.0.0.1:4739";
    EXPECT_TRUE(plan_reload(a, b).collector);
    b = live();
    b.observation_domain = 9;
    EXPECT_TRUE(plan_reload(a, b).collector);
    b = live();
    b.transport.queue_bytes = 1 << 20;
    EXPECT_TRUE(plan_reload(a, b).collector);
    b = live();
    b.idle_timeout_s = 3;
    EXPECT_TRUE(plan_reload(a, b).flows);
    b = live();
    b.drain_interval_s = 0.5;
    EXPECT_TRUE(plan_reload(a, b).drain_interval);
    b = live();
    b.log_level = "debug";
    ReloadPlan p = plan_reload(a, b);
    EXPECT_TRUE(p.log_level);
    EXPECT_FALSE(p.interfaces || p.collector || p.flows || p.drain_interval);
    EXPECT_EQ(p.summary(), "log level");
}

TEST(ConfigReload, KernelAndSocketSettingsWaitForARestart) {
    ExporterConfig a = live(), b = live({"veth0", "veth1"});
    b.map_entries = 1024;
    b.sampling = 10;
    b.filters.push_back(FilterRuleText{"reject", "udp", "", "", "", "", "", "", ""});
    b.enrich_dns = false;
    b.capture.listen = "5555";
    b.metrics = "off";
    ReloadPlan p = plan_reload(a, b);
    EXPECT_TRUE(p.interfaces);
    EXPECT_TRUE(p.filters);  // switched in the kernel while running
    EXPECT_EQ(p.restart_only, (std::vector<std::string>{"live.map_entries", "live.sampling", "enrich.dns", "capture",
                                                        "metrics.listen"}));
    // Adopting applies the interfaces and keeps every restart-only value.
    adopt_reloadable(a, b);
    EXPECT_EQ(a.interfaces, b.interfaces);
    EXPECT_EQ(a.map_entries, 65536u);
    EXPECT_EQ(a.sampling, 1u);
    EXPECT_EQ(a.filters, b.filters);
    EXPECT_TRUE(a.enrich_dns);
    EXPECT_TRUE(a.capture.listen.empty());
    EXPECT_TRUE(a.metrics.empty());
    // The same file read again plans the same warnings, nothing else.
    ReloadPlan again = plan_reload(a, b);
    EXPECT_FALSE(again.changes_anything());
    EXPECT_EQ(again.restart_only.size(), 5u);
}

TEST(ConfigReload, NoLiveInterfaceIsRefused) {
    ExporterConfig b;
    b.pcap_file = "/tmp/x.pcap";
    try {
        plan_reload(live(), b);
        FAIL() << "a configuration without live interfaces was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("[live] interfaces is empty"), std::string::npos) << e.what();
    }
}

TEST(ConfigReload, SwitchingCollectorLosesNoRecord) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("bpfix-reload-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ExporterConfig a = live();
    a.collector = "file:" + (dir / "a.ipfix").string();
    a.observation_domain = 1;
    ExporterConfig b = a;
    b.collector = "file:" + (dir / "b.ipfix").string();
    b.observation_domain = 9;
    {
        ExportPipeline out(a);
        for (uint16_t p = 1; p <= 300; ++p) out.add_flow(flow(p));
        out.switch_collector(b, MeterLoss{});
        EXPECT_EQ(out.url().str(), b.collector);
        for (uint16_t p = 301; p <= 500; ++p) out.add_flow(flow(p));
        out.tick(MeterLoss{});
        EXPECT_EQ(out.flow_records(), 500u);
        EXPECT_TRUE(out.finish(MeterLoss{}));
        EXPECT_EQ(out.records_not_sent(), 0u);
    }
    FileCounts fa = read_ipfix_file((dir / "a.ipfix").string());
    FileCounts fb = read_ipfix_file((dir / "b.ipfix").string());
    // Each file is a whole session: its own templates (the decoder would
    // refuse data without them), its flows, and a final statistics record.
    EXPECT_EQ(fa.flows, 300u);
    EXPECT_EQ(fb.flows, 200u);
    EXPECT_EQ(*fa.ports.begin(), 1u);
    EXPECT_EQ(*fa.ports.rbegin(), 300u);
    EXPECT_EQ(*fb.ports.begin(), 301u);
    EXPECT_EQ(*fb.ports.rbegin(), 500u);
    EXPECT_EQ(fa.stats, 1u);
    EXPECT_EQ(fb.stats, 1u);
    EXPECT_EQ(fa.domains, std::set<uint32_t>{1});
    EXPECT_EQ(fb.domains, std::set<uint32_t>{9});
    fs::remove_all(dir);
}

TEST(ConfigReload, AnUnusableCollectorLeavesTheRunningOne) {
    namespace fs = std::filesystem;
    fs::path file = fs::temp_directory_path() / ("bpfix-reload-keep-" + std::to_string(::getpid()) + ".ipfix");
    ExporterConfig a = live();
    a.collector = "file:" + file.string();
    {
        ExportPipeline out(a);
        out.add_flow(flow(7));
        ExporterConfig b = a;
        b.collector = "file:/nonexistent-dir-bpfix/x.ipfix";
        EXPECT_THROW(out.switch_collector(b, MeterLoss{}), Error);
        EXPECT_EQ(out.url().str(), a.collector);
        out.add_flow(flow(8));
        EXPECT_TRUE(out.finish(MeterLoss{}));
        EXPECT_EQ(out.flow_records(), 2u);
    }
    FileCounts f = read_ipfix_file(file.string());
    EXPECT_EQ(f.flows, 2u);
    EXPECT_EQ(f.stats, 1u);
    fs::remove(file);
}
