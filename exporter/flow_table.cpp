#include "flow_table.h"

#include <cstring>
#include <new>

namespace bpfix {

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

bpfix_flow_key reverse_key(const bpfix_flow_key& k) {
    bpfix_flow_key r = k;
    std::memcpy(r.src_addr, k.dst_addr, sizeof r.src_addr);
    std::memcpy(r.dst_addr, k.src_addr, sizeof r.dst_addr);
    r.src_port = k.dst_port;
    r.dst_port = k.src_port;
    return r;
}

FlowTable::FlowTable(const FlowTableConfig& cfg, Sink sink) : cfg_(cfg), sink_(std::move(sink)) {
    if (cfg_.max_flows == 0) cfg_.max_flows = 1;
}

uint32_t FlowTable::allocate() {
    if (free_ != kNil) {
        uint32_t idx = free_;
        free_ = at(idx).lru.next;
        return idx;
    }
    if (used_ == capacity_) {
        if (capacity_ >= UINT32_MAX / 2) throw std::bad_alloc();
        uint32_t cap = capacity_ ? capacity_ * 2 : 1024;
        entries_.resize(size_t{cap} * sizeof(Entry));
        capacity_ = static_cast<uint32_t>(entries_.bytes() / sizeof(Entry));
        ext_.resize(size_t{capacity_} * sizeof(uint32_t));
    }
    return used_++;
}

void FlowTable::release(uint32_t idx) {
    at(idx).state = 0;
    at(idx).lru.next = free_;
    free_ = idx;
}

void FlowTable::push_back(List& list, Link Entry::*link, uint32_t idx) {
    Link& l = at(idx).*link;
    l.prev = list.tail;
    l.next = kNil;
    if (list.tail != kNil) {
        (at(list.tail).*link).next = idx;
    } else {
        list.head = idx;
    }
    list.tail = idx;
}

void FlowTable::unlink(List& list, Link Entry::*link, uint32_t idx) {
    Link& l = at(idx).*link;
    if (l.prev != kNil) (at(l.prev).*link).next = l.next;
    else list.head = l.next;
    if (l.next != kNil) (at(l.next).*link).prev = l.prev;
    else list.tail = l.prev;
    l.prev = l.next = kNil;
}

FlowRecord FlowTable::record(uint32_t idx, FlowEndReason reason) {
    Entry& e = at(idx);
    FlowRecord r = make_flow_record(e.key);
    r.flowStartMilliseconds = e.start_ns / 1'000'000;
    r.flowEndMilliseconds = e.last_ns / 1'000'000;
    r.packetDeltaCount = e.packets;
    r.octetDeltaCount = e.octets;
    r.tcpControlBits = e.flags;
    r.ipClassOfService = e.tos;
    if (!drops_.empty()) {
        if (auto it = drops_.find(idx); it != drops_.end()) {
            r.droppedPacketDeltaCount = it->second.packets;
            r.droppedOctetDeltaCount = it->second.octets;
            r.dropReasonCode = it->second.reason;
            r.bpfixDropTcpState = it->second.tcp_state;
            drops_.erase(it);
        }
    }
    const bool fin = e.state & kFin;
    // The timer that fired is the reason; only the end of input reports a
    // flow that saw FIN as ended by detection rather than forced.
    r.flowEndReason = static_cast<uint8_t>(fin && reason == FlowEndReason::forced_end ? FlowEndReason::end_detected
                                                                                    : reason);
    ++records_;
    if (enrich_) enrich_(e.key, ext(idx), r);
    return r;
}

void FlowTable::end(uint32_t idx, FlowEndReason reason) {
    FlowRecord r = record(idx, reason);
    Entry& e = at(idx);
    unlink(lru_, &Entry::lru, idx);
    unlink(age_, &Entry::age, idx);
    index_.erase(e.key, static_cast<uint32_t>(FlowKeyHash{}(e.key)), key_of());
    if (e.state & kLingerQueued) {
        e.state = kZombie | kLingerQueued;
    } else {
        release(idx);
    }
    sink_(r);
}

void FlowTable::advance(uint64_t now) {
    while (lru_.head != kNil && now - at(lru_.head).last_ns >= cfg_.idle_timeout_ns && now >= at(lru_.head).last_ns) {
        end(lru_.head, FlowEndReason::idle_timeout);
    }
    while (age_.head != kNil && now >= at(age_.head).start_ns && now - at(age_.head).start_ns >= cfg_.active_timeout_ns) {
        end(age_.head, FlowEndReason::active_timeout);
    }
    while (!linger_.empty()) {
        const Linger l = linger_.front();
        Entry& e = at(l.idx);
        if (e.state & kZombie) {
            linger_.pop_front();
            release(l.idx);
            continue;
        }
        if (now < l.fin_ns || now - l.fin_ns < cfg_.tcp_end_linger_ns) break;
        linger_.pop_front();
        e.state &= static_cast<uint8_t>(~kLingerQueued);
        end(l.idx, FlowEndReason::end_detected);
    }
}

uint32_t FlowTable::add_delta(const bpfix_flow_key& key, uint64_t first, uint64_t ts, uint64_t packets,
                              uint64_t octets, uint16_t tcp_flags, uint8_t tos) {
    const uint32_t hash = static_cast<uint32_t>(FlowKeyHash{}(key));
    uint32_t idx = index_.find(key, hash, key_of());  // kNone == kNil
    if (idx != kNil) {
        // A new connection on the same 5-tuple after FIN: a new record.
        if ((at(idx).state & kFin) && key.protocol == BPFIX_PROTO_TCP && (tcp_flags & BPFIX_TCP_SYN) &&
            !(tcp_flags & BPFIX_TCP_ACK)) {
            end(idx, FlowEndReason::end_detected);
            idx = kNil;
        }
    }
    if (idx == kNil) {
        if (index_.size() >= cfg_.max_flows) {
            ++evicted_;
            end(lru_.head, FlowEndReason::lack_of_resources);
        }
        idx = allocate();
        Entry& e = at(idx);
        e.key = key;
        e.start_ns = first;
        e.last_ns = ts;
        e.packets = e.octets = 0;
        e.flags = 0;
        e.tos = tos;
        e.state = 0;
        ext(idx) = kNoExt;
        e.lru = e.age = Link{};
        index_.insert(idx, hash);
        push_back(lru_, &Entry::lru, idx);
        push_back(age_, &Entry::age, idx);
    } else if (lru_.tail != idx) {
        unlink(lru_, &Entry::lru, idx);
        push_back(lru_, &Entry::lru, idx);
    }
    Entry& e = at(idx);
    e.packets += packets;
    e.octets += octets;
    e.flags |= tcp_flags;
    if (ts > e.last_ns) e.last_ns = ts;
    if (first < e.start_ns) e.start_ns = first;
    if (key.protocol == BPFIX_PROTO_TCP) {
        if (tcp_flags & BPFIX_TCP_RST) {
            end(idx, FlowEndReason::end_detected);
            return kNoEntry;
        }
        if ((tcp_flags & BPFIX_TCP_FIN) && !(e.state & kFin)) {
            e.state |= kFin | kLingerQueued;
            linger_.push_back(Linger{ts, idx});
        }
    }
    return idx;
}

uint32_t* FlowTable::ext_of(const bpfix_flow_key& key) {
    const uint32_t idx = index_.find(key, static_cast<uint32_t>(FlowKeyHash{}(key)), key_of());
    return idx == kNil ? nullptr : &ext(idx);
}

bool FlowTable::add_drops(const bpfix_flow_key& key, uint64_t packets, uint64_t octets, uint32_t reason,
                          uint8_t tcp_state) {
    const uint32_t idx = index_.find(key, static_cast<uint32_t>(FlowKeyHash{}(key)), key_of());
    if (idx == FlowKeyIndex::kNone) return false;
    Drops& d = drops_[idx];
    d.packets += packets;
    d.octets += octets;
    d.reason = reason;
    if (tcp_state) d.tcp_state = tcp_state;
    return true;
}

void FlowTable::flush() {
    // Every flow ends: records in start order, then the whole table is
    // dropped at once (no per-flow index erase or unlink: at the end of a
    // capture with a million flows open those were random loads, a tenth
    // of the DNS mix's time).
    // The enricher hears of each record 2 * kPrefetchLag records ahead: its
    // lookups are as random as the packets' were.
    uint32_t ahead = age_.head;
    if (enrich_hint_)
        for (unsigned i = 0; i < 2 * kPrefetchLag && ahead != kNil; ++i, ahead = at(ahead).age.next)
            enrich_hint_(at(ahead).key, ext(ahead));
    for (uint32_t idx = age_.head; idx != kNil;) {
        const uint32_t next = at(idx).age.next;
        if (next != kNil) __builtin_prefetch(&at(next));
        if (enrich_hint_ && ahead != kNil) {
            enrich_hint_(at(ahead).key, ext(ahead));
            ahead = at(ahead).age.next;
        }
        sink_(record(idx, FlowEndReason::forced_end));
        idx = next;
    }
    index_.clear();
    lru_ = age_ = List{};
    linger_.clear();
    drops_.clear();
    free_ = kNil;
    used_ = 0;
}

}  // namespace bpfix
