#include "drop_tracker.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/btf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "drop_tracker.skel.h"
#include "error.h"
#include "percpu_drain.h"
#include "flow_table.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

std::string strip(const char* name, const char* prefix) {
    size_t n = std::strlen(prefix);
    return std::strncmp(name, prefix, n) == 0 ? std::string(name + n) : std::string(name);
}

}  // namespace

DropReasonNames DropReasonNames::from_kernel() { return DropReasonNames(KernelBtf()); }

DropReasonNames::DropReasonNames(const KernelBtf& types) {
    auto reasons = types.enumerators("skb_drop_reason");
    if (!reasons) {
        throw Error("the kernel's BTF has no enum skb_drop_reason (kernels before 5.17 give no drop reasons)");
    }
    for (const auto& e : *reasons) {
        std::string s = strip(e.name.c_str(), "SKB_DROP_REASON_");
        // Markers, not reasons.
        if (s == "MAX" || s == "SUBSYS_MASK") continue;
        names_.emplace(static_cast<uint32_t>(e.value), s);
    }
    if (auto subsystems = types.enumerators("skb_drop_reason_subsys")) {
        for (const auto& e : *subsystems) {
            subsystems_.emplace(static_cast<uint32_t>(e.value), strip(e.name.c_str(), "SKB_DROP_REASON_SUBSYS_"));
        }
    }
}

const std::string& DropReasonNames::name(uint32_t reason) const {
    auto it = names_.find(reason);
    if (it != names_.end()) return it->second;
    std::string n;
    auto sub = subsystems_.find(reason >> 16);
    if ((reason >> 16) != 0 && sub != subsystems_.end()) {
        n = fmt::format("SUBSYS_{}_{}", sub->second, reason & 0xffff);
    } else {
        n = fmt::format("UNKNOWN_{}", reason);
    }
    return names_.emplace(reason, n).first->second;
}

void DropTracker::SkelDeleter::operator()(drop_tracker* s) const { drop_tracker__destroy(s); }

namespace {

// The kfree_skb tracepoint with a drop reason: (skb, location, reason[, rx_sk])
// after the tracepoint's own context argument.
void probe_kfree_skb() {
    KernelBtf types;
    auto tp = types.find("btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
    if (!tp) throw Error("the kernel has no kfree_skb tracepoint in its BTF");
    auto t = types.type(tp->type);  // pointer
    if (t && t->kind == BTF_KIND_PTR) t = types.type(t->type);
    if (!t || t->kind != BTF_KIND_FUNC_PROTO || t->vlen < 4) {
        throw Error("the kernel's kfree_skb tracepoint carries no drop reason (kernels before 5.17)");
    }
}

// Whether the kernel's bpf_rdonly_cast() casts to void (6.17+): then the
// tracer reads packet bytes with plain loads (drop_kfree_skb_direct), else
// through bpf_probe_read_kernel (drop_kfree_skb).
bool plain_loads() {
    KernelBtf types;
    auto features = types.enumerators("bpf_features");
    if (!features) return false;
    for (const auto& f : *features) {
        if (f.name == "BPF_FEAT_RDONLY_CAST_TO_VOID") return true;
    }
    return false;
}

}  // namespace

DropTracker::DropTracker(uint32_t sampling) : names_(DropReasonNames::from_kernel()) {
    probe_kfree_skb();
    ncpu_ = libbpf_num_possible_cpus();
    if (ncpu_ <= 0) throw Error("cannot count the possible CPUs (libbpf_num_possible_cpus)");
    struct stat ns {};
    if (stat("/proc/self/ns/net", &ns) != 0) {
        throw Error("cannot read this process's network namespace (/proc/self/ns/net): " + errstr(errno));
    }
    const bool direct = plain_loads();
    spdlog::debug("drop tracer: packet headers read {}", direct ? "with plain loads (bpf_rdonly_cast to void)"
                                                                : "through bpf_probe_read_kernel");
    auto open = [&] {
        skel_.reset(drop_tracker__open());
        if (!skel_) throw Error("cannot open the eBPF drop tracker: " + errstr(errno));
        bpf_program__set_autoload(skel_->progs.drop_kfree_skb, !direct);
        bpf_program__set_autoload(skel_->progs.drop_kfree_skb_direct, direct);
        for (bpf_map* m : {skel_->maps.drops_0, skel_->maps.drops_1}) bpf_map__set_max_entries(m, kMapEntries);
        skel_->rodata->netns_inum = static_cast<uint32_t>(ns.st_ino);
        skel_->rodata->sampling_interval = sampling;
        return skel_->skeleton;
    };
    LoadOutcome r = load_and_attach(open(), open, links_);
    if (r.status == LoadOutcome::kLoadRefused) {
        throw Error(fmt::format("the kernel refused the tp_btf/kfree_skb program: {} (it needs CAP_BPF and "
                                "CAP_PERFMON and BTF-enabled tracing)",
                                errstr(r.err)));
    }
    if (r.status == LoadOutcome::kAttachRefused) {
        throw Error("cannot attach the tp_btf/kfree_skb program: " + errstr(r.err));
    }
    in_kernel_ = r.in_kernel;
}

DropTracker::~DropTracker() = default;

void DropTracker::watch(int ifindex) {
    uint32_t key = static_cast<uint32_t>(ifindex);
    int err = key < BPFIX_WATCHED_ARRAY ? set_low_bit(key, true) : [&] {
        uint8_t one = 1;
        return bpf_map_update_elem(bpf_map__fd(skel_->maps.watched), &key, &one, BPF_ANY);
    }();
    if (err != 0) throw Error(fmt::format("ifindex {}: cannot watch its drops: {}", ifindex, errstr(errno)));
}

void DropTracker::unwatch(int ifindex) {
    uint32_t key = static_cast<uint32_t>(ifindex);
    if (key < BPFIX_WATCHED_ARRAY) {
        set_low_bit(key, false);
    } else {
        bpf_map_delete_elem(bpf_map__fd(skel_->maps.watched), &key);
    }
}

// One bit of the watched_low bitmap (only this thread writes it).
int DropTracker::set_low_bit(uint32_t ifindex, bool on) {
    int fd = bpf_map__fd(skel_->maps.watched_low);
    uint32_t word = ifindex / 64;
    uint64_t bits = 0;
    if (bpf_map_lookup_elem(fd, &word, &bits) != 0) return -1;
    uint64_t bit = uint64_t{1} << (ifindex % 64);
    bits = on ? bits | bit : bits & ~bit;
    return bpf_map_update_elem(fd, &word, &bits, BPF_ANY);
}

std::vector<KernelDrop> DropTracker::drain() {
    uint32_t next = active_ ^ 1;
    __atomic_store_n(&skel_->bss->active_drops, next, __ATOMIC_SEQ_CST);
    bpf_map* old = active_ ? skel_->maps.drops_1 : skel_->maps.drops_0;
    bpf_map* old_cache = active_ ? skel_->maps.drop_cache_1 : skel_->maps.drop_cache_0;
    active_ = next;
    // Tracing programs run to completion without sleeping: one that read
    // the old index is done long before this.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));

    // One record per key: the per-CPU values of the map and the cache slots
    // of every CPU holding that key, merged.
    std::unordered_map<bpfix_flow_key, KernelDrop, FlowKeyHash, FlowKeyEqual> merged;
    auto add = [&merged](const bpfix_flow_key& k, const bpfix_drop_stats& v) {
        if (v.packets == 0) return;
        KernelDrop& d = merged[k];
        d.key = k;
        d.packets += v.packets;
        d.bytes += v.bytes;
        if (v.last_ns >= d.last_ns) {
            d.last_ns = v.last_ns;
            d.last_reason = v.last_reason;
            if (v.tcp_state) d.tcp_state = v.tcp_state;
        } else if (!d.tcp_state) {
            d.tcp_state = v.tcp_state;
        }
    };
    drain_percpu_slots(bpf_map__fd(old_cache), BPFIX_DROP_CACHE_SLOTS, ncpu_, "drop cache", cache_buf_,
                       [&add](const bpfix_drop_slot& s) { add(s.key, s.stats); });
    drain_percpu_hash<bpfix_flow_key, bpfix_drop_stats>(bpf_map__fd(old), ncpu_, "drop map", add);
    std::vector<KernelDrop> out;
    out.reserve(merged.size());
    for (auto& [k, d] : merged) out.push_back(d);
    return out;
}

void DropTracker::add_unattributed(uint32_t reason, uint64_t packets, uint64_t bytes) {
    DropTotals& t = unmatched_[reason];
    t.packets += packets;
    t.bytes += bytes;
}

std::map<uint32_t, DropTotals> DropTracker::unattributed() const {
    std::map<uint32_t, DropTotals> out = unmatched_;
    int fd = bpf_map__fd(skel_->maps.unkeyed);
    std::vector<bpfix_counter> per_cpu(static_cast<size_t>(ncpu_));
    uint32_t key = 0, next = 0;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0) continue;
        DropTotals& t = out[key];
        for (const auto& c : per_cpu) {
            t.packets += c.packets;
            t.bytes += c.bytes;
        }
    }
    return out;
}

}  // namespace bpfix
