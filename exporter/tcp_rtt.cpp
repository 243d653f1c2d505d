#include "tcp_rtt.h"

#include <cstring>

namespace bpfix {

bpfix_flow_key reverse_key(const bpfix_flow_key& k) {
    bpfix_flow_key r = k;
    std::memcpy(r.src_addr, k.dst_addr, sizeof r.src_addr);
    std::memcpy(r.dst_addr, k.src_addr, sizeof r.dst_addr);
    r.src_port = k.dst_port;
    r.dst_port = k.src_port;
    return r;
}

void HandshakeRttEstimator::packet(const bpfix_flow_key& key, uint64_t ts_ns, uint16_t flags) {
    constexpr uint16_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;
    bool syn = flags & kSyn, ack = flags & kAck;
    if (flags & kRst) {
        if (pending_.empty()) return;
        if (auto it = pending_.find(key); it != pending_.end()) forget(it);
        if (auto it = pending_.find(reverse_key(key)); it != pending_.end()) forget(it);
        return;
    }
    if (syn && !ack) {
        // A SYN (or its retransmission: the RTT counts from the last one).
        auto it = pending_.find(key);
        if (it == pending_.end()) {
            if (pending_.size() >= max_pending_) {
                ++overflow_;
                return;
            }
            it = pending_.emplace(key, Pending{}).first;
            it->second.order = by_syn_.insert(by_syn_.end(), key);
            filter_add(key);
        } else {
            by_syn_.splice(by_syn_.end(), by_syn_, it->second.order);
        }
        it->second.syn_ns = ts_ns;
        it->second.synack_ns = 0;
        return;
    }
    if (syn && ack) {
        const bpfix_flow_key client = reverse_key(key);
        if (!maybe_pending(client)) return;
        auto it = pending_.find(client);
        if (it != pending_.end() && !it->second.synack_ns && ts_ns >= it->second.syn_ns) it->second.synack_ns = ts_ns;
        return;
    }
    if (ack) {
        if (!maybe_pending(key)) return;
        auto it = pending_.find(key);
        if (it == pending_.end() || !it->second.synack_ns || ts_ns < it->second.synack_ns) return;
        if (done_.size() + 2 > 2 * max_pending_) {
            ++overflow_;
            forget(it);
            return;
        }
        HandshakeRtt r{ts_ns - it->second.syn_ns, it->second.synack_ns - it->second.syn_ns,
                       ts_ns - it->second.synack_ns};
        done_[key] = r;
        done_[reverse_key(key)] = r;
        forget(it);
        ++measured_;
    }
}

std::optional<HandshakeRtt> HandshakeRttEstimator::take(const bpfix_flow_key& key) {
    if (done_.empty() || key.protocol != BPFIX_PROTO_TCP) return std::nullopt;
    auto it = done_.find(key);
    if (it == done_.end()) return std::nullopt;
    HandshakeRtt r = it->second;
    done_.erase(it);
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

void HandshakeRttEstimator::forget(PendingMap::iterator it) {
    filter_remove(it->first);
    by_syn_.erase(it->second.order);
    pending_.erase(it);
}

void HandshakeRttEstimator::expire(uint64_t older_than_ns) {
    while (!by_syn_.empty()) {
        auto it = pending_.find(by_syn_.front());
        if (it->second.syn_ns >= older_than_ns) break;
        forget(it);
    }
}

}  // namespace bpfix
