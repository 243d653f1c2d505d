#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "collector.h"
#include "collector_url.h"
#include "error.h"
#include "log.h"
#include "sctp.h"
#include "toml_reader.h"

namespace bpfix {

void load_collector_config(const std::string& path, CollectorConfig& cfg) {
    TomlReader r(path);
    r.check_keys(r.root(), "", {"listen", "output", "limits", "ipfix", "log", "metrics"});

    auto li = r.section("listen");
    r.check_keys(li, "listen", {"urls", "allow", "udp_receive_buffer", "threads"});
    cfg.threads = static_cast<unsigned>(r.integer(li, "listen", "threads", cfg.threads, 0, 256));
    cfg.listen = r.strings(li, "listen", "urls", cfg.listen);
    cfg.allow = r.strings(li, "listen", "allow", cfg.allow);
    cfg.udp_receive_buffer = static_cast<int>(
        r.integer(li, "listen", "udp_receive_buffer", cfg.udp_receive_buffer, 65536, int64_t{1} << 30));

    auto out = r.section("output");
    r.check_keys(out, "output", {"dir", "format", "rotate_interval", "rotate_size", "max_queued_bytes",
                                 "keep_seconds", "keep_bytes", "compress", "compress_level"});
    cfg.compress = r.string(out, "output", "compress", cfg.compress);
    cfg.compress_level = static_cast<int>(r.integer(out, "output", "compress_level", cfg.compress_level, 1, 19));
    cfg.formats = r.strings(out, "output", "format", cfg.formats);
    cfg.keep_seconds = static_cast<uint64_t>(
        r.integer(out, "output", "keep_seconds", static_cast<int64_t>(cfg.keep_seconds), 0, int64_t{1} << 40));
    cfg.keep_bytes = static_cast<uint64_t>(
        r.integer(out, "output", "keep_bytes", static_cast<int64_t>(cfg.keep_bytes), 0, int64_t{1} << 60));
    cfg.output_dir = r.string(out, "output", "dir", cfg.output_dir);
    cfg.rotate_interval_s = static_cast<uint64_t>(
        r.integer(out, "output", "rotate_interval", static_cast<int64_t>(cfg.rotate_interval_s), 1, 86400));
    cfg.rotate_size_bytes = static_cast<uint64_t>(
        r.integer(out, "output", "rotate_size", static_cast<int64_t>(cfg.rotate_size_bytes), 0, int64_t{1} << 50));
    cfg.max_queued_bytes = static_cast<uint64_t>(r.integer(
        out, "output", "max_queued_bytes", static_cast<int64_t>(cfg.max_queued_bytes), 1 << 20, int64_t{1} << 40));

    auto lim = r.section("limits");
    r.check_keys(lim, "limits",
                 {"max_sessions", "udp_session_timeout", "max_templates", "udp_template_lifetime", "max_connections",
                  "max_connections_per_address", "connection_start_timeout", "connection_read_timeout",
                  "connection_idle_timeout", "max_domains", "max_exporter_series"});
    auto u64 = [&](const toml::value& t, const char* sect, const char* key, uint64_t def, int64_t lo, int64_t hi) {
        return static_cast<uint64_t>(r.integer(t, sect, key, static_cast<int64_t>(def), lo, hi));
    };
    cfg.max_connections = u64(lim, "limits", "max_connections", cfg.max_connections, 1, 1'000'000);
    cfg.max_connections_per_address =
        u64(lim, "limits", "max_connections_per_address", cfg.max_connections_per_address, 1, 1'000'000);
    cfg.connection_start_timeout_s =
        r.integer(lim, "limits", "connection_start_timeout", cfg.connection_start_timeout_s, 1, 86400);
    cfg.connection_read_timeout_s =
        r.integer(lim, "limits", "connection_read_timeout", cfg.connection_read_timeout_s, 1, 86400);
    cfg.connection_idle_timeout_s =
        r.integer(lim, "limits", "connection_idle_timeout", cfg.connection_idle_timeout_s, 0, 86400 * 7);
    cfg.max_domains = u64(lim, "limits", "max_domains", cfg.max_domains, 1, 1'000'000);
    cfg.max_exporter_series = u64(lim, "limits", "max_exporter_series", cfg.max_exporter_series, 1, 10'000'000);
    cfg.udp_template_lifetime_s =
        r.integer(lim, "limits", "udp_template_lifetime", cfg.udp_template_lifetime_s, 0, 86400 * 7);
    cfg.max_templates = static_cast<uint64_t>(
        r.integer(lim, "limits", "max_templates", static_cast<int64_t>(cfg.max_templates), 1, 65536 * 16));
    cfg.udp_session_timeout_s = r.integer(lim, "limits", "udp_session_timeout", cfg.udp_session_timeout_s, 1, 86400 * 7);
    cfg.max_sessions = static_cast<uint64_t>(
        r.integer(lim, "limits", "max_sessions", static_cast<int64_t>(cfg.max_sessions), 1, 1'000'000));

    auto ip = r.section("ipfix");
    r.check_keys(ip, "ipfix", {"pen"});
    cfg.pen = static_cast<uint32_t>(r.integer(ip, "ipfix", "pen", cfg.pen, 1, UINT32_MAX));

    auto me = r.section("metrics");
    r.check_keys(me, "metrics", {"listen", "max_connections", "header_timeout", "pcap_max_requests",
                                 "pcap_max_memory"});
    cfg.metrics = r.string(me, "metrics", "listen", cfg.metrics);
    cfg.http_max_connections = u64(me, "metrics", "max_connections", cfg.http_max_connections, 1, 100'000);
    cfg.http_header_timeout_s = r.integer(me, "metrics", "header_timeout", cfg.http_header_timeout_s, 1, 3600);
    cfg.pcap_max_requests = u64(me, "metrics", "pcap_max_requests", cfg.pcap_max_requests, 1, 1000);
    cfg.pcap_max_memory = u64(me, "metrics", "pcap_max_memory", cfg.pcap_max_memory, 1 << 20, int64_t{1} << 40);

    auto lg = r.section("log");
    r.check_keys(lg, "log", {"level", "stats_interval"});
    cfg.log_level = r.string(lg, "log", "level", cfg.log_level);
    cfg.stats_interval_s = r.number(lg, "log", "stats_interval", cfg.stats_interval_s);
}

void validate_collector_config(const CollectorConfig& cfg) {
    try {
        check_log_level(cfg.log_level);
    } catch (const Error& e) {
        throw Error(fmt::format("log.level (--log-level): {}", e.what()));
    }
    // No urls is fine when systemd passes the sockets (bpfix-collector.socket);
    // run_collector refuses to start with nothing to listen on.
    for (const auto& u : cfg.listen) parse_listen_url(u);
    for (const auto& a : cfg.allow) {
        try {
            parse_cidr(a);
        } catch (const Error& e) {
            throw Error(fmt::format("listen.allow: {}", e.what()));
        }
    }
    if (!cfg.metrics.empty() && cfg.metrics != "off") {
        try {
            parse_listen_url("tcp://" + cfg.metrics);
        } catch (const Error& e) {
            throw Error(fmt::format("metrics.listen '{}' is not ADDR:PORT ([ADDR]:PORT for IPv6), or off", cfg.metrics));
        }
    }
    if (cfg.formats.empty()) throw Error("output.format: name at least one format (jsonl, csv, sqlite, ipfix)");
    for (size_t i = 0; i < cfg.formats.size(); ++i) {
        const auto& f = cfg.formats[i];
        if (f != "jsonl" && f != "csv" && f != "sqlite" && f != "ipfix") {
            throw Error(fmt::format("output format '{}' is unknown; use jsonl, csv, sqlite or ipfix", f));
        }
        for (size_t j = 0; j < i; ++j) {
            if (cfg.formats[j] == f) throw Error(fmt::format("output format '{}' is named twice", f));
        }
    }
    if (cfg.compress != "none" && cfg.compress != "zstd") {
        throw Error(fmt::format("output.compress '{}' is unknown; use none or zstd (it applies to jsonl and csv)",
                                cfg.compress));
    }
    if (cfg.compress_level < 1 || cfg.compress_level > 19) {
        throw Error(fmt::format("output.compress_level {} is out of range 1..19", cfg.compress_level));
    }
    if (cfg.output_dir.empty()) throw Error("no output directory: give --output-dir DIR (or [output] dir)");
    if (cfg.stats_interval_s < 1 || cfg.stats_interval_s > 86400) {
        throw Error(fmt::format("log.stats_interval {} is out of range 1..86400 seconds", cfg.stats_interval_s));
    }
}

std::string CollectorReloadPlan::summary() const {
    std::vector<std::string> parts;
    if (allow) parts.emplace_back("allow");
    if (rotation) parts.emplace_back("rotation");
    if (log_level) parts.emplace_back("log level");
    return parts.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(parts, ", "));
}

CollectorReloadPlan plan_collector_reload(const CollectorConfig& a, const CollectorConfig& b) {
    CollectorReloadPlan p;
    p.allow = a.allow != b.allow;
    p.rotation = a.rotate_interval_s != b.rotate_interval_s || a.rotate_size_bytes != b.rotate_size_bytes ||
                 a.keep_seconds != b.keep_seconds || a.keep_bytes != b.keep_bytes;
    p.log_level = a.log_level != b.log_level;
    auto fixed = [&p](bool changed, const char* key) {
        if (changed) p.restart_only.emplace_back(key);
    };
    fixed(a.listen != b.listen, "listen.urls");
    fixed(a.udp_receive_buffer != b.udp_receive_buffer, "listen.udp_receive_buffer");
    fixed(a.output_dir != b.output_dir, "output.dir");
    fixed(a.formats != b.formats, "output.format");
    fixed(a.compress != b.compress || a.compress_level != b.compress_level, "output.compress");
    fixed(a.max_queued_bytes != b.max_queued_bytes, "output.max_queued_bytes");
    fixed(a.pen != b.pen, "ipfix.pen");
    fixed(a.threads != b.threads, "listen.threads");
    fixed(a.max_sessions != b.max_sessions || a.max_templates != b.max_templates ||
              a.udp_session_timeout_s != b.udp_session_timeout_s ||
              a.udp_template_lifetime_s != b.udp_template_lifetime_s || a.max_connections != b.max_connections ||
              a.max_connections_per_address != b.max_connections_per_address ||
              a.connection_start_timeout_s != b.connection_start_timeout_s ||
              a.connection_read_timeout_s != b.connection_read_timeout_s ||
              a.connection_idle_timeout_s != b.connection_idle_timeout_s || a.max_domains != b.max_domains ||
              a.max_exporter_series != b.max_exporter_series,
          "limits");
    fixed(a.stats_interval_s != b.stats_interval_s, "log.stats_interval");
    fixed(a.metrics != b.metrics, "metrics.listen");
    fixed(a.http_max_connections != b.http_max_connections || a.http_header_timeout_s != b.http_header_timeout_s ||
              a.pcap_max_requests != b.pcap_max_requests || a.pcap_max_memory != b.pcap_max_memory,
          "metrics limits");
    return p;
}

void adopt_collector_reloadable(CollectorConfig& r, const CollectorConfig& n) {
    r.allow = n.allow;
    r.log_level = n.log_level;
    r.rotate_interval_s = n.rotate_interval_s;
    r.rotate_size_bytes = n.rotate_size_bytes;
    r.keep_seconds = n.keep_seconds;
    r.keep_bytes = n.keep_bytes;
}

void check_collector_startable(const CollectorConfig& cfg) {
    struct stat st{};
    if (stat(cfg.output_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(fmt::format("output directory {} does not exist; create it (mkdir -p) or choose another with "
                                "--output-dir",
                                cfg.output_dir));
    }
    if (access(cfg.output_dir.c_str(), W_OK | X_OK) != 0) {
        throw Error(fmt::format("output directory {} is not writable: {}", cfg.output_dir, std::strerror(errno)));
    }
    for (const auto& u : cfg.listen) {
        if (parse_listen_url(u).kind != CollectorUrl::Kind::sctp) continue;
        if (std::string why = sctp_unavailable(); !why.empty()) throw Error(fmt::format("listen {}: {}", u, why));
    }
}

}  // namespace bpfix
