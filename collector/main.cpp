// bpfix-collector: a thin main over the collector library.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "collector.h"
#include "error.h"
#include "file_reader.h"
#include "info_model.h"
#include "log.h"
#include "pcap_query.h"
#include "replay.h"

#ifndef BPFIX_VERSION
#define BPFIX_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    using namespace bpfix;
    CLI::App app{"bpfix-collector: receives IPFIX (RFC 7011) from exporters into rotated files, or decodes files"};
    app.set_version_flag("--version", std::string("bpfix-collector ") + BPFIX_VERSION);
    std::string config_path, read_path, output_dir, log_level, metrics, compress;
    int compress_level = 0;
    bool check_only = false;
    std::vector<std::string> listen, allow, formats;
    uint64_t rotate_interval = 0, rotate_size = 0, max_sessions = 0;
    int64_t udp_timeout = 0, template_lifetime = -1;
    int64_t pen = 0;
    unsigned threads = 0;
    app.add_option("-c,--config", config_path, "TOML configuration file (see etc/bpfix/collector.toml)");
    app.add_flag("--check-config", check_only, "validate the configuration and flags, then exit");
    app.add_option("-r,--read", read_path, "decode this IPFIX file and print its records as JSON lines");
    app.add_option("--listen", listen, "receive IPFIX on udp://, tcp:// or sctp://ADDR:PORT (repeatable; [::] for all)");
    app.add_option("--allow", allow, "accept only exporters in this CIDR (repeatable; default: every exporter)");
    app.add_option("-o,--output-dir", output_dir, "write records here, in rotated files");
    app.add_option("--format", formats, "output formats, comma-separated: jsonl (default), csv, sqlite, ipfix")
        ->delimiter(',');
    app.add_option("--compress", compress, "compress jsonl and csv files: none (default) or zstd");
    app.add_option("--compress-level", compress_level, "zstd level (1..19, default 3)")->check(CLI::Range(1, 19));
    app.add_option("--rotate-interval", rotate_interval, "seconds per output file, aligned to the clock (default 300)")
        ->check(CLI::Range(1, 86400));
    app.add_option("--rotate-size", rotate_size, "also start a new file past this many bytes (default 0: never)");
    app.add_option("--max-sessions", max_sessions, "UDP exporter sessions at once (default 4096)")
        ->check(CLI::Range(1, 1000000));
    app.add_option("--udp-session-timeout", udp_timeout, "seconds of silence that end a UDP session (default 1800)")
        ->check(CLI::Range(1, 604800));
    app.add_option("--udp-template-lifetime", template_lifetime,
                   "seconds a UDP template stays valid unless sent again (default 1800; 0: forever)")
        ->check(CLI::Range(0, 604800));
    app.add_option("--metrics", metrics, "serve Prometheus /metrics on ADDR:PORT (default 127.0.0.1:9739; off: none)");
    app.add_option("--pen", pen, "private enterprise number of bpfix elements")->check(CLI::Range(1LL, 4294967295LL));
    app.add_option("--threads", threads, "decode threads (default: one per usable CPU, at most 4)")
        ->check(CLI::Range(1, 256));
    app.add_option("--log-level", log_level, "trace, debug, info (default), warn, error or off");

    // bpfix-collector pcap: the pcap store read back (as GET /api/v1/pcap).
    CLI::App* pcap_cmd = app.add_subcommand("pcap", "write the stored packets of a time range as one time-ordered pcap");
    std::string data_dir, from, to, exporter, filter, write_to, precision = "ns";
    uint64_t max_mib = 1024;
    pcap_cmd->add_option("--data-dir", data_dir, "the collector's output directory")->required();
    pcap_cmd->add_option("--from", from, "start of the range, RFC 3339 (2026-12-01T04:30:00Z)")->required();
    pcap_cmd->add_option("--to", to, "end of the range (excluded), RFC 3339")->required();
    pcap_cmd->add_option("--exporter", exporter, "only this exporter's packets (its address)");
    pcap_cmd->add_option("--filter", filter, "pcap-filter expression (tcpdump syntax)");
    pcap_cmd->add_option("-w", write_to, "the pcap file to write, or - for stdout")->required();
    pcap_cmd->add_option("--precision", precision, "timestamps: ns (default) or us")->check(CLI::IsMember({"ns", "us"}));
    pcap_cmd->add_option("--max-mib", max_mib, "most MiB of matching packets to sort (default 1024)")
        ->check(CLI::Range(1, 1 << 20));
    // bpfix-collector replay: stored flow records to another collector.
    CLI::App* replay_cmd = app.add_subcommand("replay", "re-send the flow records stored in the ipfix format to "
                                                        "another collector");
    std::string replay_url;
    double speed = 0;
    uint32_t replay_mtu = 0;
    replay_cmd->add_option("--data-dir", data_dir, "the collector's output directory (with --format ipfix files)")
        ->required();
    replay_cmd->add_option("--from", from, "start of the range (message export time), RFC 3339")->required();
    replay_cmd->add_option("--to", to, "end of the range (excluded), RFC 3339")->required();
    replay_cmd->add_option("--to-collector", replay_url, "tcp://HOST:PORT, sctp://HOST:PORT or udp://HOST:PORT")->required();
    replay_cmd->add_option("--speed", speed, "original pace times this (default: as fast as possible)")
        ->check(CLI::PositiveNumber);
    replay_cmd->add_option("--mtu", replay_mtu, "UDP: datagrams fit this MTU (default: the route's)")
        ->check(CLI::Range(576, 65535));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 exits 105, 109, ... by error kind; the man pages promise 2 for
        // every usage error (0 for --help and --version).
        return app.exit(e) == 0 ? 0 : 2;
    }
    // The file, then the flags over it; read again on SIGHUP, so a reload
    // keeps what the command line set.
    auto read_config = [&] {
        CollectorConfig cfg;
        cfg.pen = kDefaultPen;
        if (!config_path.empty()) load_collector_config(config_path, cfg);
        if (!listen.empty()) cfg.listen = listen;
        if (!allow.empty()) cfg.allow = allow;
        if (!output_dir.empty()) cfg.output_dir = output_dir;
        if (!formats.empty()) cfg.formats = formats;
        if (!compress.empty()) cfg.compress = compress;
        if (compress_level) cfg.compress_level = compress_level;
        if (rotate_interval) cfg.rotate_interval_s = rotate_interval;
        if (app.count("--rotate-size")) cfg.rotate_size_bytes = rotate_size;
        if (max_sessions) cfg.max_sessions = max_sessions;
        if (udp_timeout) cfg.udp_session_timeout_s = udp_timeout;
        if (template_lifetime >= 0) cfg.udp_template_lifetime_s = template_lifetime;
        if (!metrics.empty()) cfg.metrics = metrics;
        if (pen) cfg.pen = static_cast<uint32_t>(pen);
        if (threads) cfg.threads = threads;
        if (!log_level.empty()) cfg.log_level = log_level;
        return cfg;
    };
    try {
        CollectorConfig cfg = read_config();
        init_logging("bpfix-collector", cfg.log_level);
        if (*pcap_cmd) {
            PcapQuery q;
            q.from_ns = parse_rfc3339(from);
            q.to_ns = parse_rfc3339(to);
            q.exporter = exporter;
            q.filter = filter;
            q.nanoseconds = precision == "ns";
            q.max_bytes = max_mib << 20;
            return write_pcap_file(data_dir, q, write_to);
        }
        if (*replay_cmd) {
            ReplayOptions r;
            r.data_dir = data_dir;
            r.from_ns = parse_rfc3339(from);
            r.to_ns = parse_rfc3339(to);
            r.url = replay_url;
            r.speed = speed;
            r.pen = cfg.pen;
            r.mtu = replay_mtu;
            return run_replay(r);
        }
        if (!read_path.empty()) {
            dump_ipfix_file_jsonl(read_path, cfg.pen, stdout);
            return 0;
        }
        validate_collector_config(cfg);
        check_collector_startable(cfg);
        if (check_only) {
            if (cfg.listen.empty()) {
                fmt::print("configuration OK; no [listen] urls: it listens on the sockets systemd passes "
                           "(bpfix-collector.socket), or without them on udp://127.0.0.1:4739 and "
                           "tcp://127.0.0.1:4739\n");
                return 0;
            }
            fmt::print("configuration OK\n");
            return 0;
        }
        return run_collector(cfg, [&] {
            CollectorConfig next = read_config();
            validate_collector_config(next);
            return next;
        }, config_path);
    } catch (const QueryError& e) {
        fmt::print(stderr, "bpfix-collector: error: {}\n", e.for_operator());
        return 2;
    } catch (const Error& e) {
        fmt::print(stderr, "bpfix-collector: error: {}\n", e.what());
        return 2;
    }
}
