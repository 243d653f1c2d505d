#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>

#include "flow_table.h"
#include "packet_parser.h"

namespace bpfix {

struct MeterCounters {
    uint64_t frames = 0;
    uint64_t ip_packets = 0;
    uint64_t ip_octets = 0;
    uint64_t non_ip = 0;
    uint64_t malformed = 0;
    uint64_t malformed_octets = 0;  // captured wire length of malformed frames
};

// Sees what a FlowMeter meters: its clock, before flows that are due end,
// and every packet counted (key complete), for enrichment, with the
// enricher number of the flow that counted it (FlowTable::ext; nullptr
// when the packet ended its flow).
class PacketObserver {
public:
    virtual ~PacketObserver() = default;
    virtual void clock(uint64_t now_ns) = 0;
    virtual void packet(const ParsedPacket& p, uint64_t ts_ns, uint32_t* ext) = 0;
};

// Meters captured frames (pcap mode): parse, attribute fragments, count in
// the flow table. The observation point (ifindex, direction) is fixed per
// meter.
class FlowMeter {
public:
    FlowMeter(const FlowTableConfig& cfg, uint32_t ifindex, uint8_t direction, FlowTable::Sink sink);

    void packet(const uint8_t* data, size_t caplen, size_t wirelen, int dlt, uint64_t ts_ns);
    // A frame that packet() will see soon (a reader that can look ahead):
    // parsed now (packet() takes the parse when it gets the same frame at
    // the same address, in the same order) and the flow table's memory
    // for it warmed. Changes no count.
    void hint(const uint8_t* data, size_t caplen, size_t wirelen, int dlt);
    // The hinted frames moved or are gone (the reader refilled its buffer).
    void forget_hints() { hinted_count_ = 0; }
    void finish();  // end of input
    // A frame the capture reader could not even deliver (a file cut mid-record).
    void count_unreadable() {
        ++counters_.frames;
        ++counters_.malformed;
    }

    const MeterCounters& counters() const { return counters_; }
    void set_observer(PacketObserver* o) { observer_ = o; }
    FlowTable& table() { return table_; }
    const FlowTable& table() const { return table_; }

private:
    // Ports of first fragments, per (version, addresses, protocol, id), for
    // kFragmentLifetime of packet time.
    struct FragKey {
        uint8_t src[16], dst[16];
        uint32_t id;
        uint8_t protocol, version;
        bool operator==(const FragKey&) const = default;
    };
    struct FragKeyHash {
        size_t operator()(const FragKey& k) const noexcept;
    };
    struct FragPorts {
        uint16_t src_port, dst_port, icmp_type_code;
        uint64_t seen_ns;
    };
    static FragKey frag_key(const ParsedPacket& p);
    void expire_fragments(uint64_t now);

    struct Hinted {
        const uint8_t* data = nullptr;
        size_t caplen = 0;
        ParseStatus status = ParseStatus::malformed;
        ParsedPacket parsed;
    };
    static constexpr unsigned kHinted = 32;  // the reader looks 16 ahead
    Hinted hinted_[kHinted];
    unsigned hinted_head_ = 0, hinted_count_ = 0;

    FlowTable table_;
    uint32_t ifindex_;
    uint8_t direction_;
    uint64_t now_ = 0;
    MeterCounters counters_;
    PacketObserver* observer_ = nullptr;
    std::unordered_map<FragKey, FragPorts, FragKeyHash> frags_;
    std::deque<std::pair<uint64_t, FragKey>> frag_order_;
};

}  // namespace bpfix
