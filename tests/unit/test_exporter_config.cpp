#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>

#include "error.h"
#include "exporter_config.h"

using namespace bpfix;

namespace {

std::string write_temp(const std::string& text) {
    char name[] = "/tmp/bpfix-config-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(name) << text;
    return name;
}

std::string load_error(const std::string& text) {
    std::string path = write_temp(text);
    ExporterConfig cfg;
    try {
        load_exporter_config(path, cfg);
        validate_exporter_config(cfg);
    } catch (const Error& e) {
        std::remove(path.c_str());
        return e.what();
    }
    std::remove(path.c_str());
    return "";
}

}  // namespace

TEST(ExporterConfig, ShippedExampleIsValidAndMatchesDefaults) {
    ExporterConfig cfg;
    load_exporter_config(BPFIX_SOURCE_DIR "/etc/bpfix/exporter.toml", cfg);
    validate_exporter_config(cfg);
    ExporterConfig def;
    EXPECT_EQ(cfg.collector, def.collector);
    EXPECT_EQ(cfg.idle_timeout_s, def.idle_timeout_s);
    EXPECT_EQ(cfg.active_timeout_s, def.active_timeout_s);
    EXPECT_EQ(cfg.tcp_end_linger_s, def.tcp_end_linger_s);
    EXPECT_EQ(cfg.max_flows, def.max_flows);
    EXPECT_EQ(cfg.pen, def.pen);
    EXPECT_EQ(cfg.observation_domain, def.observation_domain);
    EXPECT_EQ(cfg.transport.mtu, def.transport.mtu);
    EXPECT_EQ(cfg.enrich_drops, def.enrich_drops);
    const CaptureConfig &c = cfg.capture, &d = def.capture;
    EXPECT_EQ(std::tie(c.listen, c.allow, c.interfaces, c.expression, c.snaplen, c.first_packets, c.sampling,
                       c.nanoseconds, c.ring_bytes, c.client_queue_bytes, c.max_clients, c.flow_entries),
              std::tie(d.listen, d.allow, d.interfaces, d.expression, d.snaplen, d.first_packets, d.sampling,
                       d.nanoseconds, d.ring_bytes, d.client_queue_bytes, d.max_clients, d.flow_entries));
    EXPECT_TRUE(c.filters.empty());
}

TEST(ExporterConfig, ReadsValues) {
    std::string path = write_temp(R"(
[export]
collector = "tcp://[::1]:4740"
observation_domain = 9
[flows]
idle_timeout = 5
active_timeout = 30.5
[pcap]
direction = "egress"
)");
    ExporterConfig cfg;
    load_exporter_config(path, cfg);
    std::remove(path.c_str());
    EXPECT_EQ(cfg.collector, "tcp://[::1]:4740");
    EXPECT_EQ(cfg.observation_domain, 9u);
    EXPECT_EQ(cfg.idle_timeout_s, 5.0);
    EXPECT_EQ(cfg.active_timeout_s, 30.5);
    EXPECT_EQ(cfg.pcap_direction, 1);
}

TEST(ExporterConfig, ReadsLiveSectionAndFilterRules) {
    std::string path = write_temp(R"(
[live]
interfaces = ["tap*", "re:^vnet[0-9]+$"]
sampling = 100
cache_slots = 1024
attach = "tc"
[[live.filter]]
action = "reject"
protocol = "udp"
port = 53
[[live.filter]]
action = "accept"
peer = "10.0.0.0/8"
)");
    ExporterConfig cfg;
    load_exporter_config(path, cfg);
    validate_exporter_config(cfg);
    std::remove(path.c_str());
    ASSERT_EQ(cfg.interfaces.size(), 2u);
    EXPECT_EQ(cfg.sampling, 100u);
    EXPECT_EQ(cfg.cache_slots, 1024u);
    EXPECT_EQ(cfg.attach, "tc");
    ASSERT_EQ(cfg.filters.size(), 2u);
    EXPECT_EQ(cfg.filters[0].port, "53");
    EXPECT_EQ(cfg.filters[1].peer, "10.0.0.0/8");
}

TEST(ExporterConfig, ErrorsNameTheKey) {
    EXPECT_NE(load_error("[[live.filter]]\naction = \"drop\"\n").find("live.filter rule 1: action"),
              std::string::npos);
    EXPECT_NE(load_error("[[live.filter]]\naction = \"accept\"\nprot = \"udp\"\n").find("prot"),
              std::string::npos);
    EXPECT_NE(load_error("[flows]\nidle_timout = 5\n").find("flows.idle_timout"), std::string::npos);
    EXPECT_NE(load_error("[flows]\nidle_timeout = \"x\"\n").find("flows.idle_timeout"), std::string::npos);
    EXPECT_NE(load_error("[flows]\nidle_timeout = -1\n").find("idle_timeout"), std::string::npos);
    EXPECT_NE(load_error("[export]\ncollector = \"ftp://x:1\"\n").find("ftp://x:1"), std::string::npos);
    EXPECT_NE(load_error("[transport]\nmtu = 100\n").find("transport.mtu"), std::string::npos);
    EXPECT_NE(load_error("[transport]\nmtu = 70000\n").find("transport.mtu"), std::string::npos);
    EXPECT_NE(load_error("[pcap]\ndirection = \"sideways\"\n").find("pcap.direction"), std::string::npos);
    EXPECT_NE(load_error("[live]\ncache_slots = 1000\n").find("live.cache_slots: 1000 is not a power of two"),
              std::string::npos);
    EXPECT_NE(load_error("[live]\nattach = \"xdp\"\n").find("live.attach"), std::string::npos);
    EXPECT_NE(load_error("[enrich]\nrtt_hook = \"uprobe\"\n").find("enrich.rtt_hook"), std::string::npos);
    EXPECT_NE(load_error("[bogus]\n").find("bogus"), std::string::npos);
    EXPECT_NE(load_error("[flows\n").find("config"), std::string::npos);  // syntax error, with the file
}
