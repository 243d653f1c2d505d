#include "config_reload.h"

#include <fmt/format.h>

#include "error.h"

namespace bpfix {

std::string ReloadPlan::summary() const {
    std::vector<std::string> parts;
    if (interfaces) parts.emplace_back("interfaces");
    if (collector) parts.emplace_back("collector");
    if (filters) parts.emplace_back("filters");
    if (flows) parts.emplace_back("flow timeouts");
    if (drain_interval) parts.emplace_back("drain interval");
    if (log_level) parts.emplace_back("log level");
    return parts.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(parts, ", "));
}

ReloadPlan plan_reload(const ExporterConfig& a, const ExporterConfig& b) {
    if (b.interfaces.empty()) {
        throw Error("the new configuration meters no live interface ([live] interfaces is empty); a running live "
                    "exporter cannot switch to pcap mode (stop it instead)");
    }
    ReloadPlan p;
    p.interfaces = a.interfaces != b.interfaces || a.exclude != b.exclude;
    p.collector = a.collector != b.collector || a.observation_domain != b.observation_domain ||
                  a.template_refresh_s != b.template_refresh_s || a.stats_interval_s != b.stats_interval_s ||
                  a.transport != b.transport || a.drain_timeout_s != b.drain_timeout_s;
    p.filters = a.filters != b.filters;
    p.flows = a.idle_timeout_s != b.idle_timeout_s || a.active_timeout_s != b.active_timeout_s ||
              a.tcp_end_linger_s != b.tcp_end_linger_s || a.max_flows != b.max_flows;
    p.drain_interval = a.drain_interval_s != b.drain_interval_s;
    p.log_level = a.log_level != b.log_level;
    auto fixed = [&p](bool changed, const char* key) {
        if (changed) p.restart_only.emplace_back(key);
    };
    fixed(a.pen != b.pen, "export.pen");
    fixed(a.map_entries != b.map_entries, "live.map_entries");
    fixed(a.sampling != b.sampling, "live.sampling");
    fixed(a.cache_slots != b.cache_slots, "live.cache_slots");
    fixed(a.attach != b.attach, "live.attach");
    fixed(a.enrich_drops != b.enrich_drops, "enrich.drops");
    fixed(a.enrich_dns != b.enrich_dns, "enrich.dns");
    fixed(a.dns_ports != b.dns_ports, "enrich.dns_ports");
    fixed(a.dns_timeout_s != b.dns_timeout_s, "enrich.dns_timeout");
    fixed(a.enrich_rtt != b.enrich_rtt, "enrich.rtt");
    fixed(a.rtt_hook != b.rtt_hook, "enrich.rtt_hook");
    fixed(!(a.capture == b.capture), "capture");
    fixed(a.metrics != b.metrics, "metrics.listen");
    return p;
}

void adopt_reloadable(ExporterConfig& r, const ExporterConfig& n) {
    r.interfaces = n.interfaces;
    r.exclude = n.exclude;
    r.collector = n.collector;
    r.observation_domain = n.observation_domain;
    r.template_refresh_s = n.template_refresh_s;
    r.stats_interval_s = n.stats_interval_s;
    r.transport = n.transport;
    r.drain_timeout_s = n.drain_timeout_s;
    r.filters = n.filters;
    r.idle_timeout_s = n.idle_timeout_s;
    r.active_timeout_s = n.active_timeout_s;
    r.tcp_end_linger_s = n.tcp_end_linger_s;
    r.max_flows = n.max_flows;
    r.drain_interval_s = n.drain_interval_s;
    r.log_level = n.log_level;
}

}  // namespace bpfix
