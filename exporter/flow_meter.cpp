#include "flow_meter.h"

#include <cstring>

namespace bpfix {

namespace {
constexpr uint64_t kFragmentLifetime = 30'000'000'000ULL;
constexpr size_t kMaxFragmentEntries = 65536;
}  // namespace

size_t FlowMeter::FragKeyHash::operator()(const FragKey& k) const noexcept {
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](const uint8_t* p, size_t n) {
        for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
    };
    mix(k.src, 16);
    mix(k.dst, 16);
    mix(reinterpret_cast<const uint8_t*>(&k.id), 4);
    mix(&k.protocol, 1);
    return static_cast<size_t>(h);
}

FlowMeter::FlowMeter(const FlowTableConfig& cfg, uint32_t ifindex, uint8_t direction, FlowTable::Sink sink)
    : table_(cfg, std::move(sink)), ifindex_(ifindex), direction_(direction) {}

FlowMeter::FragKey FlowMeter::frag_key(const ParsedPacket& p) {
    FragKey k{};
    memcpy(k.src, p.key.src_addr, 16);
    memcpy(k.dst, p.key.dst_addr, 16);
    k.id = p.frag_id;
    // IPv6 fragment ids are per (source, destination); IPv4 adds the protocol.
    k.protocol = p.key.ip_version == BPFIX_IPV4 ? p.key.protocol : 0;
    k.version = p.key.ip_version;
    return k;
}

void FlowMeter::expire_fragments(uint64_t now) {
    while (!frag_order_.empty() &&
           (now - frag_order_.front().first >= kFragmentLifetime || frag_order_.size() > kMaxFragmentEntries)) {
        auto it = frags_.find(frag_order_.front().second);
        // Only drop the entry if it was not refreshed by a later first fragment.
        if (it != frags_.end() && it->second.seen_ns == frag_order_.front().first) {
            frags_.erase(it);
        }
        frag_order_.pop_front();
    }
}

void FlowMeter::packet(const uint8_t* data, size_t caplen, size_t wirelen, int dlt, uint64_t ts) {
    ++counters_.frames;
    if (ts > now_) now_ = ts;
    if (observer_) observer_->clock(now_);
    table_.advance(now_);
    ParsedPacket p;
    ParseStatus status;
    // The reader hinted this frame earlier: its parse is done (parsing is
    // pure; fragment ports are filled in below, now).
    if (hinted_count_ && hinted_[hinted_head_].data == data && hinted_[hinted_head_].caplen == caplen) {
        const Hinted& h = hinted_[hinted_head_];
        status = h.status;
        p = h.parsed;
        hinted_head_ = (hinted_head_ + 1) % kHinted;
        --hinted_count_;
    } else {
        hinted_count_ = 0;  // out of step with the hints: forget them
        status = parse_packet(data, caplen, wirelen, dlt, p);
    }
    switch (status) {
        case ParseStatus::non_ip:
            ++counters_.non_ip;
            return;
        case ParseStatus::malformed:
            ++counters_.malformed;
            counters_.malformed_octets += wirelen;
            return;
        case ParseStatus::ok:
            break;
    }
    ++counters_.ip_packets;
    counters_.ip_octets += p.ip_octets;
    p.key.ifindex = ifindex_;
    p.key.direction = direction_;
    if (p.fragment) {
        expire_fragments(now_);
        FragKey fk = frag_key(p);
        if (p.first_fragment) {
            frags_[fk] = FragPorts{p.key.src_port, p.key.dst_port, p.key.icmp_type_code, now_};
            frag_order_.emplace_back(now_, fk);
        } else if (auto it = frags_.find(fk); it != frags_.end()) {
            p.key.src_port = it->second.src_port;
            p.key.dst_port = it->second.dst_port;
            p.key.icmp_type_code = it->second.icmp_type_code;
        }
    }
    const uint32_t entry = table_.add(p.key, ts, p.ip_octets, p.tcp_flags, p.tos);
    if (observer_) observer_->packet(p, ts, entry != FlowTable::kNoEntry ? &table_.ext(entry) : nullptr);
}

void FlowMeter::hint(const uint8_t* data, size_t caplen, size_t wirelen, int dlt) {
    if (hinted_count_ == kHinted) return;  // more hints than packets: the reader is ahead of itself
    Hinted& h = hinted_[(hinted_head_ + hinted_count_) % kHinted];
    ++hinted_count_;
    h.data = data;
    h.caplen = caplen;
    h.parsed = ParsedPacket{};
    h.status = parse_packet(data, caplen, wirelen, dlt, h.parsed);
    if (h.status != ParseStatus::ok) return;
    bpfix_flow_key key = h.parsed.key;
    key.ifindex = ifindex_;
    key.direction = direction_;
    table_.prefetch(key);
}

void FlowMeter::finish() { table_.flush(); }

}  // namespace bpfix
