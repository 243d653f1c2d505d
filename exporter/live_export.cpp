#include "live_export.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/steady_timer.hpp>
#include <csignal>
#include <malloc.h>
#include <algorithm>
#include <cstring>
#include <map>
#include <ctime>

#include "dns_ring.h"
#include "drop_tracker.h"
#include "enrichment.h"
#include "clock.h"
#include "config_reload.h"
#include "log.h"
#include "error.h"
#include "export_pipeline.h"
#include "flow_table.h"
#include "interface_selector.h"
#include "kernel_features.h"
#include "kernel_meter.h"
#include "kernel_rtt.h"
#include "link_monitor.h"
#include "packet_capture.h"
#include "packet_report.h"
#include "pcap_server.h"
#include "http_server.h"
#include "prometheus.h"
#include "service_notify.h"

namespace bpfix {

namespace {

// What the statistics and sampling records report. `metered` counts the
// packets that reached a flow so far.
MeterLoss loss(const KernelCounters& c, uint32_t sampling, uint64_t metered) {
    MeterLoss l{c.malformed_packets, c.malformed_bytes, c.map_full_packets, c.map_full_bytes, sampling, 0, 0, {}};
    l.selected_packets = metered + c.map_full_packets + c.malformed_packets + c.non_ip_packets;
    l.observed_packets = l.selected_packets + c.sampled_out_packets;
    return l;
}

std::string interfaces_text(size_t n) { return fmt::format("{} interface{}", n, n == 1 ? "" : "s"); }

// The collector's state in /health, in the words of its transport: UDP has
// no connection (an ICMP error is all it hears).
const char* collector_state(CollectorUrl::Kind kind, bool ok) {
    switch (kind) {
    case CollectorUrl::Kind::udp:
        return ok ? "sending (UDP)" : "unreachable (ICMP error on UDP)";
    case CollectorUrl::Kind::file:
        return ok ? "writing" : "not writable";
    default:
        return ok ? "connected" : "unreachable";
    }
}

}  // namespace

int run_live_export(const ExporterConfig& start_cfg, const std::function<ExporterConfig()>& reread,
                    const std::string& config_path) {
    // The configuration in effect: a reload changes what it can of it
    // (adopt_reloadable), the rest stays as started.
    ExporterConfig cfg = start_cfg;
    ServiceNotifier systemd;  // before anything is attached: a bad NOTIFY_SOCKET stops us early
    InterfaceSelector selector(cfg.interfaces, cfg.exclude);
    selector.require_exact_names();

    // One line for bug reports: what this kernel offers (docs/kernels.md).
    spdlog::info("{}", probe_kernel_features().line());
    // Drops: optional. A kernel that cannot trace them costs the drop
    // elements, never the flows; the templates say which elements come.
    std::unique_ptr<DropTracker> drops;
    if (cfg.enrich_drops) {
        try {
            drops = std::make_unique<DropTracker>(cfg.sampling);
            spdlog::info("drops: tracing kernel packet drops (tp_btf/kfree_skb, {} reason names from BTF, loaded {})",
                         drops->names().size(), drops->loaded_in_kernel() ? "by the kernel" : "by libbpf");
        } catch (const Error& e) {
            spdlog::warn("drops: off, flows are exported without drop elements: {}", e.what());
        }
    }
    // DNS: the TC programs hand DNS payloads up through a ring buffer.
    Enrichment enrich(cfg, false);
    // RTT: optional like drops; the kernel's smoothed RTT of this
    // namespace's TCP sockets, matched to flows by 5-tuple.
    std::unique_ptr<KernelRtt> rtt;
    if (cfg.enrich_rtt) {
        try {
            rtt = std::make_unique<KernelRtt>(cfg.rtt_hook);
            spdlog::info("rtt: kernel smoothed RTT via {} (TCP sockets of this network namespace, loaded {})",
                         rtt->hook(), rtt->loaded_in_kernel() ? "by the kernel" : "by libbpf");
        } catch (const Error& e) {
            spdlog::warn("rtt: off, flows are exported without RTT elements: {}", e.what());
        }
    }
    // Keys are forgotten after an idle timeout without packets (their
    // records have ended by then), and at least a minute.
    RttMatcher rtt_match(std::max<uint64_t>(cfg.flow_table().idle_timeout_ns * 2, 60'000'000'000ULL));
    AttachMode mode = cfg.attach == "tcx" ? AttachMode::kTcx : cfg.attach == "tc" ? AttachMode::kTc : AttachMode::kAuto;
    // The DNS copy is part of the TC programs: a verifier that refuses it
    // costs the DNS elements, never the flows.
    std::unique_ptr<KernelMeter> kernel_meter;
    if (enrich.dns()) {
        try {
            kernel_meter = std::make_unique<KernelMeter>(cfg.map_entries, cfg.sampling, compile_filter(cfg.filters),
                                                         mode, cfg.cache_slots, cfg.dns_ports);
        } catch (const Error& e) {
            spdlog::warn("dns: off, flows are exported without DNS elements: the kernel refused the TC programs "
                         "with the DNS copy ({})",
                         e.what());
            enrich.disable_dns();
        }
    }
    if (!kernel_meter) {
        kernel_meter = std::make_unique<KernelMeter>(cfg.map_entries, cfg.sampling, compile_filter(cfg.filters), mode,
                                                     cfg.cache_slots);
    }
    KernelMeter& kernel = *kernel_meter;
    // Loading the BPF objects parsed the kernel's BTF (megabytes, freed):
    // give the heap back to the system.
    malloc_trim(0);
    ExportPipeline out(cfg, (drops ? kSpecDrops : 0) | (rtt ? kSpecRtt : 0) | enrich.spec_flags() |
                                (cfg.capture.export_reports ? kSpecPacketReports : 0));
    // Signals are taken from here on, before anything is attached: one
    // that arrives while starting is queued and handled by the loop (which
    // detaches), instead of killing the process with its filters in place.
    DaemonSignals signals(out.io());
    std::unique_ptr<DnsRing> dns_ring;
    if (enrich.dns()) {
        dns_ring = std::make_unique<DnsRing>(kernel.dns_ring_fd(), *enrich.dns());
        spdlog::info("dns: parsing DNS on ports {} (timeout {} s)", fmt::join(cfg.dns_ports, ","), cfg.dns_timeout_s);
    }
    // Names of every interface metered in this run, kept after one vanishes
    // so its last records still carry it.
    std::map<int, std::string> names;
    FlowTable table(cfg.flow_table(), [&out, &names, &drops](const FlowRecord& r) {
        FlowRecord named = r;
        uint32_t idx = r.flowDirection ? r.egressInterface : r.ingressInterface;
        if (auto it = names.find(static_cast<int>(idx)); it != names.end()) {
            // Names are at most 15 characters (IFNAMSIZ - 1); an IPFIX
            // fixed-length string needs no terminator.
            std::memcpy(named.interfaceName, it->second.data(),
                        std::min(it->second.size(), sizeof named.interfaceName));
        }
        if (drops && r.droppedPacketDeltaCount) {
            // The name lives in DropReasonNames for the whole run.
            const std::string& reason = drops->names().name(r.dropReasonCode);
            named.bpfixDropReason.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(reason.data()));
            named.bpfixDropReason.len = reason.size();
        }
        out.add_flow(named);
    });
    table.set_enrich([&enrich, &rtt, &rtt_match](const bpfix_flow_key& k, uint32_t& ext, FlowRecord& r) {
        enrich.enrich(k, ext, r);
        if (!rtt) return;
        if (auto a = rtt_match.take(k)) {
            r.bpfixTcpRttMinMicroseconds = a->min_us;
            r.bpfixTcpRttMaxMicroseconds = a->max_us;
            r.bpfixTcpRttLastMicroseconds = a->last_us;
            r.bpfixTcpRttSamples = a->samples;
            r.bpfixTcpRttMethod = static_cast<uint8_t>(RttMethod::kernel_srtt);
        }
    });
    uint64_t rtt_samples = 0, rtt_matched = 0;
    uint64_t packets = 0, octets = 0;
    uint64_t drops_in_flows = 0;
    uint64_t capture_lost_logged = 0;
    uint64_t last_drain_entries = 0;  // kernel map entries read by the last drain: its fill level
    // The statistics' view of the meter, with the drops no flow took.
    auto meter_loss = [&] {
        MeterLoss l = loss(kernel.counters(), cfg.sampling, packets);
        if (drops) {
            for (const auto& [reason, t] : drops->unattributed()) {
                l.unattributed_drops[drops->names().name(reason)] = {t.packets, t.bytes};
            }
        }
        return l;
    };

    bool stopping = false;  // set by SIGINT/SIGTERM
    // While capture is on, the ring is also read on a timer (the kernel
    // wakes the reader only once a batch waits).
    asio::steady_timer capture_timer(out.io());
    bool capture_timer_set = false;
    std::unique_ptr<PacketCapture> capture;
    std::function<void()> poll_capture = [&] {
        if (capture_timer_set || !capture || !capture->active()) return;
        capture_timer_set = true;
        capture_timer.expires_after(PacketCapture::kPollInterval);
        capture_timer.async_wait([&](const asio::error_code& ec) {
            capture_timer_set = false;
            if (ec || stopping || !capture->active()) return;
            capture->poll();
            poll_capture();
        });
    };
    // Packets on demand: the capture programs are attached only while a
    // client of the live PCAP server is connected, or all the time when
    // packet reports go to the collector.
    std::unique_ptr<PcapServer> pcap_server;
    auto metered = [&] {
        std::map<int, std::string> m;
        for (int idx : kernel.attached_interfaces()) m[idx] = names[idx];
        return m;
    };
    if (cfg.capture.enabled()) {
        const bool reports = cfg.capture.export_reports;
        const size_t max_section = out.encoder().max_frame_section();
        if (reports && max_section < cfg.capture.snaplen) {
            spdlog::info("capture: packet reports over {} carry at most {} bytes of each frame (one IPFIX message)",
                         out.url().str(), max_section);
        }
        capture = std::make_unique<PacketCapture>(cfg.capture, mode, [&, reports](const CapturedPacket& p) {
            if (pcap_server) pcap_server->publish(p);
            // The encoder of the collector now (a reload may change it).
            if (reports) out.encoder().add_packet_report(make_packet_report(p, out.encoder().max_frame_section()));
        });
        if (!cfg.capture.listen.empty()) {
            pcap_server = std::make_unique<PcapServer>(out.io(), cfg.capture, [&, reports](size_t clients) {
                capture->set_active(reports || clients > 0, metered());
                poll_capture();
            });
        }
    }

    auto rescan = [&] {
        auto now = InterfaceSelector::list_interfaces();
        auto wanted = selector.select(now);
        for (int idx : kernel.attached_interfaces()) {
            if (!wanted.count(idx)) {
                // By the name it was metered under: the kernel has
                // forgotten it when it is gone.
                const auto known = names.find(idx);
                spdlog::info("interface {} (ifindex {}) {}; stopped metering it",
                             known != names.end() ? known->second : std::string("?"), idx,
                             now.count(idx) ? "is no longer selected" : "is gone");
                kernel.detach(idx);
                if (drops) drops->unwatch(idx);
            }
        }
        for (const auto& [idx, name] : wanted) {
            if (kernel.attached(idx)) continue;
            try {
                names[idx] = name;
                if (PacketCapture::remove_leftover(idx)) {
                    spdlog::warn("{}: removed a bpfix capture filter left by an earlier run", name);
                }
                kernel.attach(idx, name);
                if (drops) drops->watch(idx);
            } catch (const Error& e) {
                // An interface can vanish between listing and attaching.
                spdlog::warn("{}", e.what());
            }
        }
        if (capture) capture->sync(metered());
    };

    auto drain = [&] {
        // Kernel times are CLOCK_MONOTONIC; records carry wall-clock time.
        const uint64_t now_real = clock_ns(CLOCK_REALTIME);
        const uint64_t offset = now_real - clock_ns(CLOCK_MONOTONIC);
        // Drops first: a packet is metered (TC) before the stack drops it,
        // so every drop read now belongs to a packet already in the flow
        // maps drained next, and its flow is in the table when the drops
        // are merged.
        std::vector<KernelDrop> dropped;
        if (drops) dropped = drops->drain();
        // RTT samples likewise: a sample is taken when a socket receives a
        // segment, which the TC ingress hook metered first, so the flow
        // keys of its 5-tuple are known once the flows below are drained.
        std::vector<RttSample> rtt_samples_now;
        if (rtt) rtt_samples_now = rtt->drain();
        // DNS messages so far, and queries now past their timeout, before
        // the flows they belong to can end.
        if (dns_ring) dns_ring->poll();
        enrich.clock(clock_ns(CLOCK_MONOTONIC));
        last_drain_entries = 0;
        kernel.drain([&](const KernelFlow& f) {
            ++last_drain_entries;
            table.add_delta(f.key, f.first_ns + offset, f.last_ns + offset, f.packets, f.bytes, f.tcp_flags, f.tos);
            if (rtt) rtt_match.observe(f.key, now_real);
            packets += f.packets;
            octets += f.bytes;
        });
        for (const KernelDrop& d : dropped) {
            if (table.add_drops(d.key, d.packets, d.bytes, d.last_reason, d.tcp_state)) {
                drops_in_flows += d.packets;
            } else {
                drops->add_unattributed(d.last_reason, d.packets, d.bytes);
            }
        }
        for (const RttSample& s : rtt_samples_now) {
            spdlog::trace("rtt: socket port {} -> {}: {} samples, min {} max {} last {} us", s.key.src_port,
                          s.key.dst_port, s.samples, s.min_us, s.max_us, s.last_us);
            rtt_samples += s.samples;
            if (rtt_match.add(s)) rtt_matched += s.samples;
        }
        if (rtt) rtt_match.expire(now_real);
        if (capture) {
            uint64_t lost = capture->counters().lost;
            if (lost > capture_lost_logged) {
                spdlog::warn("capture: {} packets lost in the kernel so far: the ring buffer was full (raise "
                             "capture.ring_bytes, or narrow [[capture.filter]])",
                             lost);
                capture_lost_logged = lost;
            }
        }
        table.advance(now_real);
        out.tick(meter_loss());
        // Records leave within one drain interval, not when a message is
        // full (65000 bytes over TCP and SCTP: minutes on a quiet host).
        out.encoder().flush();
    };

    rescan();
    if (capture && cfg.capture.export_reports) {
        capture->set_active(true, metered());
        poll_capture();
    }
    if (kernel.attached_interfaces().empty()) {
        spdlog::warn("no interface matches yet; waiting for one to appear");
    }
    if (cfg.sampling > 1) {
        spdlog::info("sampling: 1 packet in {} per CPU; counters are not scaled", cfg.sampling);
    }
    spdlog::info("exporting to {}", out.url().str());

    // Interface changes arrive by netlink; the drain timer also rescans, in
    // case a notification was lost.
    LinkMonitor links(out.io(), [&] {
        if (stopping) return;
        try {
            rescan();
        } catch (const Error& e) {
            spdlog::error("{}", e.what());
        }
    });
    // The ring buffers (DNS payloads: a few hundred fit; captured packets)
    // are read as they become readable, each through its epoll fd.
    std::vector<std::unique_ptr<asio::posix::stream_descriptor>> ring_waits;
    std::function<void(asio::posix::stream_descriptor&, std::function<void()>)> read_when_ready =
        [&](asio::posix::stream_descriptor& d, std::function<void()> read) {
            d.async_wait(asio::posix::stream_descriptor::wait_read, [&, read](const asio::error_code& ec) {
                if (ec || stopping) return;
                read();
                read_when_ready(d, read);
            });
        };
    auto watch_ring = [&](int epoll_fd, std::function<void()> read) {
        ring_waits.push_back(std::make_unique<asio::posix::stream_descriptor>(out.io(), ::dup(epoll_fd)));
        read_when_ready(*ring_waits.back(), std::move(read));
    };
    if (dns_ring) watch_ring(dns_ring->epoll_fd(), [&] { dns_ring->poll(); });
    if (capture) watch_ring(capture->epoll_fd(), [&] { capture->poll(); });
    asio::steady_timer timer(out.io());
    auto status = [&] {
        return fmt::format("metering {}; {} flow records, {} not sent", interfaces_text(kernel.attached_interfaces().size()),
                           out.flow_records(), out.records_not_sent());
    };
    // SIGHUP: the configuration again. All of it is read and checked
    // before anything changes; a bad one is refused whole. Interfaces that
    // stay selected stay attached, and their flows stay in the table.
    auto reload = [&] {
        systemd.reloading();
        spdlog::info("SIGHUP: reading the configuration again ({})",
                     config_path.empty() ? "the command line only: no --config file" : config_path);
        try {
            ExporterConfig next = reread();
            ReloadPlan plan = plan_reload(cfg, next);
            InterfaceSelector next_selector(next.interfaces, next.exclude);
            next_selector.require_exact_names();
            // Compiled (and so checked) before anything changes.
            CompiledFilter filter = plan.filters ? compile_filter(next.filters) : CompiledFilter{};
            // The one step that can still fail goes first.
            if (plan.collector) {
                const std::string was = out.url().str();
                out.switch_collector(next, meter_loss());
                spdlog::info("reload: records go to {} from now on (new transport session); {} gets what it has "
                             "queued, for up to {} s",
                             out.url().str(), was, cfg.drain_timeout_s);
            }
            warn_restart_only(plan.restart_only, "exporter");
            adopt_reloadable(cfg, next);
            if (plan.log_level) set_log_level(cfg.log_level);
            if (plan.flows) table.set_config(cfg.flow_table());
            if (plan.filters) {
                kernel.set_filter(filter);
                spdlog::info("reload: {} [[live.filter]] rules in effect", filter.rules.size());
            }
            if (plan.interfaces) {
                selector = std::move(next_selector);
                rescan();
            }
            if (plan.drain_interval) timer.cancel();  // re-armed at once with the new interval
            spdlog::info("reload: applied (changed: {}); metering {}, exporting to {}", plan.summary(),
                         interfaces_text(kernel.attached_interfaces().size()), out.url().str());
        } catch (const std::exception& e) {  // ours name the problem; a socket's error too
            spdlog::error("reload refused; still running with the configuration in effect: {}", e.what());
        }
        systemd.ready(status());
    };
    signals.serve(reload, [&](int sig) {
        spdlog::info("signal {}: ending every flow and detaching", sig);
        systemd.stopping();
        stopping = true;
        timer.cancel();
        out.io().stop();
    });
    std::function<void()> schedule = [&] {
        timer.expires_after(std::chrono::microseconds(static_cast<int64_t>(cfg.drain_interval_s * 1e6)));
        timer.async_wait([&](const asio::error_code& ec) {
            if (stopping) return;
            if (ec) {
                schedule();  // cancelled by a reload: armed again with the new interval
                return;
            }
            try {
                rescan();
                drain();
            } catch (const Error& e) {
                spdlog::error("{}", e.what());
            }
            schedule();
        });
    };
    schedule();
    // Prometheus /metrics and /health (loopback by default), served by
    // this loop: an answer means it turns.
    std::unique_ptr<HttpServer> http;
    const std::string metrics_at = cfg.metrics.empty() ? kDefaultMetrics : cfg.metrics;
    if (metrics_at != "off") {
        CollectorUrl m = parse_listen_url("tcp://" + metrics_at);
        try {
            http = std::make_unique<HttpServer>(out.io(), asio::ip::tcp::endpoint(resolve_address(m.host), m.port));
        } catch (const asio::system_error& e) {
            std::string why = fmt::format("cannot serve metrics on {}: {} (set another with --metrics ADDR:PORT or "
                                          "[metrics] listen, or off)",
                                          metrics_at, e.code().message());
            if (!cfg.metrics.empty()) throw Error(why);
            spdlog::warn("{}; running without them", why);
        }
    }
    if (http) {
        http->handle("/metrics", [&](const HttpServer::Request&) {
            const std::string coll = fmt::format("collector=\"{}\"", PrometheusText::escape(out.url().str()));
            PrometheusText o;
            KernelCounters c = kernel.counters();
            o.one("bpfix_exporter_interfaces", "gauge", "interfaces metered now", kernel.attached_interfaces().size());
            o.one("bpfix_exporter_packets_total", "counter", "packets metered into flows (drained from the kernel)",
                  packets);
            o.one("bpfix_exporter_bytes_total", "counter", "bytes (IP length) metered into flows", octets);
            o.one("bpfix_exporter_flow_records_total", "counter", "flow records exported", out.flow_records());
            o.one("bpfix_exporter_records_total", "counter",
                  "data records exported: flows, statistics and RFC 5610 type records", out.data_records());
            o.one("bpfix_exporter_flows_active", "gauge", "flows open in the flow table", table.size());
            o.one("bpfix_exporter_kernel_map_entries", "gauge",
                  "kernel flow map entries read by the last drain (its fill level)", last_drain_entries);
            o.one("bpfix_exporter_kernel_map_capacity", "gauge", "entries of each kernel flow map ([live] map_entries)",
                  cfg.map_entries);
            o.one("bpfix_exporter_map_full_packets_total", "counter",
                  "packets whose flow found the kernel map full (exported as notSentPacketTotalCount)",
                  c.map_full_packets);
            o.one("bpfix_exporter_malformed_packets_total", "counter", "packets the kernel parser refused",
                  c.malformed_packets);
            o.one("bpfix_exporter_non_ip_packets_total", "counter", "packets that are not IP", c.non_ip_packets);
            o.one("bpfix_exporter_sampled_out_packets_total", "counter", "packets not selected by 1-in-N sampling",
                  c.sampled_out_packets);
            o.one("bpfix_exporter_filtered_packets_total", "counter", "packets refused by [[live.filter]] rules",
                  c.filtered_packets);
            o.family("bpfix_exporter_enrichment_enabled", "gauge",
                     "1 when the enrichment runs, 0 when it is off or its kernel support is missing");
            o.sample("bpfix_exporter_enrichment_enabled", "kind=\"dns\"", enrich.dns() ? 1 : 0);
            o.sample("bpfix_exporter_enrichment_enabled", "kind=\"drops\"", drops ? 1 : 0);
            o.sample("bpfix_exporter_enrichment_enabled", "kind=\"rtt\"", rtt ? 1 : 0);
            o.one("bpfix_exporter_dropped_packets_in_flows_total", "counter", "kernel drops attributed to flows",
                  drops_in_flows);
            o.one("bpfix_exporter_rtt_samples_total", "counter", "kernel RTT samples read", rtt_samples);
            o.one("bpfix_exporter_dns_unenriched_total", "counter",
                  "DNS messages left out of their flow's record: the DNS tables were full (max_flows)",
                  enrich.dns_unenriched());
            o.family("bpfix_exporter_messages_sent_total", "counter", "IPFIX messages handed to the transport");
            o.sample("bpfix_exporter_messages_sent_total", coll, out.transport().messages_sent());
            o.family("bpfix_exporter_records_not_sent_total", "counter",
                     "records that could not be delivered (queue full while the collector was away, or at exit)");
            o.sample("bpfix_exporter_records_not_sent_total", coll, out.transport().records_not_sent());
            o.family("bpfix_exporter_collector_connects_total", "counter",
                     "connections made to the collector (reconnects are the rest after the first)");
            o.sample("bpfix_exporter_collector_connects_total", coll, out.transport().connects());
            o.family("bpfix_exporter_collector_reachable", "gauge",
                     "1 while the collector is reachable (TCP/SCTP: connected; UDP: no ICMP error; file: writable)");
            o.sample("bpfix_exporter_collector_reachable", coll, out.transport().connected() ? 1 : 0);
            o.family("bpfix_exporter_export_queue_bytes", "gauge", "bytes waiting for the collector");
            o.sample("bpfix_exporter_export_queue_bytes", coll, out.transport().queued_bytes());
            if (capture) {
                CaptureCounters cc = capture->counters();
                o.one("bpfix_exporter_capture_captured_packets_total", "counter", "packets copied by the capture",
                      cc.captured);
                o.one("bpfix_exporter_capture_lost_packets_total", "counter",
                      "packets the capture lost in the kernel (ring buffer full)", cc.lost);
                o.one("bpfix_exporter_capture_client_drops_total", "counter",
                      "captured packets dropped for clients that read too slowly", pcap_server ? pcap_server->dropped() : 0);
            }
            return HttpServer::Response{200, "text/plain; version=0.0.4", o.text()};
        });
        http->handle("/health", [&](const HttpServer::Request&) {
            // 503 while records queue up for an unreachable collector.
            bool ok = out.transport().connected();
            return HttpServer::Response{ok ? 200 : 503, "text/plain",
                                        fmt::format("{}: metering {}; collector {} {}\n", ok ? "ok" : "degraded",
                                                    interfaces_text(kernel.attached_interfaces().size()),
                                                    out.url().str(), collector_state(out.url().kind, ok))};
        });
        spdlog::info("metrics on http://{0}/metrics, health on http://{0}/health", http->where());
    }

    // systemd (Type=notify): ready once the meter is attached and the
    // export connected or queued; the watchdog pings come from this loop,
    // the one that drains the kernel.
    systemd.ready(status());
    systemd.start_watchdog(out.io(), status);
    out.io().run();
    systemd.stop_watchdog();
    out.io().restart();
    stopping = true;

    drain();
    table.flush();
    std::string capture_summary;
    if (capture) {
        capture->set_active(false, {});
        if (pcap_server) {
            // What clients were sent is theirs to read: a second at most.
            auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            while (pcap_server->queued_bytes() && std::chrono::steady_clock::now() < until) {
                out.io().run_one_for(std::chrono::milliseconds(50));
            }
            pcap_server->close();
        }
        CaptureCounters cc = capture->counters();
        capture_summary = fmt::format(" capture_seen={} capture_captured={} capture_lost={} capture_delivered={} "
                                      "capture_client_drops={} packet_reports={}",
                                      cc.seen, cc.captured, cc.lost, cc.delivered,
                                      pcap_server ? pcap_server->dropped() : 0, out.packet_reports());
    }
    std::vector<int> ifaces = kernel.attached_interfaces();
    for (int idx : ifaces) kernel.detach(idx);
    auto c = kernel.counters();
    MeterLoss final_loss = meter_loss();
    bool delivered = out.finish(final_loss);
    std::string drop_summary = "drops=off";
    if (drops) {
        uint64_t other = 0;
        for (const auto& [name, t] : final_loss.unattributed_drops) {
            spdlog::info("drops attributed to no flow: {} {} packets {} octets", name, t.first, t.second);
            other += t.first;
        }
        drop_summary = fmt::format("dropped_in_flows={} dropped_unattributed={}", drops_in_flows, other);
    }
    if (c.map_full_packets) {
        spdlog::error("{} packets ({} bytes) did not fit the kernel flow map; raise [live] map_entries",
                      c.map_full_packets, c.map_full_bytes);
    }
    drop_summary += rtt ? fmt::format(" rtt_samples={} rtt_in_flows={} rtt_lost={}", rtt_samples, rtt_matched,
                                      rtt->lost())
                        : std::string(" rtt=off");
    if (dns_ring) {
        drop_summary += fmt::format(" dns_events={} dns_lost={} dns_malformed={} dns_unenriched={}",
                                    dns_ring->events(), c.dns_lost_packets, enrich.dns()->malformed(),
                                    enrich.dns_unenriched());
    }
    std::fflush(stderr);
    fmt::print(stderr,
               "bpfix-exporter: summary: interfaces={} packets={} octets={} non_ip={} malformed={} map_full={} "
               "sampled_out={} filtered={} flows={} metadata_records={} records={} messages={} not_sent_records={} "
               "{}{}\n",
               ifaces.size(), packets, octets, c.non_ip_packets, c.malformed_packets, c.map_full_packets,
               c.sampled_out_packets, c.filtered_packets, out.flow_records(),
               out.data_records() - out.flow_records() - out.packet_reports(), out.data_records(), out.messages(),
               out.records_not_sent(), drop_summary,
               capture_summary);
    return delivered ? 0 : 1;
}

}  // namespace bpfix
