#include "kernel_meter.h"

#include "percpu_drain.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <unistd.h>
#include <utility>

#include "error.h"
#include "flow_meter.skel.h"
#include "flow_table.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

void KernelMeter::SkelDeleter::operator()(flow_meter* s) const { flow_meter__destroy(s); }

KernelMeter::KernelMeter(uint32_t map_entries, uint32_t sampling_interval, const CompiledFilter& filter,
                         AttachMode mode, uint32_t cache_slots, const std::vector<uint16_t>& dns_ports)
    : mode_(mode), cache_slots_(cache_slots) {
    if (dns_ports.size() > BPFIX_DNS_MAX_PORTS) {
        throw Error(fmt::format("{} DNS ports given; the eBPF programs watch at most {}", dns_ports.size(),
                                BPFIX_DNS_MAX_PORTS));
    }
    if (cache_slots != 0 && (cache_slots & (cache_slots - 1)) != 0) {
        throw Error(fmt::format("flow cache size {} is not a power of two", cache_slots));
    }
    route_libbpf_logs();
    ncpu_ = libbpf_num_possible_cpus();
    if (ncpu_ <= 0) {
        throw Error("cannot count the possible CPUs (libbpf_num_possible_cpus)");
    }
    skel_.reset(flow_meter__open());
    if (!skel_) {
        throw Error("cannot open the eBPF flow meter: " + errstr(errno));
    }
    for (bpf_map* m : {skel_->maps.flows_0, skel_->maps.flows_1}) {
        bpf_map__set_max_entries(m, map_entries);
    }
    for (bpf_map* m : {skel_->maps.cache_0, skel_->maps.cache_1}) {
        bpf_map__set_max_entries(m, cache_slots ? cache_slots : 1);
    }
    skel_->rodata->cache_enabled = cache_slots != 0;
    skel_->rodata->cache_mask = cache_slots ? cache_slots - 1 : 0;
    skel_->rodata->sampling_interval = sampling_interval;
    skel_->rodata->dns_port_count = static_cast<uint32_t>(dns_ports.size());
    for (size_t i = 0; i < dns_ports.size(); ++i) skel_->rodata->dns_ports[i] = dns_ports[i];
    // 256 KiB hold ~440 DNS packets between reads; one page when DNS is off.
    bpf_map__set_max_entries(skel_->maps.dns_events,
                             dns_ports.empty() ? static_cast<uint32_t>(sysconf(_SC_PAGESIZE)) : 1u << 18);
    int err = flow_meter__load(skel_.get());
    if (err) {
        throw Error(fmt::format("cannot load the eBPF flow meter: {}; it needs CAP_BPF, CAP_NET_ADMIN and "
                                "CAP_PERFMON (or root) and a kernel with BTF",
                                errstr(err)));
    }
    set_filter(filter);
    tc_ = std::make_unique<TcAttacher>(
        TcPrograms{"flow meter", bpf_program__fd(skel_->progs.meter_ingress),
                   bpf_program__fd(skel_->progs.meter_egress), "meter_ingress", "meter_egress", kTcHandle,
                   kTcPriority, false},
        mode);
}

int KernelMeter::dns_ring_fd() const { return bpf_map__fd(skel_->maps.dns_events); }

KernelMeter::~KernelMeter() = default;

void KernelMeter::set_filter(const CompiledFilter& filter) {
    install_filter(bpf_map__fd(skel_->maps.filter_rules), skel_->data ? skel_->data->filter_sets : nullptr,
                   skel_->bss ? &skel_->bss->filter_bank : nullptr, filter, "live.filter");
}

std::vector<int> KernelMeter::attached_interfaces() const { return tc_->attached_interfaces(); }

void KernelMeter::attach(int ifindex, const std::string& name) {
    if (attached(ifindex)) return;
    bool first = !tc_->using_tcx() && tc_->attached_interfaces().empty();
    tc_->attach(ifindex, name);
    if (first && mode_ == AttachMode::kAuto) {
        spdlog::info(tc_->using_tcx() ? "attaching with TCX links"
                                      : "this kernel has no TCX; attaching with classic tc (clsact)");
    }
    spdlog::info("metering interface {} (ifindex {})", name, ifindex);
}

size_t KernelMeter::drain(const std::function<void(const KernelFlow&)>& sink) {
    uint32_t next = active_ ^ 1;
    __atomic_store_n(&skel_->bss->active_flows, next, __ATOMIC_SEQ_CST);
    bpf_map* old = active_ ? skel_->maps.flows_1 : skel_->maps.flows_0;
    bpf_map* old_cache = active_ ? skel_->maps.cache_1 : skel_->maps.cache_0;
    active_ = next;
    // TC programs run to completion in softirq context without sleeping: a
    // program that read the old index finishes within microseconds. Wait
    // well past that before reading the map it may still be updating.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));

    // One flow per key: the per-CPU values of the map, and the cache slots
    // of every CPU holding that key, merged.
    std::unordered_map<bpfix_flow_key, KernelFlow, FlowKeyHash, FlowKeyEqual> flows;
    auto add = [&flows](const bpfix_flow_key& key, const bpfix_flow_stats& v) {
        if (v.packets == 0) return;
        auto [it, fresh] = flows.try_emplace(key);
        KernelFlow& f = it->second;
        if (fresh) {
            f.key = key;
            f.first_ns = UINT64_MAX;
        }
        f.packets += v.packets;
        f.bytes += v.bytes;
        f.tcp_flags |= v.tcp_flags;
        if (v.first_ns < f.first_ns) {
            f.first_ns = v.first_ns;
            f.tos = v.tos;
        }
        if (v.last_ns > f.last_ns) f.last_ns = v.last_ns;
    };
    if (cache_slots_) {
        drain_percpu_slots(bpf_map__fd(old_cache), cache_slots_, ncpu_, "flow cache", cache_buf_,
                           [&add](const bpfix_flow_slot& s) { add(s.key, s.stats); });
    }

    int fd = bpf_map__fd(old);
    constexpr uint32_t kBatch = 4096;
    std::vector<bpfix_flow_key> keys(kBatch);
    std::vector<bpfix_flow_stats> values(static_cast<size_t>(kBatch) * static_cast<size_t>(ncpu_));
    void* in_batch = nullptr;
    uint32_t out_batch = 0;
    bool first = true;
    for (;;) {
        uint32_t count = kBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : in_batch, &out_batch, keys.data(),
                                                  values.data(), &count, &opts);
        int saved = errno;
        first = false;
        in_batch = &out_batch;
        for (uint32_t i = 0; i < count; ++i) {
            const bpfix_flow_stats* v = &values[static_cast<size_t>(i) * static_cast<size_t>(ncpu_)];
            for (int c = 0; c < ncpu_; ++c) add(keys[i], v[c]);
        }
        if (err) {
            if (saved == ENOENT) break;  // the map is empty now
            throw Error("cannot drain the eBPF flow map: " + errstr(saved));
        }
    }
    for (const auto& [key, f] : flows) sink(f);
    return flows.size();
}

KernelCounters KernelMeter::counters() const {
    KernelCounters out;
    std::vector<bpfix_counter> per_cpu(static_cast<size_t>(ncpu_));
    int fd = bpf_map__fd(skel_->maps.counters);
    auto sum = [&](uint32_t idx, uint64_t& packets, uint64_t* bytes) {
        if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()) != 0) return;
        for (const auto& c : per_cpu) {
            packets += c.packets;
            if (bytes) *bytes += c.bytes;
        }
    };
    sum(BPFIX_CNT_NON_IP, out.non_ip_packets, nullptr);
    sum(BPFIX_CNT_MALFORMED, out.malformed_packets, &out.malformed_bytes);
    sum(BPFIX_CNT_MAP_FULL, out.map_full_packets, &out.map_full_bytes);
    sum(BPFIX_CNT_SAMPLED_OUT, out.sampled_out_packets, nullptr);
    sum(BPFIX_CNT_FILTERED, out.filtered_packets, nullptr);
    sum(BPFIX_CNT_DNS_LOST, out.dns_lost_packets, nullptr);
    return out;
}

}  // namespace bpfix
