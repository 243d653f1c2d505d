// TCP round-trip time from the three-way handshake, as seen at the capture
// point (pcap mode, where no kernel socket is there to ask): the SYN at t1,
// the SYN-ACK at t2, the client's first ACK at t3. t2 - t1 is the time from
// here to the server and back, t3 - t2 the time from here to the client and
// back; t3 - t1 is the whole path's round trip, the figure `ss -ti` shows
// at either end (within the hosts' processing times). Both directions' flow
// records carry it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "bpfix_abi.h"
#include "flow_table.h"

namespace bpfix {

struct HandshakeRtt {
    uint64_t rtt_ns = 0;          // t3 - t1
    uint64_t server_side_ns = 0;  // t2 - t1
    uint64_t client_side_ns = 0;  // t3 - t2
};

class HandshakeRttEstimator {
public:
    // At most `max_pending` handshakes followed at once (beyond: not
    // measured, counted).
    explicit HandshakeRttEstimator(size_t max_pending = 65536) : max_pending_(max_pending) {}

    // Every TCP packet: its flow key (direction as sent), time and flags
    // (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    void packet(const bpfix_flow_key& key, uint64_t ts_ns, uint16_t tcp_flags);
    // The RTT measured for this flow (either direction) since its last
    // record; forgets it for this direction.
    std::optional<HandshakeRtt> take(const bpfix_flow_key& key);
    // Forgets handshakes that started before `older_than_ns` and never
    // completed. Costs what it forgets, not what is pending: called for
    // every packet.
    void expire(uint64_t older_than_ns);

    uint64_t measured() const { return measured_; }
    uint64_t overflow() const { return overflow_; }
    size_t pending() const { return pending_.size(); }

private:
    struct Pending {
        uint64_t syn_ns = 0, synack_ns = 0;
    };
    void forget(uint32_t i);
    // A counting filter over the pending keys' hashes: most TCP packets
    // are ACKs of flows with no handshake pending, and a zero here answers
    // for them without a lookup in pending_.
    static constexpr size_t kFilterSize = 1 << 16;
    static size_t filter_slot(size_t hash) { return (hash >> 20) & (kFilterSize - 1); }
    void filter_add(const bpfix_flow_key& key);
    void filter_remove(const bpfix_flow_key& key);
    bool maybe_pending(const bpfix_flow_key& key) const { return filter_[filter_slot(FlowKeyHash{}(key))] != 0; }

    size_t max_pending_;
    // Keyed by the client-to-server flow key (the SYN's), in the order of
    // their last SYN, oldest first (capture time only moves forward, so
    // appending keeps the order).
    KeyedNodes<bpfix_flow_key, Pending, FlowKeyHash, FlowKeyEqual> pending_;
    KeyedNodes<bpfix_flow_key, HandshakeRtt, FlowKeyHash, FlowKeyEqual> done_;  // both directions' keys
    std::vector<uint16_t> filter_ = std::vector<uint16_t>(kFilterSize);  // saturates at UINT16_MAX (never removed then)
    uint64_t measured_ = 0, overflow_ = 0;
};

}  // namespace bpfix
