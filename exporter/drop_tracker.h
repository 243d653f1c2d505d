#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpfix_abi.h"
#include "kernel_loader.h"
#include "kernel_btf.h"

struct drop_tracker;

namespace bpfix {

// Names of the kernel's drop reasons, read from a kernel BTF's
// `enum skb_drop_reason` (the numbering differs between kernel versions;
// the names do not), without the SKB_DROP_REASON_ prefix: "NETFILTER_DROP".
// Reasons of a subsystem (high 16 bits, enum skb_drop_reason_subsys) that
// the core enum does not list become "SUBSYS_<NAME>_<code>"; anything else
// "UNKNOWN_<value>".
class DropReasonNames {
public:
    // From the running kernel (/sys/kernel/btf/vmlinux). Throws
    // bpfix::Error when the kernel has no BTF or no enum skb_drop_reason.
    static DropReasonNames from_kernel();
    // From a raw BTF file (tests write one).
    explicit DropReasonNames(const KernelBtf& types);

    // The name of `reason`; the reference stays valid for the object's life.
    const std::string& name(uint32_t reason) const;
    size_t size() const { return names_.size(); }

private:
    mutable std::unordered_map<uint32_t, std::string> names_;
    std::unordered_map<uint32_t, std::string> subsystems_;
};

// One key's drops in a drain interval, per-CPU values merged.
struct KernelDrop {
    bpfix_flow_key key;
    uint64_t packets = 0, bytes = 0, last_ns = 0;
    uint32_t last_reason = 0;  // enum skb_drop_reason of the latest drop
    uint8_t tcp_state = 0;     // of the latest drop with a TCP socket; 0: none
};

struct DropTotals {
    uint64_t packets = 0, bytes = 0;
};

// Owns the tp_btf/kfree_skb program (bpf/drop_tracker.bpf.c) in its own
// skeleton, so a kernel that cannot run it never stops the flow meter.
// Drops on watched interfaces of this network namespace are keyed like the
// TC meter keys packets and drained each interval; drops that cannot be
// keyed are totalled per reason in the kernel, and drops whose key matched
// no flow are added to those totals by the caller (add_unattributed).
class DropTracker {
public:
    // Entries of each of the two per-key drop maps (per CPU, preallocated).
    static constexpr uint32_t kMapEntries = 16384;

    // Probes, loads and attaches. Throws bpfix::Error saying what the
    // kernel lacks (no BTF, no kfree_skb tracepoint with a reason, load or
    // attach refused). `sampling`: count 1 drop in N per CPU, as the meter
    // selects packets.
    explicit DropTracker(uint32_t sampling = 1);
    ~DropTracker();
    DropTracker(const DropTracker&) = delete;
    DropTracker& operator=(const DropTracker&) = delete;

    // Interfaces whose drops are counted (the ones the TC meter is on).
    void watch(int ifindex);
    void unwatch(int ifindex);

    // Flips the drop maps, waits for programs still writing the old one,
    // and returns (and empties) what it holds, one entry per key.
    std::vector<KernelDrop> drain();

    // Drops whose key matched no flow, counted by the caller.
    void add_unattributed(uint32_t reason, uint64_t packets, uint64_t bytes);
    // Drops attributed to no flow since start, per reason: the kernel's
    // unkeyed totals plus add_unattributed's.
    std::map<uint32_t, DropTotals> unattributed() const;

    const DropReasonNames& names() const { return names_; }
    // Whether the kernel loaded it (no BTF parse here; kernel_loader.h).
    bool loaded_in_kernel() const { return in_kernel_; }

private:
    struct SkelDeleter {
        void operator()(drop_tracker* s) const;
    };
    int set_low_bit(uint32_t ifindex, bool on);  // 0, or -1 with errno

    DropReasonNames names_;
    std::unique_ptr<drop_tracker, SkelDeleter> skel_;
    LinkSet links_;  // the attached program (kernel_loader.h)
    uint32_t active_ = 0;
    int ncpu_ = 0;
    bool in_kernel_ = false;
    std::vector<bpfix_drop_slot> cache_buf_;  // a chunk of drop cache slots x ncpu_, reused every drain
    std::map<uint32_t, DropTotals> unmatched_;
};

}  // namespace bpfix
