#include "drop_tracker.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
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

struct BtfFree {
    void operator()(btf* b) const { btf__free(b); }
};

// Calls f(name, value) for every enumerator of the enum `name` (32- or
// 64-bit); false when `types` has no such enum.
template <typename F>
bool for_each_enumerator(const btf* types, const char* name, F f) {
    int id = btf__find_by_name_kind(types, name, BTF_KIND_ENUM);
    if (id < 0) id = btf__find_by_name_kind(types, name, BTF_KIND_ENUM64);
    if (id < 0) return false;
    const btf_type* t = btf__type_by_id(types, static_cast<uint32_t>(id));
    const uint16_t n = btf_vlen(t);
    if (btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t);
        for (uint16_t i = 0; i < n; ++i) f(btf__name_by_offset(types, e[i].name_off), static_cast<uint32_t>(e[i].val));
    } else {
        const struct btf_enum64* e = btf_enum64(t);
        for (uint16_t i = 0; i < n; ++i) f(btf__name_by_offset(types, e[i].name_off), static_cast<uint32_t>(e[i].val_lo32));
    }
    return true;
}

std::string strip(const char* name, const char* prefix) {
    size_t n = std::strlen(prefix);
    return std::strncmp(name, prefix, n) == 0 ? std::string(name + n) : std::string(name);
}

}  // namespace

DropReasonNames DropReasonNames::from_kernel() {
    std::unique_ptr<btf, BtfFree> types(btf__load_vmlinux_btf());
    if (!types) {
        throw Error(fmt::format("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): {}; drop reasons need a "
                                "kernel built with CONFIG_DEBUG_INFO_BTF",
                                errstr(errno)));
    }
    return DropReasonNames(types.get());
}

DropReasonNames::DropReasonNames(const btf* types) {
    bool found = for_each_enumerator(types, "skb_drop_reason", [this](const char* name, uint32_t value) {
        std::string s = strip(name, "SKB_DROP_REASON_");
        // Markers, not reasons.
        if (s == "MAX" || s == "SUBSYS_MASK") return;
        names_.emplace(value, s);
    });
    if (!found) {
        throw Error("the kernel's BTF has no enum skb_drop_reason (kernels before 5.17 give no drop reasons)");
    }
    for_each_enumerator(types, "skb_drop_reason_subsys", [this](const char* name, uint32_t value) {
        subsystems_.emplace(value, strip(name, "SKB_DROP_REASON_SUBSYS_"));
    });
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
    std::unique_ptr<btf, BtfFree> types(btf__load_vmlinux_btf());
    if (!types) throw Error("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): " + errstr(errno));
    int id = btf__find_by_name_kind(types.get(), "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
    if (id < 0) throw Error("the kernel has no kfree_skb tracepoint in its BTF");
    const btf_type* t = btf__type_by_id(types.get(), static_cast<uint32_t>(id));
    t = btf__type_by_id(types.get(), t->type);  // pointer
    if (t && btf_is_ptr(t)) t = btf__type_by_id(types.get(), t->type);
    if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 4) {
        throw Error("the kernel's kfree_skb tracepoint carries no drop reason (kernels before 5.17)");
    }
}

}  // namespace

DropTracker::DropTracker() : names_(DropReasonNames::from_kernel()) {
    probe_kfree_skb();
    ncpu_ = libbpf_num_possible_cpus();
    if (ncpu_ <= 0) throw Error("cannot count the possible CPUs (libbpf_num_possible_cpus)");
    struct stat ns {};
    if (stat("/proc/self/ns/net", &ns) != 0) {
        throw Error("cannot read this process's network namespace (/proc/self/ns/net): " + errstr(errno));
    }
    skel_.reset(drop_tracker__open());
    if (!skel_) throw Error("cannot open the eBPF drop tracker: " + errstr(errno));
    for (bpf_map* m : {skel_->maps.drops_0, skel_->maps.drops_1}) bpf_map__set_max_entries(m, kMapEntries);
    skel_->rodata->netns_inum = static_cast<uint32_t>(ns.st_ino);
    if (int err = drop_tracker__load(skel_.get())) {
        throw Error(fmt::format("the kernel refused the tp_btf/kfree_skb program: {} (it needs CAP_BPF and "
                                "CAP_PERFMON and BTF-enabled tracing)",
                                errstr(err)));
    }
    if (int err = drop_tracker__attach(skel_.get())) {
        throw Error("cannot attach the tp_btf/kfree_skb program: " + errstr(err));
    }
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
