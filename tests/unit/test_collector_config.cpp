// bpfix-collector's TOML config: the shipped example is valid and states
// the defaults; errors name the file and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "collector.h"
#include "error.h"
#include "info_model.h"

using namespace bpfix;

namespace {

std::string write_temp(const std::string& text) {
    char path[] = "/tmp/bpfix-collector-config-XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    close(fd);
    std::ofstream(path) << text;
    return path;
}

// The error of loading `text` and then validating it with a listener and
// a directory, as the flags would give them.
std::string error_of(const std::string& text) {
    std::string path = write_temp(text);
    try {
        CollectorConfig cfg;
        load_collector_config(path, cfg);
        if (cfg.listen.empty()) cfg.listen = {"udp://127.0.0.1:0"};
        if (cfg.output_dir.empty()) cfg.output_dir = "/tmp";
        validate_collector_config(cfg);
    } catch (const Error& e) {
        std::remove(path.c_str());
        return e.what();
    }
    std::remove(path.c_str());
    return "";
}

}  // namespace

TEST(CollectorConfig, ShippedExampleIsValidAndStatesTheDefaults) {
    CollectorConfig cfg, def;
    def.pen = kDefaultPen;
    cfg.pen = kDefaultPen;
    load_collector_config(BPFIX_SOURCE_DIR "/etc/bpfix/collector.toml", cfg);
    EXPECT_EQ(cfg.listen, def.listen);
    EXPECT_EQ(cfg.allow, def.allow);
    EXPECT_EQ(cfg.formats, def.formats);
    EXPECT_EQ(cfg.rotate_interval_s, def.rotate_interval_s);
    EXPECT_EQ(cfg.rotate_size_bytes, def.rotate_size_bytes);
    EXPECT_EQ(cfg.keep_seconds, def.keep_seconds);
    EXPECT_EQ(cfg.keep_bytes, def.keep_bytes);
    EXPECT_EQ(cfg.max_queued_bytes, def.max_queued_bytes);
    EXPECT_EQ(cfg.max_sessions, def.max_sessions);
    EXPECT_EQ(cfg.max_templates, def.max_templates);
    EXPECT_EQ(cfg.udp_session_timeout_s, def.udp_session_timeout_s);
    EXPECT_EQ(cfg.udp_receive_buffer, def.udp_receive_buffer);
    EXPECT_EQ(cfg.pen, def.pen);
    EXPECT_EQ(cfg.metrics, def.metrics);
    EXPECT_EQ(cfg.log_level, def.log_level);
    EXPECT_EQ(cfg.stats_interval_s, def.stats_interval_s);
}

TEST(CollectorConfig, ReadsValues) {
    std::string path = write_temp(R"(
[listen]
urls = ["udp://[::]:4739", "tcp://127.0.0.1:4740"]
allow = ["10.0.0.0/8"]
[output]
dir = "/var/lib/bpfix"
rotate_interval = 60
keep_bytes = 1000000
[limits]
max_templates = 64
)");
    CollectorConfig cfg;
    load_collector_config(path, cfg);
    std::remove(path.c_str());
    validate_collector_config(cfg);
    EXPECT_EQ(cfg.listen.size(), 2u);
    EXPECT_EQ(cfg.allow, std::vector<std::string>{"10.0.0.0/8"});
    EXPECT_EQ(cfg.output_dir, "/var/lib/bpfix");
    EXPECT_EQ(cfg.rotate_interval_s, 60u);
    EXPECT_EQ(cfg.keep_bytes, 1000000u);
    EXPECT_EQ(cfg.max_templates, 64u);
}

TEST(CollectorConfig, ErrorsNameTheKey) {
    EXPECT_NE(error_of("[listen]\nurl = 1\n").find("listen.url: unknown key"), std::string::npos);
    EXPECT_NE(error_of("[listen]\nurls = [\"ftp://x:1\"]\n").find("ftp://x:1"), std::string::npos);
    EXPECT_NE(error_of("[listen]\nallow = [\"10.0.0.0/40\"]\n").find("listen.allow"), std::string::npos);
    EXPECT_NE(error_of("[output]\nrotate_interval = 0\n").find("output.rotate_interval"), std::string::npos);
    EXPECT_EQ(error_of("[output]\nformat = [\"csv\", \"sqlite\", \"jsonl\", \"ipfix\"]\n"), "");
    EXPECT_NE(error_of("[output]\nformat = [\"parquet\"]\n").find("'parquet' is unknown"), std::string::npos);
    EXPECT_NE(error_of("[output]\nformat = [\"csv\", \"csv\"]\n").find("'csv' is named twice"), std::string::npos);
    EXPECT_NE(error_of("[output]\ncompress = \"gzip\"\n").find("'gzip' is unknown; use none or zstd"),
              std::string::npos);
    EXPECT_NE(error_of("[output]\ncompress_level = 22\n").find("compress_level"), std::string::npos);
    EXPECT_NE(error_of("[output]\nformat = [\"xml\"]\n").find("'xml' is unknown"), std::string::npos);
    EXPECT_EQ(error_of("[output]\nformat = [\"jsonl\", \"ipfix\"]\n"), "");
    EXPECT_NE(error_of("[metrics]\nlisten = \"nowhere\"\n").find("metrics.listen"), std::string::npos);
    EXPECT_NE(error_of("[limits]\nmax_templates = \"many\"\n").find("limits.max_templates"), std::string::npos);
    EXPECT_NE(error_of("[bogus]\n").find("bogus"), std::string::npos);
    EXPECT_EQ(error_of("[output]\nformat = [\"jsonl\"]\n"), "");
}

TEST(CollectorReload, AllowRotationAndLogLevelApplyTheRestWaits) {
    CollectorConfig a;
    a.listen = {"tcp://127.0.0.1:4739"};
    a.output_dir = "/var/lib/bpfix-collector";
    CollectorConfig b = a;
    EXPECT_FALSE(plan_collector_reload(a, b).changes_anything());
    EXPECT_EQ(plan_collector_reload(a, b).summary(), "nothing");
    b.allow = {"192.0.2.0/24"};
    b.rotate_interval_s = 60;
    b.keep_bytes = 1 << 30;
    b.log_level = "debug";
    b.listen.push_back("udp://127.0.0.1:4739");
    b.formats = {"jsonl", "ipfix"};
    b.max_sessions = 10;
    CollectorReloadPlan p = plan_collector_reload(a, b);
    EXPECT_TRUE(p.allow && p.rotation && p.log_level);
    EXPECT_EQ(p.summary(), "allow, rotation, log level");
    EXPECT_EQ(p.restart_only, (std::vector<std::string>{"listen.urls", "output.format", "limits"}));
    // Adopting takes what applies; the rest keeps its running value, so
    // the same file read again only repeats the warnings.
    adopt_collector_reloadable(a, b);
    EXPECT_EQ(a.allow, b.allow);
    EXPECT_EQ(a.rotate_interval_s, 60u);
    EXPECT_EQ(a.listen.size(), 1u);
    EXPECT_EQ(a.formats, std::vector<std::string>{"jsonl"});
    CollectorReloadPlan again = plan_collector_reload(a, b);
    EXPECT_FALSE(again.changes_anything());
    EXPECT_EQ(again.restart_only.size(), 3u);
}
