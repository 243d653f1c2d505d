// bpfix-exporter: a thin main over the exporter library.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "error.h"
#include "exporter_config.h"
#include "log.h"
#include "live_export.h"
#include "pcap_export.h"
#include "start_checks.h"

#ifndef BPFIX_VERSION
#define BPFIX_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    using namespace bpfix;
    CLI::App app{"bpfix-exporter: meters flows and exports them as IPFIX (RFC 7011)"};
    app.set_version_flag("--version", std::string("bpfix-exporter ") + BPFIX_VERSION);

    std::string config_path;
    bool check_only = false;
    std::string pcap, collector, log_level, attach;
    std::vector<std::string> interfaces, exclude;
    double idle = 0, active = 0, linger = -1;
    int64_t sampling = 0;
    int64_t domain = -1;
    std::string capture_listen, capture_filter;
    std::vector<std::string> capture_allow;
    int64_t capture_snaplen = 0;
    bool capture_export = false;
    app.add_option("-c,--config", config_path, "TOML configuration file (see etc/bpfix/exporter.toml)");
    app.add_flag("--check-config", check_only, "validate the configuration and flags, then exit");
    app.add_option("-r,--pcap", pcap, "meter this pcap/pcapng file instead of live interfaces");
    app.add_option("-i,--interface", interfaces, "meter this interface live (name, glob or re:REGEX; repeatable)");
    app.add_option("--exclude", exclude, "never meter these interfaces (name, glob or re:REGEX; default lo)");
    app.add_option("--sampling", sampling, "live mode: meter 1 packet in N (default 1: every packet)")
        ->check(CLI::Range(1LL, 1000000000LL));
    app.add_option("--attach", attach, "live mode: auto (TCX where the kernel has it), tcx or tc (clsact)")
        ->check(CLI::IsMember({"auto", "tcx", "tc"}));
    app.add_option("--capture-listen", capture_listen,
                   "live mode: serve captured packets as pcap on PORT (loopback), ADDR:PORT or [ADDR]:PORT");
    app.add_option("--capture-filter", capture_filter,
                   "live mode: pcap-filter expression (tcpdump syntax) for the captured packets");
    app.add_option("--capture-allow", capture_allow, "networks whose capture clients may connect (repeatable)");
    app.add_option("--capture-snaplen", capture_snaplen, "bytes kept of each captured packet (64..65535)")
        ->check(CLI::Range(64LL, 65535LL));
    app.add_flag("--capture-export", capture_export,
                 "live mode: also send captured packets to the collector as IPFIX packet reports (RFC 7133)");
    app.add_option("-C,--collector", collector, "sctp://HOST:PORT, tcp://HOST:PORT, udp://HOST:PORT or file:PATH");
    app.add_option("--observation-domain", domain, "IPFIX observation domain id")->check(CLI::Range(0LL, 4294967295LL));
    app.add_option("--idle-timeout", idle, "seconds without packets before a flow ends");
    app.add_option("--active-timeout", active, "longest a record may span, in seconds");
    app.add_option("--tcp-end-linger", linger, "seconds a TCP flow stays open after FIN");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
    std::string metrics;
    app.add_option("--metrics", metrics,
                   "live mode: serve Prometheus /metrics and /health on ADDR:PORT (default 127.0.0.1:9740; off: none)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 exits 105, 109, ... by error kind; the man pages promise 2 for
        // every usage error (0 for --help and --version).
        return app.exit(e) == 0 ? 0 : 2;
    }

    // The file, then the flags over it; read again on SIGHUP (live mode),
    // so a reload keeps what the command line set.
    auto read_config = [&] {
        ExporterConfig cfg;
        if (!config_path.empty()) load_exporter_config(config_path, cfg);
        if (!pcap.empty()) cfg.pcap_file = pcap;
        if (!interfaces.empty()) cfg.interfaces = interfaces;
        if (!exclude.empty()) cfg.exclude = exclude;
        if (sampling > 0) cfg.sampling = static_cast<uint32_t>(sampling);
        if (!attach.empty()) cfg.attach = attach;
        if (!collector.empty()) {
            cfg.collector = collector;
            cfg.collector_given = true;
        }
        if (domain >= 0) cfg.observation_domain = static_cast<uint32_t>(domain);
        if (idle != 0) cfg.idle_timeout_s = idle;
        if (active != 0) cfg.active_timeout_s = active;
        if (linger >= 0) cfg.tcp_end_linger_s = linger;
        if (!log_level.empty()) cfg.log_level = log_level;
        if (!metrics.empty()) cfg.metrics = metrics;
        if (!capture_listen.empty()) cfg.capture.listen = capture_listen;
        if (!capture_filter.empty()) cfg.capture.expression = capture_filter;
        if (!capture_allow.empty()) cfg.capture.allow = capture_allow;
        if (capture_export) cfg.capture.export_reports = true;
        if (capture_snaplen > 0) cfg.capture.snaplen = static_cast<uint32_t>(capture_snaplen);
        return cfg;
    };

    try {
        ExporterConfig cfg = read_config();
        init_logging("bpfix-exporter", cfg.log_level);
        validate_exporter_config(cfg);
        check_startable(cfg);
        if (check_only) {
            fmt::print("configuration OK\n");
            return 0;
        }
        if (!cfg.interfaces.empty()) {
            return run_live_export(cfg, [&] {
                ExporterConfig next = read_config();
                validate_exporter_config(next);
                return next;
            }, config_path);
        }
        return run_pcap_export(cfg);
    } catch (const Error& e) {
        fmt::print(stderr, "bpfix-exporter: error: {}\n", e.what());
        return 2;
    }
}
