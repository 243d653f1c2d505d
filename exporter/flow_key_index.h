// An open-addressing index from keys to entry numbers (linear probing,
// backward-shift deletion), for tables that keep their entries themselves:
// the pcap-mode flow table, the DNS enricher's summaries (FlowKeyIndex) and
// its pending transactions.
// A node-based map's allocations and pointer chasing were the largest
// user-space cost of both. A slot holds the key's 32-bit hash << 32 |
// (entry + 1); 0 is empty. The hash in the slot gives a slot's home
// without touching its entry, so inserting, erasing and growing never read
// keys; only a lookup compares them, through the caller's key_of(entry).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "anon_region.h"
#include "bpfix_abi.h"

namespace bpfix {

// Flow key hash and equality, inline: they run several times per packet
// (the flow table, the DNS and handshake enrichers). Word-wise over the 52
// bytes (the key has no padding holes with garbage: it is always
// value-initialised). The hash is not noexcept on purpose: libstdc++'s
// unordered containers then keep each node's hash, so a lookup compares
// hashes before keys and never hashes the other nodes of its bucket again.
struct FlowKeyHash {
    size_t operator()(const bpfix_flow_key& k) const {
        const auto* p = reinterpret_cast<const uint8_t*>(&k);
        uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i + 8 <= sizeof k; i += 8) {
            uint64_t v;
            std::memcpy(&v, p + i, 8);
            h = (h ^ v) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        uint32_t tail;
        std::memcpy(&tail, p + sizeof k - 4, 4);
        h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
        return static_cast<size_t>(h ^ (h >> 29));
    }
};
struct FlowKeyEqual {
    bool operator()(const bpfix_flow_key& a, const bpfix_flow_key& b) const noexcept {
        const auto* x = reinterpret_cast<const uint8_t*>(&a);
        const auto* y = reinterpret_cast<const uint8_t*>(&b);
        uint64_t diff = 0;
        for (size_t i = 0; i + 8 <= sizeof a; i += 8) {
            uint64_t u, v;
            std::memcpy(&u, x + i, 8);
            std::memcpy(&v, y + i, 8);
            diff |= u ^ v;
        }
        uint32_t s, t;
        std::memcpy(&s, x + sizeof a - 4, 4);
        std::memcpy(&t, y + sizeof a - 4, 4);
        return (diff | (s ^ t)) == 0;
    }
};
static_assert(sizeof(bpfix_flow_key) % 4 == 0 && sizeof(bpfix_flow_key) % 8 == 4, "FlowKeyHash's word layout");

template <typename Key, typename Equal>
class KeyIndex {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    KeyIndex() {
        slots_.resize(kInitialSlots * sizeof(uint64_t));
        mask_ = kInitialSlots - 1;
    }

    // The entry holding `key` (of hash `hash`), or kNone.
    template <typename KeyOf>
    uint32_t find(const Key& key, uint32_t hash, const KeyOf& key_of) const {
        const uint64_t v = slots()[find_slot(key, hash, key_of)];
        return v ? static_cast<uint32_t>(v) - 1 : kNone;
    }
    // Adds `entry` under `hash`; its key must not be in the index.
    void insert(uint32_t entry, uint32_t hash) {
        if ((size_ + 1) * 2 > mask_ + 1) grow();
        uint64_t* s = slots();
        size_t i = hash & mask_;
        while (s[i] != 0) i = (i + 1) & mask_;
        s[i] = static_cast<uint64_t>(hash) << 32 | (static_cast<uint64_t>(entry) + 1);
        ++size_;
    }
    // Removes `key` (which must be in the index).
    template <typename KeyOf>
    void erase(const Key& key, uint32_t hash, const KeyOf& key_of) {
        uint64_t* s = slots();
        size_t i = find_slot(key, hash, key_of);
        // Backward shift: pull later members of the probe run into the hole
        // so lookups never stop early.
        for (size_t j = (i + 1) & mask_; s[j] != 0; j = (j + 1) & mask_) {
            size_t home = (s[j] >> 32) & mask_;
            bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
            if (movable) {
                s[i] = s[j];
                i = j;
            }
        }
        s[i] = 0;
        --size_;
    }
    size_t size() const { return size_; }
    // Forgets every entry and gives the slots back (no per-entry erase).
    void clear() {
        AnonRegion fresh;
        fresh.resize(kInitialSlots * sizeof(uint64_t));
        slots_ = std::move(fresh);
        mask_ = kInitialSlots - 1;
        size_ = 0;
    }

    // Starts loading the home slot of `hash` (a reader that looks ahead).
    void prefetch(uint32_t hash) const { __builtin_prefetch(slots() + (hash & mask_)); }
    // The entry in the home slot of `hash` if that slot holds this hash
    // (a guess for prefetching: no key is compared), else kNone.
    uint32_t home_entry(uint32_t hash) const {
        const uint64_t v = slots()[hash & mask_];
        return v != 0 && (v >> 32) == hash ? static_cast<uint32_t>(v) - 1 : kNone;
    }

private:
    static constexpr size_t kInitialSlots = 1 << 12;

    uint64_t* slots() const { return static_cast<uint64_t*>(slots_.data()); }
    template <typename KeyOf>
    size_t find_slot(const Key& key, uint32_t hash, const KeyOf& key_of) const {
        const uint64_t* s = slots();
        for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const uint64_t v = s[i];
            if (v == 0) return i;
            if ((v >> 32) == hash && Equal{}(key_of(static_cast<uint32_t>(v) - 1), key)) return i;
        }
    }
    void grow() {
        AnonRegion old = std::move(slots_);
        const uint64_t* o = static_cast<const uint64_t*>(old.data());
        const size_t old_count = mask_ + 1;
        slots_.resize(old_count * 2 * sizeof(uint64_t));
        mask_ = old_count * 2 - 1;
        uint64_t* s = slots();
        for (size_t k = 0; k < old_count; ++k) {
            if (o[k] == 0) continue;
            size_t i = (o[k] >> 32) & mask_;
            while (s[i] != 0) i = (i + 1) & mask_;
            s[i] = o[k];
        }
    }

    AnonRegion slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
};

using FlowKeyIndex = KeyIndex<bpfix_flow_key, FlowKeyEqual>;

// Nodes in chunks of 1024, 1024, 2048, 4096, ... nodes, each an
// AnonRegion, so a large table sits in huge pages and a small one does
// not; growing never moves a node (a vector's doubling moved a million DNS
// summaries and held both copies at once); each node is made where it is
// first used. Numbers and references stay valid for the table's life.
template <typename Node>
class NodeChunks {
public:
    NodeChunks() = default;
    NodeChunks(const NodeChunks&) = delete;
    NodeChunks& operator=(const NodeChunks&) = delete;
    ~NodeChunks() {
        for (uint32_t i = 0; i < count_; ++i) (*this)[i].~Node();
    }
    // A new node (value-initialised) at the end: its number.
    uint32_t make() {
        const uint32_t i = count_;
        const uint32_t c = chunk_of(i);
        if (c == chunks_.size()) {
            chunks_.emplace_back();
            chunks_.back().resize(((size_t{kChunk} << c) - chunk_start(c)) * sizeof(Node));
        }
        new (&(*this)[i]) Node{};
        ++count_;
        return i;
    }
    Node& operator[](uint32_t i) const {
        const uint32_t c = chunk_of(i);
        return static_cast<Node*>(chunks_[c].data())[i - chunk_start(c)];
    }
    uint32_t count() const { return count_; }  // nodes ever made

private:
    static constexpr uint32_t kChunkShift = 10, kChunk = 1u << kChunkShift;
    // Chunk 0 holds nodes [0, kChunk), chunk c >= 1 [kChunk << (c - 1), kChunk << c).
    static uint32_t chunk_of(uint32_t i) {
        return i < kChunk ? 0 : 32 - kChunkShift - static_cast<uint32_t>(__builtin_clz(i));
    }
    static uint32_t chunk_start(uint32_t c) { return c == 0 ? 0 : kChunk << (c - 1); }

    std::vector<AnonRegion> chunks_;
    uint32_t count_ = 0;
};

// Values without keys, by number, in NodeChunks: a freed number is reused
// (with a fresh value). For state a caller finds by a number it keeps
// itself (the DNS summary of a flow table entry).
template <typename Value>
class Slots {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    // A number for a new value-initialised value.
    uint32_t make() {
        ++size_;
        if (free_ != kNone) {
            const uint32_t i = free_;
            free_ = nodes_[i].next_free;
            nodes_[i].value = Value{};
            return i;
        }
        return nodes_.make();
    }
    void release(uint32_t i) {
        nodes_[i].next_free = free_;
        free_ = i;
        --size_;
    }
    Value& operator[](uint32_t i) { return nodes_[i].value; }
    void prefetch(uint32_t i) const {
        if (i < nodes_.count()) __builtin_prefetch(&nodes_[i], 1);
    }
    size_t size() const { return size_; }  // values in use

private:
    struct Node {
        Value value{};
        uint32_t next_free = kNone;
    };
    NodeChunks<Node> nodes_;
    uint32_t free_ = kNone;
    size_t size_ = 0;
};

// Values by key in NodeChunks (a freed node is reused), found
// through a KeyIndex, with an optional order of their own (a doubly linked
// list through the nodes, oldest first): the enrichers' tables (DNS
// summaries and pending transactions, handshakes pending and measured).
// Node numbers and references stay valid until the node is erased.
template <typename Key, typename Value, typename Hash, typename Equal>
class KeyedNodes {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    KeyedNodes() = default;
    KeyedNodes(const KeyedNodes&) = delete;
    KeyedNodes& operator=(const KeyedNodes&) = delete;

    uint32_t find(const Key& key) const { return index_.find(key, hash(key), key_of()); }
    // A hint that `key` is looked up soon: starts loading its index slot,
    // and the node of the key hinted kPrefetchLag hints ago (whose slot
    // should have arrived by then). Changes nothing.
    void prefetch(const Key& key) {
        const uint32_t h = hash(key);
        index_.prefetch(h);
        const uint32_t lagged = hints_[hint_pos_ % kPrefetchLag];
        hints_[hint_pos_++ % kPrefetchLag] = h;
        if (const uint32_t i = index_.home_entry(lagged); i != kNone && i < nodes_.count()) {
            const char* n = reinterpret_cast<const char*>(&node(i));
            __builtin_prefetch(n, 1);
            __builtin_prefetch(n + 64, 1);
        }
    }
    // A new node for `key` (which must not be here) with a value-initialised
    // value, last in the order when `ordered`.
    uint32_t insert(const Key& key, bool ordered = false) {
        uint32_t i = free_;
        if (i != kNone) {
            free_ = node(i).next;
            node(i).value = Value{};
        } else {
            i = nodes_.make();
        }
        Node& n = node(i);
        n.key = key;
        n.prev = n.next = kNone;
        n.linked = false;
        index_.insert(i, hash(key));
        if (ordered) push_back(i);
        return i;
    }
    void erase(uint32_t i) {
        unlink(i);
        index_.erase(node(i).key, hash(node(i).key), key_of());
        node(i).next = free_;
        free_ = i;
    }
    Value& value(uint32_t i) { return node(i).value; }
    const Key& key(uint32_t i) const { return node(i).key; }
    size_t size() const { return index_.size(); }

    // The order: the oldest node (kNone: none), the one after `i`, and
    // moving a node to the end.
    uint32_t front() const { return head_; }
    uint32_t next(uint32_t i) const { return node(i).next; }
    void move_to_back(uint32_t i) {
        unlink(i);
        push_back(i);
    }

private:
    struct Node {
        Key key{};
        Value value{};
        uint32_t prev = kNone, next = kNone;  // the order; `next` chains the free list
        bool linked = false;
    };
    Node& node(uint32_t i) const { return nodes_[i]; }
    static uint32_t hash(const Key& key) {
        const size_t h = Hash{}(key);
        return static_cast<uint32_t>(h ^ (h >> 32));
    }
    auto key_of() const {
        return [this](uint32_t i) -> const Key& { return node(i).key; };
    }
    void push_back(uint32_t i) {
        Node& n = node(i);
        n.prev = tail_;
        n.next = kNone;
        n.linked = true;
        if (tail_ != kNone) node(tail_).next = i;
        else head_ = i;
        tail_ = i;
    }
    void unlink(uint32_t i) {
        Node& n = node(i);
        if (!n.linked) return;
        if (n.prev != kNone) node(n.prev).next = n.next;
        else head_ = n.next;
        if (n.next != kNone) node(n.next).prev = n.prev;
        else tail_ = n.prev;
        n.prev = n.next = kNone;
        n.linked = false;
    }

    NodeChunks<Node> nodes_;
    static constexpr unsigned kPrefetchLag = 8;
    uint32_t hints_[kPrefetchLag] = {};
    unsigned hint_pos_ = 0;
    uint32_t free_ = kNone, head_ = kNone, tail_ = kNone;
    KeyIndex<Key, Equal> index_;
};

}  // namespace bpfix
