#include "exporter_config.h"

#include <sys/stat.h>

#include "bpfix_abi.h"

#include <fmt/format.h>

#include <set>
#include <toml.hpp>

#include "collector_url.h"
#include "packet_capture.h"
#include "pcap_server.h"
#include "error.h"
#include "log.h"
#include "toml_reader.h"

namespace bpfix {

namespace {

uint64_t to_ns(double s) { return static_cast<uint64_t>(s * 1e9 + 0.5); }

// [[SECTION.filter]] rule tables, as text (compile_filter checks them).
std::vector<FilterRuleText> filter_rules(const TomlReader& r, const toml::value& arr, const std::string& key) {
    if (!arr.is_array()) r.fail(key, "must be an array of tables ([[" + key + "]])");
    std::vector<FilterRuleText> out;
    size_t n = 0;
    for (const auto& t : arr.as_array()) {
        ++n;
        std::string where = fmt::format("{} rule {}", key, n);
        if (!t.is_table()) r.fail(where, "must be a table");
        r.check_keys(t, where, {"action", "protocol", "src", "dst", "peer", "port", "src_port", "dst_port",
                                "direction"});
        FilterRuleText f;
        f.action = r.string(t, where, "action", "");
        auto text = [&](const char* name) -> std::string {
            if (!t.contains(name)) return "";
            const auto& v = t.at(name);
            if (v.is_integer()) return std::to_string(v.as_integer());
            if (!v.is_string()) r.fail(where + "." + name, "must be a string or a number");
            return v.as_string();
        };
        f.protocol = text("protocol");
        f.src = text("src");
        f.dst = text("dst");
        f.peer = text("peer");
        f.port = text("port");
        f.src_port = text("src_port");
        f.dst_port = text("dst_port");
        f.direction = text("direction");
        out.push_back(f);
    }
    return out;
}

}  // namespace

FlowTableConfig ExporterConfig::flow_table() const {
    FlowTableConfig f;
    f.idle_timeout_ns = to_ns(idle_timeout_s);
    f.active_timeout_ns = to_ns(active_timeout_s);
    f.tcp_end_linger_ns = to_ns(tcp_end_linger_s);
    f.max_flows = max_flows;
    return f;
}

void load_exporter_config(const std::string& path, ExporterConfig& cfg) {
    TomlReader r(path);
    const toml::value& root = r.root();
    r.check_keys(root, "", {"export", "transport", "flows", "live", "enrich", "capture", "pcap", "log", "metrics"});
    auto section = [&](const char* name) { return r.section(name); };

    auto ex = section("export");
    r.check_keys(ex, "export", {"collector", "observation_domain", "pen", "template_refresh", "stats_interval"});
    cfg.collector = r.string(ex, "export", "collector", cfg.collector);
    if (ex.contains("collector")) cfg.collector_given = true;
    cfg.observation_domain =
        static_cast<uint32_t>(r.integer(ex, "export", "observation_domain", cfg.observation_domain, 0, UINT32_MAX));
    cfg.pen = static_cast<uint32_t>(r.integer(ex, "export", "pen", cfg.pen, 1, UINT32_MAX));
    cfg.template_refresh_s = r.number(ex, "export", "template_refresh", cfg.template_refresh_s);
    cfg.stats_interval_s = r.number(ex, "export", "stats_interval", cfg.stats_interval_s);

    auto tr = section("transport");
    r.check_keys(tr, "transport",
                 {"mtu", "queue_bytes", "reconnect_min", "reconnect_max", "drain_timeout", "sctp_lifetime"});
    cfg.transport.mtu = static_cast<uint32_t>(r.integer(tr, "transport", "mtu", cfg.transport.mtu, 0, 65535));
    if (cfg.transport.mtu != 0 && cfg.transport.mtu < 576) {
        r.fail("transport.mtu", fmt::format("{} is too small: use 0 (the route's MTU) or 576..65535", cfg.transport.mtu));
    }
    cfg.transport.queue_bytes = static_cast<size_t>(
        r.integer(tr, "transport", "queue_bytes", static_cast<int64_t>(cfg.transport.queue_bytes), 65536,
                  int64_t{1} << 40));
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
    cfg.transport.reconnect_min =
        ms(r.number(tr, "transport", "reconnect_min", cfg.transport.reconnect_min.count() / 1000.0));
    cfg.transport.reconnect_max =
        ms(r.number(tr, "transport", "reconnect_max", cfg.transport.reconnect_max.count() / 1000.0));
    cfg.drain_timeout_s = r.number(tr, "transport", "drain_timeout", cfg.drain_timeout_s);
    double lifetime = r.number(tr, "transport", "sctp_lifetime", cfg.transport.sctp_lifetime.count() / 1000.0);
    if (!(lifetime == 0 || (lifetime >= 0.001 && lifetime <= 3600))) {
        r.fail("transport.sctp_lifetime",
               fmt::format("{} is not 0 (fully reliable) or a lifetime from 0.001 to 3600 seconds", lifetime));
    }
    cfg.transport.sctp_lifetime = ms(lifetime);

    auto fl = section("flows");
    r.check_keys(fl, "flows", {"idle_timeout", "active_timeout", "tcp_end_linger", "max_flows"});
    cfg.idle_timeout_s = r.number(fl, "flows", "idle_timeout", cfg.idle_timeout_s);
    cfg.active_timeout_s = r.number(fl, "flows", "active_timeout", cfg.active_timeout_s);
    cfg.tcp_end_linger_s = r.number(fl, "flows", "tcp_end_linger", cfg.tcp_end_linger_s);
    cfg.max_flows = static_cast<size_t>(
        r.integer(fl, "flows", "max_flows", static_cast<int64_t>(cfg.max_flows), 1, 100'000'000));

    auto lv = section("live");
    r.check_keys(lv, "live", {"interfaces", "exclude", "drain_interval", "map_entries", "sampling", "attach",
                            "cache_slots", "filter"});
    if (lv.contains("filter")) cfg.filters = filter_rules(r, lv.at("filter"), "live.filter");
    cfg.sampling = static_cast<uint32_t>(r.integer(lv, "live", "sampling", cfg.sampling, 1, 1'000'000'000));
    cfg.map_entries = static_cast<uint32_t>(r.integer(lv, "live", "map_entries", cfg.map_entries, 1, 16'777'216));
    cfg.cache_slots = static_cast<uint32_t>(r.integer(lv, "live", "cache_slots", cfg.cache_slots, 0, 1 << 20));
    if (cfg.cache_slots & (cfg.cache_slots - 1)) {
        r.fail("live.cache_slots", fmt::format("{} is not a power of two (or 0 for no cache)", cfg.cache_slots));
    }
    cfg.attach = r.string(lv, "live", "attach", cfg.attach);
    if (cfg.attach != "auto" && cfg.attach != "tcx" && cfg.attach != "tc") {
        r.fail("live.attach", "must be \"auto\", \"tcx\" or \"tc\", not \"" + cfg.attach + "\"");
    }
    cfg.interfaces = r.strings(lv, "live", "interfaces", cfg.interfaces);
    cfg.exclude = r.strings(lv, "live", "exclude", cfg.exclude);
    cfg.drain_interval_s = r.number(lv, "live", "drain_interval", cfg.drain_interval_s);

    auto en = section("enrich");
    r.check_keys(en, "enrich", {"drops", "dns", "dns_ports", "dns_timeout", "rtt", "rtt_hook"});
    cfg.enrich_drops = r.boolean(en, "enrich", "drops", cfg.enrich_drops);
    cfg.enrich_dns = r.boolean(en, "enrich", "dns", cfg.enrich_dns);
    cfg.enrich_rtt = r.boolean(en, "enrich", "rtt", cfg.enrich_rtt);
    cfg.rtt_hook = r.string(en, "enrich", "rtt_hook", cfg.rtt_hook);
    if (cfg.rtt_hook != "auto" && cfg.rtt_hook != "fentry" && cfg.rtt_hook != "tp_btf" && cfg.rtt_hook != "kprobe") {
        r.fail("enrich.rtt_hook", "must be \"auto\", \"fentry\", \"tp_btf\" or \"kprobe\", not \"" + cfg.rtt_hook +
                                      "\"");
    }
    std::vector<int64_t> ports(cfg.dns_ports.begin(), cfg.dns_ports.end());
    ports = r.integers(en, "enrich", "dns_ports", ports, 1, 65535);
    if (ports.empty() || ports.size() > BPFIX_DNS_MAX_PORTS) {
        r.fail("enrich.dns_ports", fmt::format("give 1 to {} ports ({} given); switch DNS off with dns = false",
                                               BPFIX_DNS_MAX_PORTS, ports.size()));
    }
    cfg.dns_ports.assign(ports.begin(), ports.end());
    cfg.dns_timeout_s = r.number(en, "enrich", "dns_timeout", cfg.dns_timeout_s);
    if (!(cfg.dns_timeout_s >= 0.1 && cfg.dns_timeout_s <= 300)) {
        r.fail("enrich.dns_timeout", fmt::format("{} is out of range 0.1..300 seconds", cfg.dns_timeout_s));
    }

    auto ca = section("capture");
    r.check_keys(ca, "capture", {"listen", "allow", "interfaces", "filter", "expression", "snaplen", "first_packets",
                                 "sampling", "timestamps", "ring_bytes", "client_queue_bytes", "max_clients",
                                 "flow_entries", "export"});
    CaptureConfig& cc = cfg.capture;
    cc.listen = r.string(ca, "capture", "listen", cc.listen);
    cc.allow = r.strings(ca, "capture", "allow", cc.allow);
    cc.interfaces = r.strings(ca, "capture", "interfaces", cc.interfaces);
    if (ca.contains("filter")) cc.filters = filter_rules(r, ca.at("filter"), "capture.filter");
    cc.expression = r.string(ca, "capture", "expression", cc.expression);
    cc.snaplen = static_cast<uint32_t>(r.integer(ca, "capture", "snaplen", cc.snaplen, 64, BPFIX_CAPTURE_MAX_SNAP));
    cc.first_packets =
        static_cast<uint32_t>(r.integer(ca, "capture", "first_packets", cc.first_packets, 0, UINT32_MAX));
    cc.sampling = static_cast<uint32_t>(r.integer(ca, "capture", "sampling", cc.sampling, 1, 1'000'000'000));
    std::string ts = r.string(ca, "capture", "timestamps", cc.nanoseconds ? "ns" : "us");
    if (ts != "us" && ts != "ns") r.fail("capture.timestamps", "must be \"us\" or \"ns\", not \"" + ts + "\"");
    cc.nanoseconds = ts == "ns";
    cc.ring_bytes = static_cast<uint32_t>(
        r.integer(ca, "capture", "ring_bytes", cc.ring_bytes, 1 << 17, int64_t{1} << 30));
    if (cc.ring_bytes & (cc.ring_bytes - 1)) {
        r.fail("capture.ring_bytes", fmt::format("{} is not a power of two", cc.ring_bytes));
    }
    cc.client_queue_bytes = static_cast<size_t>(r.integer(ca, "capture", "client_queue_bytes",
                                                          static_cast<int64_t>(cc.client_queue_bytes), 1 << 17,
                                                          int64_t{1} << 34));
    cc.max_clients = static_cast<uint32_t>(r.integer(ca, "capture", "max_clients", cc.max_clients, 1, 1024));
    cc.flow_entries =
        static_cast<uint32_t>(r.integer(ca, "capture", "flow_entries", cc.flow_entries, 1, 16'777'216));

    cc.export_reports = r.boolean(ca, "capture", "export", cc.export_reports);

    auto pc = section("pcap");
    r.check_keys(pc, "pcap", {"file", "interface_index", "direction"});
    cfg.pcap_file = r.string(pc, "pcap", "file", cfg.pcap_file);
    cfg.pcap_interface_index = static_cast<uint32_t>(
        r.integer(pc, "pcap", "interface_index", cfg.pcap_interface_index, 0, UINT32_MAX));
    std::string dir = r.string(pc, "pcap", "direction", cfg.pcap_direction ? "egress" : "ingress");
    if (dir == "ingress") cfg.pcap_direction = 0;
    else if (dir == "egress") cfg.pcap_direction = 1;
    else r.fail("pcap.direction", "'" + dir + "' is neither \"ingress\" nor \"egress\"");

    auto lg = section("log");
    r.check_keys(lg, "log", {"level"});
    cfg.log_level = r.string(lg, "log", "level", cfg.log_level);

    auto me = section("metrics");
    r.check_keys(me, "metrics", {"listen"});
    cfg.metrics = r.string(me, "metrics", "listen", cfg.metrics);
}

void validate_exporter_config(const ExporterConfig& cfg) {
    try {
        check_log_level(cfg.log_level);
    } catch (const Error& e) {
        throw Error(fmt::format("log.level (--log-level): {}", e.what()));
    }
    if (!cfg.metrics.empty() && cfg.metrics != "off") {
        try {
            parse_listen_url("tcp://" + cfg.metrics);
        } catch (const Error&) {
            throw Error(fmt::format("metrics.listen (--metrics) '{}' is not ADDR:PORT ([ADDR]:PORT for IPv6), or off",
                                    cfg.metrics));
        }
    }
    auto positive = [](double v, const char* key) {
        if (!(v > 0) || v > 86400 * 365) {
            throw Error(fmt::format("{}: {} must be a number of seconds > 0", key, v));
        }
    };
    positive(cfg.idle_timeout_s, "flows.idle_timeout (--idle-timeout)");
    positive(cfg.active_timeout_s, "flows.active_timeout (--active-timeout)");
    if (cfg.tcp_end_linger_s < 0) {
        throw Error(fmt::format("flows.tcp_end_linger (--tcp-end-linger): {} must be >= 0 seconds",
                                cfg.tcp_end_linger_s));
    }
    positive(cfg.template_refresh_s, "export.template_refresh");
    positive(cfg.stats_interval_s, "export.stats_interval");
    if (!(cfg.drain_interval_s >= 0.05 && cfg.drain_interval_s <= 60)) {
        throw Error(fmt::format("live.drain_interval: {} must be between 0.05 and 60 seconds", cfg.drain_interval_s));
    }
    if (!cfg.interfaces.empty() && !cfg.pcap_file.empty()) {
        throw Error("both live interfaces and a pcap file are configured: choose --interface or --pcap");
    }
    if (cfg.drain_timeout_s < 0) {
        throw Error("transport.drain_timeout must be >= 0 seconds");
    }
    if (cfg.transport.reconnect_min.count() <= 0 || cfg.transport.reconnect_max < cfg.transport.reconnect_min) {
        throw Error("transport.reconnect_min must be > 0 and <= transport.reconnect_max");
    }
    if (cfg.pen == 0) {
        throw Error("export.pen: 0 is not a private enterprise number");
    }
    CollectorUrl out = parse_collector_url(cfg.collector);  // throws with the reason
    if (out.kind == CollectorUrl::Kind::file && !cfg.pcap_file.empty()) {
        // the same file under two names (a link, a relative path) too
        struct stat a{}, b{};
        if (out.path == cfg.pcap_file || (stat(out.path.c_str(), &a) == 0 && stat(cfg.pcap_file.c_str(), &b) == 0 &&
                                          a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
            throw Error(fmt::format("--collector file:{} is the input capture --pcap {}: writing it would destroy "
                                    "the capture; name another output file",
                                    out.path, cfg.pcap_file));
        }
    }
    compile_filter(cfg.filters);         // likewise, naming the rule
    if (cfg.interfaces.empty() && !cfg.pcap_file.empty()) {
        // pcap mode: settings only live mode has are refused, not ignored
        if (!cfg.collector_given) {
            throw Error(fmt::format("pcap mode: no collector given; name where the flows go with --collector URL "
                                    "(e.g. file:flows.ipfix, or udp://127.0.0.1:4739 for a collector listening "
                                    "there) or [export] collector in the config"));
        }
        if (cfg.sampling > 1) {
            throw Error(fmt::format("sampling 1 in {} (--sampling or [live] sampling) is live mode only: pcap mode "
                                    "meters every packet of the file; leave it out with --pcap",
                                    cfg.sampling));
        }
        if (!cfg.metrics.empty() && cfg.metrics != "off" && cfg.metrics != kDefaultMetrics) {
            throw Error(fmt::format("metrics on {} (--metrics or [metrics] listen) are served in live mode only: "
                                    "pcap mode prints its counts in the summary line at the end; leave it out "
                                    "with --pcap",
                                    cfg.metrics));
        }
    }
    if (cfg.capture.enabled()) {
        if (cfg.interfaces.empty()) {
            throw Error("[capture] is on (listen or export), but capture works in live mode only: give "
                        "--interface (the capture is taken on metered interfaces)");
        }
        check_capture_config(cfg.capture);
    }
}

}  // namespace bpfix
