#include "rtt_matcher.h"

#include <algorithm>
#include <cstring>

namespace bpfix {

size_t RttMatcher::TupleHash::operator()(const Tuple& t) const noexcept {
    const auto* p = reinterpret_cast<const uint8_t*>(&t);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof t; ++i) h = (h ^ p[i]) * 1099511628211ULL;
    return static_cast<size_t>(h);
}

bool RttMatcher::TupleEqual::operator()(const Tuple& x, const Tuple& y) const noexcept {
    return std::memcmp(&x, &y, sizeof x) == 0;
}

RttMatcher::Tuple RttMatcher::tuple_of(const bpfix_flow_key& k) {
    Tuple t{};
    std::memcpy(t.a, k.src_addr, sizeof t.a);
    std::memcpy(t.b, k.dst_addr, sizeof t.b);
    t.port_a = k.src_port;
    t.port_b = k.dst_port;
    t.ip_version = k.ip_version;
    return t;
}

void RttMatcher::observe(const bpfix_flow_key& key, uint64_t now_ns) {
    if (key.protocol != BPFIX_PROTO_TCP) return;
    auto [it, fresh] = seen_.try_emplace(key, now_ns);
    if (!fresh) {
        it->second = now_ns;
        return;
    }
    keys_[tuple_of(key)].push_back(key);
}

bool RttMatcher::add(const RttSample& s) {
    if (s.samples == 0) return false;
    Tuple fwd{};
    std::memcpy(fwd.a, s.key.src_addr, sizeof fwd.a);
    std::memcpy(fwd.b, s.key.dst_addr, sizeof fwd.b);
    fwd.port_a = s.key.src_port;
    fwd.port_b = s.key.dst_port;
    fwd.ip_version = s.key.ip_version;
    Tuple rev = fwd;
    std::memcpy(rev.a, fwd.b, sizeof rev.a);
    std::memcpy(rev.b, fwd.a, sizeof rev.b);
    std::swap(rev.port_a, rev.port_b);
    bool any = false;
    for (const Tuple& t : {fwd, rev}) {
        auto it = keys_.find(t);
        if (it == keys_.end()) continue;
        for (const bpfix_flow_key& k : it->second) {
            any = true;
            auto [a, fresh] = acc_.try_emplace(k);
            RttAggregate& r = a->second;
            if (fresh || r.samples == 0) {
                r.min_us = s.min_us;
                r.max_us = s.max_us;
            } else {
                r.min_us = std::min(r.min_us, s.min_us);
                r.max_us = std::max(r.max_us, s.max_us);
            }
            if (s.last_ns >= r.last_ns) {
                r.last_ns = s.last_ns;
                r.last_us = s.last_us;
            }
            r.samples += s.samples;
        }
    }
    return any;
}

std::optional<RttAggregate> RttMatcher::take(const bpfix_flow_key& key) {
    auto it = acc_.find(key);
    if (it == acc_.end()) return std::nullopt;
    RttAggregate r = it->second;
    acc_.erase(it);
    return r;
}

void RttMatcher::expire(uint64_t now_ns) {
    if (now_ns - last_sweep_ns_ < forget_after_ns_ / 4) return;
    last_sweep_ns_ = now_ns;
    for (auto it = seen_.begin(); it != seen_.end();) {
        if (now_ns - it->second <= forget_after_ns_) {
            ++it;
            continue;
        }
        const bpfix_flow_key& k = it->first;
        auto t = keys_.find(tuple_of(k));
        if (t != keys_.end()) {
            auto& v = t->second;
            v.erase(std::remove_if(v.begin(), v.end(), [&](const bpfix_flow_key& x) { return FlowKeyEqual{}(x, k); }),
                    v.end());
            if (v.empty()) keys_.erase(t);
        }
        acc_.erase(k);
        it = seen_.erase(it);
    }
}

}  // namespace bpfix
