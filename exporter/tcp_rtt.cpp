#include "tcp_rtt.h"

#include <cstring>

namespace bpfix {

void HandshakeRttEstimator::packet(const bpfix_flow_key& key, uint64_t ts_ns, uint16_t flags) {
    constexpr uint16_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;
    bool syn = flags & kSyn, ack = flags & kAck;
    if (flags & kRst) {
        if (pending_.size() == 0) return;
        if (uint32_t i = pending_.find(key); i != pending_.kNone) forget(i);
        if (uint32_t i = pending_.find(reverse_key(key)); i != pending_.kNone) forget(i);
        return;
    }
    if (syn && !ack) {
        // A SYN (or its retransmission: the RTT counts from the last one).
        uint32_t i = pending_.find(key);
        if (i == pending_.kNone) {
            if (pending_.size() >= max_pending_) {
                ++overflow_;
                return;
            }
            i = pending_.insert(key, true);
            filter_add(key);
        } else {
            pending_.move_to_back(i);
        }
        pending_.value(i) = Pending{ts_ns, 0};
        return;
    }
    if (syn && ack) {
        const bpfix_flow_key client = reverse_key(key);
        if (!maybe_pending(client)) return;
        uint32_t i = pending_.find(client);
        if (i == pending_.kNone) return;
        Pending& p = pending_.value(i);
        if (!p.synack_ns && ts_ns >= p.syn_ns) p.synack_ns = ts_ns;
        return;
    }
    if (ack) {
        if (!maybe_pending(key)) return;
        uint32_t i = pending_.find(key);
        if (i == pending_.kNone) return;
        const Pending p = pending_.value(i);
        if (!p.synack_ns || ts_ns < p.synack_ns) return;
        forget(i);
        if (done_.size() + 2 > 2 * max_pending_) {
            ++overflow_;
            return;
        }
        const HandshakeRtt r{ts_ns - p.syn_ns, p.synack_ns - p.syn_ns, ts_ns - p.synack_ns};
        for (const bpfix_flow_key& k : {key, reverse_key(key)}) {
            uint32_t d = done_.find(k);
            if (d == done_.kNone) d = done_.insert(k);
            done_.value(d) = r;
        }
        ++measured_;
    }
}

std::optional<HandshakeRtt> HandshakeRttEstimator::take(const bpfix_flow_key& key) {
    if (done_.size() == 0 || key.protocol != BPFIX_PROTO_TCP) return std::nullopt;
    const uint32_t i = done_.find(key);
    if (i == done_.kNone) return std::nullopt;
    HandshakeRtt r = done_.value(i);
    done_.erase(i);
    return r;
}

void HandshakeRttEstimator::filter_add(const bpfix_flow_key& key) {
    uint16_t& c = filter_[filter_slot(FlowKeyHash{}(key))];
    if (c != UINT16_MAX) ++c;
}

void HandshakeRttEstimator::filter_remove(const bpfix_flow_key& key) {
    uint16_t& c = filter_[filter_slot(FlowKeyHash{}(key))];
    if (c != UINT16_MAX) --c;  // a saturated counter stays: lookups, never a miss
}

void HandshakeRttEstimator::forget(uint32_t i) {
    filter_remove(pending_.key(i));
    pending_.erase(i);
}

void HandshakeRttEstimator::expire(uint64_t older_than_ns) {
    for (uint32_t i = pending_.front(); i != pending_.kNone; i = pending_.front()) {
        if (pending_.value(i).syn_ns >= older_than_ns) break;
        forget(i);
    }
}

}  // namespace bpfix
