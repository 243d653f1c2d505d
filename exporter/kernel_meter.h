#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bpfix_abi.h"
#include "filter_rules.h"
#include "tc_attach.h"

struct flow_meter;
struct bpf_map;

namespace bpfix {

// One flow drained from the kernel: per-CPU values already merged.
struct KernelFlow {
    bpfix_flow_key key;
    uint64_t packets, bytes, first_ns, last_ns;  // times: CLOCK_MONOTONIC
    uint16_t tcp_flags;
    uint8_t tos;
};

struct KernelCounters {
    uint64_t non_ip_packets = 0, malformed_packets = 0, malformed_bytes = 0;
    uint64_t map_full_packets = 0, map_full_bytes = 0;
    uint64_t sampled_out_packets = 0;  // not selected by 1-in-N sampling
    uint64_t filtered_packets = 0;     // rejected by the filter rules
    uint64_t dns_lost_packets = 0;     // DNS packets not handed to user space (ring buffer full)
};

// Owns the TC flow meter: loads the skeleton (maps sized before load),
// attaches it at ingress and egress of interfaces, drains the
// double-buffered flow maps, and detaches everything it attached. Our tc
// filters carry a fixed handle and priority so a later run can find and
// remove leftovers of a crashed one, and never touch other tools' filters.
class KernelMeter {
public:
    static constexpr uint32_t kTcHandle = 0xb9f1;
    static constexpr uint32_t kTcPriority = 0xb9f1;

    // `sampling_interval` N > 1 meters one packet in N (per CPU); `filter`
    // chooses which packets are metered at all.
    // `cache_slots` (0, or a power of two) sizes the per-CPU flow cache in
    // front of the flow maps; 0 sends every packet to the maps.
    // `dns_ports` (at most BPFIX_DNS_MAX_PORTS): the payload of packets to
    // or from them goes to the ring buffer dns_ring_fd(); none: DNS off.
    KernelMeter(uint32_t map_entries, uint32_t sampling_interval = 1, const CompiledFilter& filter = {},
                AttachMode mode = AttachMode::kAuto, uint32_t cache_slots = kDefaultCacheSlots,
                const std::vector<uint16_t>& dns_ports = {});
    static constexpr uint32_t kDefaultCacheSlots = 4096;
    ~KernelMeter();
    KernelMeter(const KernelMeter&) = delete;
    KernelMeter& operator=(const KernelMeter&) = delete;

    // Whether the programs are attached as TCX links (known after the
    // first attach).
    bool using_tcx() const { return tc_->using_tcx(); }
    // The ring buffer of bpfix_dns_event (see bpfix_abi.h); read it with
    // libbpf's ring_buffer__new.
    int dns_ring_fd() const;
    // Attaches to both directions of `ifindex`. Throws bpfix::Error naming
    // the interface when the kernel refuses.
    void attach(int ifindex, const std::string& name);
    // Detaches from `ifindex` (an interface that vanished needs nothing).
    void detach(int ifindex) { tc_->detach(ifindex); }
    bool attached(int ifindex) const { return tc_->attached(ifindex); }
    // Replaces the filter rules while the programs run (a reload): each
    // packet is filtered by the old rules or the new ones, never a mix.
    void set_filter(const CompiledFilter& filter);
    std::vector<int> attached_interfaces() const;

    // Flips the flow caches and maps, waits for programs still using the
    // old ones, and hands every flow in them to `sink` (the values of every
    // CPU and of cache and map merged, one call per key), emptying them.
    // Returns flows drained.
    size_t drain(const std::function<void(const KernelFlow&)>& sink);
    KernelCounters counters() const;

private:
    struct SkelDeleter {
        void operator()(flow_meter* s) const;
    };
    AttachMode mode_;
    std::unique_ptr<flow_meter, SkelDeleter> skel_;
    std::unique_ptr<TcAttacher> tc_;  // declared after skel_: detaches before the programs go
    uint32_t active_ = 0;
    int ncpu_ = 0;
    uint32_t cache_slots_ = 0;
    std::vector<bpfix_flow_slot> cache_buf_;  // cache_slots_ x ncpu_ values, reused every drain
};

}  // namespace bpfix
