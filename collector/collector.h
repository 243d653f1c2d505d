#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cidr.h"

namespace bpfix {

struct CollectorConfig {
    std::vector<std::string> listen;  // udp://ADDR:PORT, tcp://ADDR:PORT
    std::vector<std::string> allow;   // exporter CIDRs accepted; empty: every exporter
    std::string output_dir;
    std::vector<std::string> formats = {"jsonl"};  // jsonl, csv, sqlite, ipfix
    std::string compress = "none";                 // jsonl and csv files: none or zstd
    int compress_level = 3;                        // zstd level 1..19
    uint64_t rotate_interval_s = 300;
    uint64_t rotate_size_bytes = 0;  // 0: only by time
    uint64_t keep_seconds = 0;       // retention by age of finished files; 0: keep
    uint64_t keep_bytes = 0;         // retention by their total size; 0: keep
    uint32_t pen = 0;                // enterprise number of bpfix's own elements
    int udp_receive_buffer = 32 << 20;
    unsigned threads = 0;  // decode workers; 0: one per CPU the process may use, at most 4
    uint64_t max_sessions = 4096;           // UDP sessions at once (exporter address and port)
    int64_t udp_session_timeout_s = 1800;   // a silent UDP session (and its templates in memory) ends
    // TCP/SCTP: connections at once (their own budget: they cannot crowd
    // out UDP exporters, nor UDP them), per exporter address, and the
    // timeouts that free a slot held by a peer that sends nothing.
    uint64_t max_connections = 1024;
    uint64_t max_connections_per_address = 64;
    int64_t connection_start_timeout_s = 30;  // the first whole IPFIX message must arrive within it
    int64_t connection_read_timeout_s = 30;   // a message begun must end within it
    int64_t connection_idle_timeout_s = 1800;  // no message for this long: the connection is closed
    uint64_t max_templates = 1024;          // templates one session may hold (all its domains)
    uint64_t max_domains = 256;             // observation domains one session may use
    uint64_t max_exporter_series = 4096;    // (exporter, domain) rows on /metrics; more share one "other" row
    int64_t udp_template_lifetime_s = 1800;  // a UDP template not sent again within it expires; 0: never
    uint64_t max_queued_bytes = 256 << 20;  // records waiting for the disk
    double stats_interval_s = 60;
    std::string log_level = "info";
    std::string metrics = "127.0.0.1:9739";  // Prometheus /metrics; "off": none
    uint64_t http_max_connections = 64;      // HTTP clients at once (metrics, health, pcap API)
    int64_t http_header_timeout_s = 10;      // a request's header must arrive within it
    uint64_t pcap_max_requests = 2;          // pcap API transfers at once; more get 503
    uint64_t pcap_max_memory = 256 << 20;    // bytes one pcap API transfer may hold in memory; more: 413
};

// Reads a TOML file (etc/bpfix/collector.toml documents every key) over
// `cfg`. Throws bpfix::Error naming the file, the key and the problem.
void load_collector_config(const std::string& path, CollectorConfig& cfg);

// Checks URLs, CIDRs, ranges; throws bpfix::Error naming the setting.
void validate_collector_config(const CollectorConfig& cfg);
// What the start refuses on this host as it is now, checked by
// --check-config too (systemd's ExecReload): an output directory that does
// not exist or cannot be written; an sctp:// url on a kernel without SCTP.
// Not checked (they change with the running collector itself): ports in
// use and the output directory's lock.
void check_collector_startable(const CollectorConfig& cfg);

// What SIGHUP changes in a running collector: the exporters allowed (for
// sessions that start from then on), file rotation and retention (from the
// new files the reload starts), the log level. Listeners, outputs and
// limits that size threads and queues apply at the next start only.
struct CollectorReloadPlan {
    bool allow = false, rotation = false, log_level = false;
    std::vector<std::string> restart_only;  // keys that changed, kept at their running value

    bool changes_anything() const { return allow || rotation || log_level; }
    std::string summary() const;  // "allow, rotation"; "nothing"
};
CollectorReloadPlan plan_collector_reload(const CollectorConfig& running, const CollectorConfig& next);
// Copies what a reload applies from `next` into `running`.
void adopt_collector_reloadable(CollectorConfig& running, const CollectorConfig& next);

// Receives IPFIX on every listener until SIGINT/SIGTERM, writes every record
// into rotated files in each configured format, then finalizes them and returns the
// exit code. Throws bpfix::Error for a listener or directory it cannot use.
// SIGHUP finishes the open files; with `reread` (the validated
// configuration read again from `config_path` and the command line) it
// first applies what plan_collector_reload() allows, or refuses a bad one.
int run_collector(const CollectorConfig& cfg, const std::function<CollectorConfig()>& reread = {},
                  const std::string& config_path = {});

}  // namespace bpfix
