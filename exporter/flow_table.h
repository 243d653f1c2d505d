#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <unordered_map>

#include "flow_key_index.h"

#include "bpfix_abi.h"
#include "flow_templates.h"

namespace bpfix {

struct FlowTableConfig {
    uint64_t idle_timeout_ns = 15'000'000'000ULL;
    uint64_t active_timeout_ns = 60'000'000'000ULL;
    uint64_t tcp_end_linger_ns = 2'000'000'000ULL;
    size_t max_flows = 1'000'000;
};

// The flow cache: aggregates packets into uniflow records and ends them per
// docs/flow-semantics.md (idle, active, TCP FIN/RST, forced end, lack of
// resources). Time is whatever the caller says it is (packet time in pcap
// mode); expiry is O(1) per flow through three lists kept in time order.
class FlowTable {
public:
    using Sink = std::function<void(const FlowRecord&)>;

    FlowTable(const FlowTableConfig& cfg, Sink sink);
    // Called with each record's key and its flow's enricher number (see
    // ext()) just before the record goes to the sink, to fill in
    // enrichment elements (DNS, RTT); the enricher frees what the number
    // held and sets it to kNoExt.
    using Enrich = std::function<void(const bpfix_flow_key&, uint32_t& ext, FlowRecord&)>;
    // `hint`, when set, is told the key and number of a record due soon at
    // flush(), so the enricher can start loading what it will look up.
    using Hint = std::function<void(const bpfix_flow_key&, uint32_t ext)>;
    void set_enrich(Enrich enrich, Hint hint = {}) {
        enrich_ = std::move(enrich);
        enrich_hint_ = std::move(hint);
    }
    // New timeouts and bound (a reload): they apply to the flows open now
    // at the next advance(); the expiry lists stay in time order.
    void set_config(const FlowTableConfig& cfg) { cfg_ = cfg; if (cfg_.max_flows == 0) cfg_.max_flows = 1; }

    // Ends every flow that is due at time `now_ns`.
    void advance(uint64_t now_ns);
    // Counts one packet in its flow (call advance(ts) first). Returns the
    // flow's entry, or kNoEntry when the packet ended the flow (RST).
    uint32_t add(const bpfix_flow_key& key, uint64_t ts_ns, uint64_t octets, uint16_t tcp_flags, uint8_t tos) {
        return add_delta(key, ts_ns, ts_ns, 1, octets, tcp_flags, tos);
    }
    // Counts what the kernel aggregated for a flow since the last drain:
    // `packets` packets between first_ns and last_ns. The same rules apply
    // as per packet, with the delta's OR-ed flags. Returns as add().
    uint32_t add_delta(const bpfix_flow_key& key, uint64_t first_ns, uint64_t last_ns, uint64_t packets,
                   uint64_t octets, uint16_t tcp_flags, uint8_t tos);
    // Adds kernel drops of `key` to its flow, with the latest drop reason
    // (kernel enum skb_drop_reason value). False when no flow with that key
    // is open: the caller accounts the drops elsewhere.
    // `tcp_state`: of the socket of the latest drop that had one (0: none).
    bool add_drops(const bpfix_flow_key& key, uint64_t packets, uint64_t octets, uint32_t reason,
                   uint8_t tcp_state = 0);
    // Ends every flow (end of input): forced end, or end detected after FIN.
    void flush();

    static constexpr uint32_t kNoEntry = UINT32_MAX, kNoExt = UINT32_MAX;
    // One 32-bit number an enricher keeps with an open flow (kNoExt until
    // it sets one): where its state for the flow is, so it needs no table
    // of its own keyed by flow (the DNS summaries, pcap mode). It gets the
    // number back through Enrich when the flow's record is made.
    uint32_t& ext(uint32_t entry) { return static_cast<uint32_t*>(ext_.data())[entry]; }
    // The number of the open flow `key`, or nullptr when it is not open.
    uint32_t* ext_of(const bpfix_flow_key& key);
    // A hint that `key` comes soon (pcap mode reads ahead): starts loading
    // its index slot now, and the entry of the key hinted kPrefetchLag
    // hints ago (whose slot should have arrived by then). Changes nothing.
    void prefetch(const bpfix_flow_key& key) {
        const uint32_t hash = static_cast<uint32_t>(FlowKeyHash{}(key));
        index_.prefetch(hash);
        const uint32_t lagged = hint_[hint_pos_ % kPrefetchLag];
        hint_[hint_pos_++ % kPrefetchLag] = hash;
        if (const uint32_t idx = index_.home_entry(lagged); idx != FlowKeyIndex::kNone) {
            const char* e = reinterpret_cast<const char*>(&at(idx));
            __builtin_prefetch(e, 1);
            __builtin_prefetch(e + 64, 1);
        }
    }
    static constexpr unsigned kPrefetchLag = 8;

    size_t active_flows() const { return index_.size(); }
    uint64_t records_exported() const { return records_; }
    size_t size() const { return index_.size(); }  // flows open now
    uint64_t evicted() const { return evicted_; }

private:
    static constexpr uint32_t kNil = UINT32_MAX;
    static_assert(kNil == FlowKeyIndex::kNone, "a missing flow reads as the end of a list");
    struct Link {
        uint32_t prev = kNil, next = kNil;
    };
    // One open flow in 104 bytes, no heap allocation of its own (issue 20:
    // <= 128 bytes per concurrent flow with the index). Drops, which only
    // live mode counts and few flows have, live in drops_.
    struct Entry {
        bpfix_flow_key key;
        uint16_t flags;
        uint8_t tos;
        uint8_t state;  // kFin, kLingerQueued, kZombie
        uint64_t start_ns, last_ns;
        uint64_t packets, octets;
        Link lru, age;  // a free entry chains the free list through lru.next
    };
    static_assert(sizeof(Entry) == 104, "a flow entry stays within its byte budget");
    static constexpr uint8_t kFin = 1;           // the flow saw FIN
    static constexpr uint8_t kLingerQueued = 2;  // linger_ holds an item for this entry
    static constexpr uint8_t kZombie = 4;        // ended, freed when its linger item leaves linger_
    struct List {
        uint32_t head = kNil, tail = kNil;
    };
    struct Linger {
        uint64_t fin_ns;
        uint32_t idx;
    };
    struct Drops {
        uint64_t packets = 0, octets = 0;
        uint32_t reason = 0;
        uint8_t tcp_state = 0;
    };

    Entry& at(uint32_t idx) const { return static_cast<Entry*>(entries_.data())[idx]; }
    uint32_t allocate();
    void release(uint32_t idx);
    // The record of entry idx ending for `reason`, enriched (counted).
    FlowRecord record(uint32_t idx, FlowEndReason reason);
    void end(uint32_t idx, FlowEndReason reason);
    // The flow index: key -> entry.
    auto key_of() const {
        return [this](uint32_t idx) -> const bpfix_flow_key& { return at(idx).key; };
    }
    void push_back(List& list, Link Entry::*link, uint32_t idx);
    void unlink(List& list, Link Entry::*link, uint32_t idx);

    FlowTableConfig cfg_;
    Sink sink_;
    Enrich enrich_;
    Hint enrich_hint_;
    AnonRegion entries_;   // Entry[capacity_]: grows by remapping, never copied
    // uint32_t[capacity_], ext() of each entry: beside the entries, not in
    // them, which have no 4 bytes to spare (4 more bytes a flow, 108 in all).
    AnonRegion ext_;
    uint32_t used_ = 0;    // entries ever handed out (the rest of entries_ is untouched)
    uint32_t capacity_ = 0;
    uint32_t free_ = kNil;  // free list head
    FlowKeyIndex index_;
    List lru_, age_;
    // Flows that saw FIN, by FIN time. An entry that ends another way keeps
    // its item here and is freed only when the item leaves (a zombie), so
    // an item always belongs to the flow it was queued for.
    std::deque<Linger> linger_;
    std::unordered_map<uint32_t, Drops> drops_;
    uint64_t records_ = 0;
    uint64_t evicted_ = 0;
    uint32_t hint_[kPrefetchLag] = {};
    unsigned hint_pos_ = 0;
};

// Builds the exported record for a flow key (addresses, ports, ICMP,
// VLANs, observation point); counters and times are the caller's.
FlowRecord make_flow_record(const bpfix_flow_key& key);

// The flow key of the other direction (addresses and ports swapped; the
// interface and direction fields as given).
bpfix_flow_key reverse_key(const bpfix_flow_key& k);

}  // namespace bpfix
