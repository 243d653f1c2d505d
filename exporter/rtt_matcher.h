// Attributes the kernel's per-socket RTT samples to flow records. A socket
// knows no interface: its 5-tuple's samples go to the records of both
// directions of that 5-tuple on every metered interface (ifindex,
// direction and VLANs ignored), accumulated per flow key until that key's
// record ends (min/max/last over the record's interval, to the drain).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpfix_abi.h"
#include "flow_table.h"

namespace bpfix {

// One socket's RTT samples in a drain interval, per-CPU values merged.
struct RttSample {
    bpfix_rtt_key key;  // local address/port as src, remote as dst
    uint32_t min_us = 0, max_us = 0, last_us = 0, samples = 0;
    uint64_t last_ns = 0;  // kernel monotonic time of the latest sample
};

struct RttAggregate {
    uint32_t min_us = 0, max_us = 0, last_us = 0, samples = 0;
    uint64_t last_ns = 0;
};

class RttMatcher {
public:
    // Flow keys not drained for `forget_after_ns` are forgotten (with
    // what they accumulated).
    explicit RttMatcher(uint64_t forget_after_ns) : forget_after_ns_(forget_after_ns) {}

    // A TCP flow key the meter drained at `now_ns`: its records receive
    // the RTT of its 5-tuple from now on.
    void observe(const bpfix_flow_key& key, uint64_t now_ns);
    // Adds a socket's samples to every observed flow key of its 5-tuple,
    // both directions. False when no such flow key is known.
    bool add(const RttSample& s);
    // What accumulated for this flow key since its last take; forgets it.
    std::optional<RttAggregate> take(const bpfix_flow_key& key);
    // Forgets flow keys not observed within forget_after_ns of `now_ns`
    // (sweeps at most once per forget_after_ns / 4).
    void expire(uint64_t now_ns);

    size_t flow_keys() const { return seen_.size(); }

private:
    struct Tuple {
        uint8_t a[16], b[16];
        uint16_t port_a, port_b;
        uint8_t ip_version;
        uint8_t pad[3];
    };
    struct TupleHash {
        size_t operator()(const Tuple& t) const noexcept;
    };
    struct TupleEqual {
        bool operator()(const Tuple& x, const Tuple& y) const noexcept;
    };
    static Tuple tuple_of(const bpfix_flow_key& k);

    uint64_t forget_after_ns_;
    uint64_t last_sweep_ns_ = 0;
    std::unordered_map<Tuple, std::vector<bpfix_flow_key>, TupleHash, TupleEqual> keys_;
    std::unordered_map<bpfix_flow_key, uint64_t, FlowKeyHash, FlowKeyEqual> seen_;
    std::unordered_map<bpfix_flow_key, RttAggregate, FlowKeyHash, FlowKeyEqual> acc_;
};

}  // namespace bpfix
