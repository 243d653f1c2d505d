#include "flow_table.h"

#include <cstring>

namespace bpfix {

size_t FlowKeyHash::operator()(const bpfix_flow_key& k) const noexcept {
    // FNV-1a over the key bytes, 8 at a time (the key has no padding holes
    // with garbage: it is always value-initialised).
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i + 8 <= sizeof k; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 1099511628211ULL;
        h ^= h >> 29;
    }
    uint32_t tail;
    memcpy(&tail, p + sizeof k - 4, 4);
    h = (h ^ tail) * 1099511628211ULL;
    return static_cast<size_t>(h ^ (h >> 32));
}

bool FlowKeyEqual::operator()(const bpfix_flow_key& a, const bpfix_flow_key& b) const noexcept {
    return memcmp(&a, &b, sizeof a) == 0;
}

FlowRecord make_flow_record(const bpfix_flow_key& key) {
    FlowRecord r{};
    r.ipVersion = key.ip_version;
    if (key.ip_version == BPFIX_IPV4) {
        r.sourceIPv4Address = static_cast<uint32_t>(key.src_addr[0]) << 24 |
                              static_cast<uint32_t>(key.src_addr[1]) << 16 |
                              static_cast<uint32_t>(key.src_addr[2]) << 8 | key.src_addr[3];
        r.destinationIPv4Address = static_cast<uint32_t>(key.dst_addr[0]) << 24 |
                                   static_cast<uint32_t>(key.dst_addr[1]) << 16 |
                                   static_cast<uint32_t>(key.dst_addr[2]) << 8 | key.dst_addr[3];
        r.icmpTypeCodeIPv4 = key.icmp_type_code;
    } else {
        memcpy(r.sourceIPv6Address, key.src_addr, 16);
        memcpy(r.destinationIPv6Address, key.dst_addr, 16);
        r.icmpTypeCodeIPv6 = key.icmp_type_code;
    }
    r.sourceTransportPort = key.src_port;
    r.destinationTransportPort = key.dst_port;
    r.protocolIdentifier = key.protocol;
    r.vlanId = key.vlan_id;
    r.dot1qCustomerVlanId = key.inner_vlan_id;
    r.flowDirection = key.direction;
    if (key.direction == BPFIX_DIR_EGRESS) {
        r.egressInterface = key.ifindex;
    } else {
        r.ingressInterface = key.ifindex;
    }
    return r;
}

FlowTable::FlowTable(const FlowTableConfig& cfg, Sink sink) : cfg_(cfg), sink_(std::move(sink)) {
    if (cfg_.max_flows == 0) cfg_.max_flows = 1;
    slots_.assign(1 << 12, 0);
    mask_ = slots_.size() - 1;
}

size_t FlowTable::find_slot(const bpfix_flow_key& key, uint64_t hash) const {
    const uint64_t tag = hash >> 32;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
        uint64_t s = slots_[i];
        if (s == 0) return i;
        if ((s >> 32) == tag && FlowKeyEqual{}(entries_[(s & 0xffffffffu) - 1].key, key)) return i;
    }
}

void FlowTable::index_insert(uint32_t idx) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const Entry& e = entries_[idx];
    size_t i = find_slot(e.key, e.hash);
    slots_[i] = (e.hash >> 32) << 32 | (static_cast<uint64_t>(idx) + 1);
    ++size_;
}

void FlowTable::index_erase(uint32_t idx) {
    const Entry& e = entries_[idx];
    size_t i = find_slot(e.key, e.hash);
    // Backward shift: pull later members of the probe run into the hole so
    // lookups never stop early.
    for (size_t j = (i + 1) & mask_; slots_[j] != 0; j = (j + 1) & mask_) {
        size_t home = entries_[(slots_[j] & 0xffffffffu) - 1].hash & mask_;
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = 0;
    --size_;
}

void FlowTable::grow() {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(old.size() * 2, 0);
    mask_ = slots_.size() - 1;
    for (uint64_t s : old) {
        if (s == 0) continue;
        const Entry& e = entries_[(s & 0xffffffffu) - 1];
        size_t i = e.hash & mask_;
        while (slots_[i] != 0) i = (i + 1) & mask_;
        slots_[i] = s;
    }
}

void FlowTable::push_back(List& list, Link Entry::*link, uint32_t idx) {
    Link& l = entries_[idx].*link;
    l.prev = list.tail;
    l.next = kNil;
    if (list.tail != kNil) {
        (entries_[list.tail].*link).next = idx;
    } else {
        list.head = idx;
    }
    list.tail = idx;
}

void FlowTable::unlink(List& list, Link Entry::*link, uint32_t idx) {
    Link& l = entries_[idx].*link;
    if (l.prev != kNil) (entries_[l.prev].*link).next = l.next;
    else list.head = l.next;
    if (l.next != kNil) (entries_[l.next].*link).prev = l.prev;
    else list.tail = l.prev;
    l.prev = l.next = kNil;
}

void FlowTable::end(uint32_t idx, FlowEndReason reason) {
    Entry& e = entries_[idx];
    FlowRecord r = make_flow_record(e.key);
    r.flowStartMilliseconds = e.start_ns / 1'000'000;
    r.flowEndMilliseconds = e.last_ns / 1'000'000;
    r.packetDeltaCount = e.packets;
    r.octetDeltaCount = e.octets;
    r.tcpControlBits = e.flags;
    r.ipClassOfService = e.tos;
    r.droppedPacketDeltaCount = e.dropped_packets;
    r.droppedOctetDeltaCount = e.dropped_octets;
    r.dropReasonCode = e.drop_reason;
    r.bpfixDropTcpState = e.drop_tcp_state;
    // The timer that fired is the reason; only the end of input reports a
    // flow that saw FIN as ended by detection rather than forced.
    r.flowEndReason = static_cast<uint8_t>(e.fin && reason == FlowEndReason::forced_end ? FlowEndReason::end_detected
                                                                                       : reason);
    unlink(lru_, &Entry::lru, idx);
    unlink(age_, &Entry::age, idx);
    if (e.fin) unlink(linger_, &Entry::linger, idx);
    index_erase(idx);
    free_.push_back(idx);
    ++records_;
    if (enrich_) enrich_(e.key, r);
    sink_(r);
}

void FlowTable::advance(uint64_t now) {
    while (lru_.head != kNil && now - entries_[lru_.head].last_ns >= cfg_.idle_timeout_ns &&
           now >= entries_[lru_.head].last_ns) {
        end(lru_.head, FlowEndReason::idle_timeout);
    }
    while (age_.head != kNil && now >= entries_[age_.head].start_ns &&
           now - entries_[age_.head].start_ns >= cfg_.active_timeout_ns) {
        end(age_.head, FlowEndReason::active_timeout);
    }
    while (linger_.head != kNil && now >= entries_[linger_.head].fin_ns &&
           now - entries_[linger_.head].fin_ns >= cfg_.tcp_end_linger_ns) {
        end(linger_.head, FlowEndReason::end_detected);
    }
}

void FlowTable::add_delta(const bpfix_flow_key& key, uint64_t first, uint64_t ts, uint64_t packets, uint64_t octets,
                          uint16_t tcp_flags, uint8_t tos) {
    const uint64_t hash = FlowKeyHash{}(key);
    uint64_t slot = slots_[find_slot(key, hash)];
    uint32_t idx = slot ? static_cast<uint32_t>((slot & 0xffffffffu) - 1) : kNil;
    if (idx != kNil) {
        Entry& e = entries_[idx];
        // A new connection on the same 5-tuple after FIN: a new record.
        if (e.fin && key.protocol == BPFIX_PROTO_TCP && (tcp_flags & BPFIX_TCP_SYN) && !(tcp_flags & BPFIX_TCP_ACK)) {
            end(idx, FlowEndReason::end_detected);
            idx = kNil;
        }
    }
    if (idx == kNil) {
        if (size_ >= cfg_.max_flows) {
            ++evicted_;
            end(lru_.head, FlowEndReason::lack_of_resources);
        }
        if (!free_.empty()) {
            idx = free_.back();
            free_.pop_back();
        } else {
            idx = static_cast<uint32_t>(entries_.size());
            entries_.emplace_back();
        }
        Entry& e = entries_[idx];
        e.key = key;
        e.hash = hash;
        e.start_ns = first;
        e.last_ns = ts;
        e.fin_ns = 0;
        e.packets = e.octets = 0;
        e.dropped_packets = e.dropped_octets = 0;
        e.drop_reason = 0;
        e.drop_tcp_state = 0;
        e.flags = 0;
        e.tos = tos;
        e.fin = false;
        e.lru = e.age = e.linger = Link{};
        index_insert(idx);
        push_back(lru_, &Entry::lru, idx);
        push_back(age_, &Entry::age, idx);
    } else {
        unlink(lru_, &Entry::lru, idx);
        push_back(lru_, &Entry::lru, idx);
    }
    Entry& e = entries_[idx];
    e.packets += packets;
    e.octets += octets;
    e.flags |= tcp_flags;
    if (ts > e.last_ns) e.last_ns = ts;
    if (first < e.start_ns) e.start_ns = first;
    if (key.protocol == BPFIX_PROTO_TCP) {
        if (tcp_flags & BPFIX_TCP_RST) {
            end(idx, FlowEndReason::end_detected);
            return;
        }
        if ((tcp_flags & BPFIX_TCP_FIN) && !e.fin) {
            e.fin = true;
            e.fin_ns = ts;
            push_back(linger_, &Entry::linger, idx);
        }
    }
}

bool FlowTable::add_drops(const bpfix_flow_key& key, uint64_t packets, uint64_t octets, uint32_t reason,
                          uint8_t tcp_state) {
    uint64_t slot = slots_[find_slot(key, FlowKeyHash{}(key))];
    if (!slot) return false;
    Entry& e = entries_[(slot & 0xffffffffu) - 1];
    e.dropped_packets += packets;
    e.dropped_octets += octets;
    e.drop_reason = reason;
    if (tcp_state) e.drop_tcp_state = tcp_state;
    return true;
}

void FlowTable::flush() {
    while (age_.head != kNil) {
        end(age_.head, FlowEndReason::forced_end);
    }
}

}  // namespace bpfix
