/* The one header shared by the eBPF programs and the C++ code.
 *
 * Everything the kernel and user space exchange is declared here, with
 * fixed-width __u* types and _Static_assert sizes, so both sides agree on the
 * layout by construction. Include it from BPF C and from C++ alike.
 */
#ifndef BPFIX_ABI_H
#define BPFIX_ABI_H

#ifdef __cplusplus
#include <linux/types.h>
#define BPFIX_STATIC_ASSERT static_assert
#else
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#define BPFIX_STATIC_ASSERT _Static_assert
#endif

/* IP versions as carried in the key. */
#define BPFIX_IPV4 4
#define BPFIX_IPV6 6

/* IP protocol numbers the meters treat specially. */
#define BPFIX_PROTO_ICMP 1
#define BPFIX_PROTO_TCP 6
#define BPFIX_PROTO_UDP 17
#define BPFIX_PROTO_DCCP 33
#define BPFIX_PROTO_ICMPV6 58
#define BPFIX_PROTO_SCTP 132
#define BPFIX_PROTO_UDPLITE 136

/* Fixed header length of the transport protocols the meters read; a packet
 * cut inside it is malformed (docs/flow-semantics.md). 0: no ports read. */
/* The drop tracker's ifindexes below this are looked up in an array. */
#define BPFIX_WATCHED_ARRAY 65536

static inline int bpfix_transport_header_len(__u8 proto)
{
    switch (proto) {
    case BPFIX_PROTO_TCP: return 20;
    case BPFIX_PROTO_UDP:
    case BPFIX_PROTO_UDPLITE: return 8;
    case BPFIX_PROTO_SCTP:
    case BPFIX_PROTO_DCCP: return 12;
    case BPFIX_PROTO_ICMP: return 8;
    case BPFIX_PROTO_ICMPV6: return 4;
    default: return 0;
    }
}

/* TCP flag bits as carried in tcpControlBits (flags byte, NS as 0x100). */
#define BPFIX_TCP_FIN 0x01
#define BPFIX_TCP_SYN 0x02
#define BPFIX_TCP_RST 0x04
#define BPFIX_TCP_ACK 0x10

/* Observation direction (IANA flowDirection: 0 ingress, 1 egress). */
#define BPFIX_DIR_INGRESS 0
#define BPFIX_DIR_EGRESS 1

/* The uniflow key. IPv4 addresses sit in the first 4 bytes of the 16-byte
 * address fields, the rest zero, so one key serves both families. For ICMP
 * and ICMPv6 the ports are zero and icmp_type_code holds type << 8 | code.
 * A VLAN id of 0 means untagged; inner_vlan_id is the customer tag of QinQ.
 * Multi-byte fields are in host byte order. */
struct bpfix_flow_key {
    __u8 src_addr[16];
    __u8 dst_addr[16];
    __u16 src_port;
    __u16 dst_port;
    __u16 icmp_type_code;
    __u16 vlan_id;
    __u16 inner_vlan_id;
    __u8 protocol;
    __u8 ip_version;
    __u32 ifindex;
    __u8 direction;
    __u8 pad[3];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_flow_key) == 52, "bpfix_flow_key layout");

/* Per-CPU packet and byte totals seen by a TC program (the minimal datapath
 * counter; the flow maps arrive with live metering). Index 0 ingress,
 * index 1 egress. */
struct bpfix_if_counters {
    __u64 packets;
    __u64 bytes;
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_if_counters) == 16, "bpfix_if_counters layout");

/* Per-flow counters the TC programs keep in the flow maps (per-CPU hash:
 * one value per CPU, merged by user space). Times are bpf_ktime_get_ns()
 * (CLOCK_MONOTONIC); user space converts them to wall-clock time. */
struct bpfix_flow_stats {
    __u64 packets;
    __u64 bytes;      /* IP octets, as docs/flow-semantics.md */
    __u64 first_ns;
    __u64 last_ns;
    __u16 tcp_flags;  /* OR of flags, NS as 0x100 */
    __u8 tos;         /* of the first packet seen on this CPU */
    __u8 pad[5];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_flow_stats) == 40, "bpfix_flow_stats layout");

/* The per-CPU flow cache in front of the flow maps: a direct-mapped array
 * of slots, indexed by a hash of the key (bpfix_flow_slot_index). A packet
 * whose slot holds its flow, or is free, is counted there without a hash
 * map lookup; one whose slot holds another flow goes to the flow map.
 * User space reads and clears the slots with the map, so a key can be in
 * both, on several CPUs: it merges them. */
struct bpfix_flow_slot {
    struct bpfix_flow_key key;
    __u32 pad;
    struct bpfix_flow_stats stats;  /* stats.packets 0: the slot is free */
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_flow_slot) == 96, "bpfix_flow_slot layout");

/* Flows are double-buffered: the programs update the cache and map named
 * by the global `active_flows` (0: cache_0/flows_0, 1: cache_1/flows_1);
 * user space flips it, lets
 * in-flight programs finish, and drains the other map, so no update is lost
 * between a read and a delete. */
#define BPFIX_FLOW_MAPS 2

/* Packets the programs saw but could not put in a flow, per-CPU array. */
enum bpfix_counter_index {
    BPFIX_CNT_NON_IP = 0,     /* not IPv4/IPv6 (ARP, LLDP, ...) */
    BPFIX_CNT_MALFORMED = 1,  /* headers cut short or invalid */
    BPFIX_CNT_MAP_FULL = 2,   /* flow map full: counted here, never lost */
    BPFIX_CNT_SAMPLED_OUT = 3, /* not selected by 1-in-N sampling */
    BPFIX_CNT_FILTERED = 4,    /* rejected by the filter rules */
    BPFIX_CNT_DNS_LOST = 5,    /* DNS packets not handed to user space (ring buffer full) */
    BPFIX_CNT_MAX = 6,
};
struct bpfix_counter {
    __u64 packets;
    __u64 bytes;      /* skb length */
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_counter) == 16, "bpfix_counter layout");

/* First-fragment ports, so later fragments join their flow (as in pcap mode). */
struct bpfix_frag_key {
    __u8 src_addr[16];
    __u8 dst_addr[16];
    __u32 id;
    __u8 protocol;  /* IPv4 only; 0 for IPv6 */
    __u8 ip_version;
    __u8 pad[2];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_frag_key) == 40, "bpfix_frag_key layout");
struct bpfix_frag_ports {
    __u16 src_port;
    __u16 dst_port;
    __u16 icmp_type_code;
    __u16 pad;
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_frag_ports) == 8, "bpfix_frag_ports layout");

/* Filter rules, first match wins (user space compiles them from the
 * config; addresses are masked here already). A packet matches a rule when
 * every set part matches. */
#define BPFIX_MAX_FILTER_RULES 32
#define BPFIX_FILTER_ACCEPT 1
#define BPFIX_FILTER_REJECT 2
#define BPFIX_FILTER_F_PEER 0x1        /* src CIDR matches either address */
#define BPFIX_FILTER_F_EITHER_PORT 0x2 /* src port range matches either port */
struct bpfix_filter_rule {
    __u8 src_addr[16];
    __u8 src_mask[16];  /* all zero: any */
    __u8 dst_addr[16];
    __u8 dst_mask[16];
    __u16 sport_lo, sport_hi;  /* 0..65535: any */
    __u16 dport_lo, dport_hi;
    __u8 protocol;    /* 0: any */
    __u8 ip_version;  /* 0: any */
    __u8 directions;  /* bit BPFIX_DIR_*; 0: both */
    __u8 action;      /* BPFIX_FILTER_ACCEPT or _REJECT */
    __u8 flags;       /* BPFIX_FILTER_F_* */
    __u8 pad[3];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_filter_rule) == 80, "bpfix_filter_rule layout");
/* A program's rules come in two banks, so that a reload can replace them
 * while packets flow: bank B is entries [B * BPFIX_MAX_FILTER_RULES, + count)
 * of its filter_rules map, with the action for a packet no rule matches.
 * User space fills the bank not in use, then switches `filter_bank` (one
 * aligned 32-bit store); a packet reads the bank once, so it sees one rule
 * set whole. */
struct bpfix_filter_set {
    __u32 count;
    __u32 default_action;
};

/* DNS enrichment: the TC programs copy the transport payload of UDP and
 * TCP packets to or from one of the DNS ports (up to BPFIX_DNS_MAX_PORTS,
 * host byte order, set before load) into the ring buffer `dns_events`, the
 * first BPFIX_DNS_SNAP bytes (the header and question of any DNS message
 * fit); user space parses them (the same parser as pcap mode). Packets
 * without payload (TCP ACKs) are not copied. */
#define BPFIX_DNS_MAX_PORTS 8
#define BPFIX_DNS_SNAP 512
struct bpfix_dns_event {
    struct bpfix_flow_key key;  /* ifindex and direction set */
    __u32 len;                  /* bytes in data */
    __u64 ts_ns;                /* bpf_ktime_get_ns() */
    __u32 orig_len;             /* payload bytes in the packet */
    __u32 pad;
    __u8 data[BPFIX_DNS_SNAP];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_dns_event) == 584, "bpfix_dns_event layout");

/* Kernel packet drops (bpf/drop_tracker.bpf.c, a tp_btf/kfree_skb program).
 * A dropped packet whose headers parse is keyed like the TC meter keys it
 * (struct bpfix_flow_key, with the interface and direction it is attributed
 * to, docs/live-mode.md) and counted in a per-CPU hash, double-buffered like
 * the flow maps (`active_drops` names the one being written). `last_reason`
 * is the kernel's enum skb_drop_reason value of the running kernel; user
 * space names it from the kernel's BTF. */
struct bpfix_drop_stats {
    __u64 packets;
    __u64 bytes;       /* IP octets, as the flow counters */
    __u64 last_ns;     /* bpf_ktime_get_ns() of the latest drop */
    __u32 last_reason; /* enum skb_drop_reason of the latest drop */
    __u8 tcp_state;    /* TCP state of the socket of the latest drop that had one (1 ESTABLISHED .. 12 NEW_SYN_RECV); 0: none */
    __u8 pad[3];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_drop_stats) == 32, "bpfix_drop_stats layout");

/* The drop tracer's per-CPU cache in front of its drop maps, as the flow
 * meter's (struct bpfix_flow_slot): a per-CPU array of BPFIX_DROP_CACHE_SLOTS
 * slots indexed by a hash of the key; a drop whose slot holds its flow, or
 * is free, is counted there without a hash update. Double-buffered with the
 * maps (drop_cache_0 with drops_0 ...); user space reads and clears it with
 * them and merges. */
struct bpfix_drop_slot {
    struct bpfix_flow_key key;
    __u32 pad;
    struct bpfix_drop_stats stats; /* stats.packets 0: the slot is free */
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_drop_slot) == 88, "bpfix_drop_slot layout");
#define BPFIX_DROP_CACHE_SLOTS 1024

/* Drops on a metered interface that could not be keyed (not IPv4/IPv6,
 * headers unreadable, or the drop map full), per-CPU hash keyed by the
 * reason (__u32), value struct bpfix_counter (bytes: skb length). Totals
 * since load, never cleared. */
#define BPFIX_MAX_DROP_REASONS 1024

/* TCP RTT from the kernel's smoothed RTT (bpf/tcp_rtt.bpf.c): on each
 * segment a TCP socket of the exporter's network namespace receives in the
 * established state, the program reads tcp_sock->srtt_us >> 3 and, when it
 * changed since the socket's last sample or BPFIX_RTT_MIN_GAP_NS passed,
 * counts it under the socket's 5-tuple (local address and port as src,
 * remote as dst; IPv4-mapped IPv6 sockets as IPv4) in a per-CPU hash,
 * double-buffered like the flow maps (`active_rtt`). */
#define BPFIX_RTT_MIN_GAP_NS 100000000ULL  /* 100 ms */
struct bpfix_rtt_key {
    __u8 src_addr[16];  /* local */
    __u8 dst_addr[16];  /* remote */
    __u16 src_port;     /* host byte order */
    __u16 dst_port;
    __u8 ip_version;
    __u8 protocol;      /* BPFIX_PROTO_TCP */
    __u8 pad[2];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_rtt_key) == 40, "bpfix_rtt_key layout");
struct bpfix_rtt_stats {
    __u32 min_us;
    __u32 max_us;
    __u32 last_us;
    __u32 samples;
    __u64 last_ns;  /* bpf_ktime_get_ns() of the latest sample */
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_rtt_stats) == 24, "bpfix_rtt_stats layout");
/* Per-socket gate (socket-local storage): the socket's key, read once,
 * and what it last counted. */
#define BPFIX_RTT_GATE_NEW 0
#define BPFIX_RTT_GATE_OURS 1     /* key valid */
#define BPFIX_RTT_GATE_FOREIGN 2  /* another namespace or family: never counted */
struct bpfix_rtt_gate {
    struct bpfix_rtt_key key;
    __u64 last_ns;
    __u32 srtt_us;
    __u32 state;  /* BPFIX_RTT_GATE_* */
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_rtt_gate) == 56, "bpfix_rtt_gate layout");

/* Packet capture (bpf/packet_capture.bpf.c): each packet that passes the
 * capture filter goes to the ring buffer as this header followed by
 * cap_len bytes of the frame as the hook saw it. A VLAN tag the NIC or the
 * stack took off the frame is not in those bytes; vlan_present says to put
 * it back (as tcpdump does) after the MAC addresses. Records are rounded
 * up to a size class (BPFIX_CAPTURE_CLASSES), so read cap_len, not the
 * record size. */
#define BPFIX_CAPTURE_MAX_SNAP 65535
struct bpfix_capture_hdr {
    __u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    __u32 ifindex;
    __u32 orig_len;   /* skb->len: the whole frame (a GSO super-packet's too) */
    __u32 cap_len;    /* bytes that follow: min(orig_len, snap length) */
    __u16 vlan_tci;
    __u16 vlan_proto; /* network byte order, as the skb holds it */
    __u8 direction;   /* BPFIX_DIR_* */
    __u8 vlan_present;
    __u8 pad[6];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_capture_hdr) == 32, "bpfix_capture_hdr layout");

enum bpfix_capture_counter_index {
    BPFIX_CAP_SEEN = 0,        /* packets the capture programs ran on */
    BPFIX_CAP_FILTERED = 1,    /* not matched by the capture filter rules */
    BPFIX_CAP_SKIPPED = 2,     /* matched, past the first N of their flow or not the 1 in N */
    BPFIX_CAP_CAPTURED = 3,    /* handed to the ring buffer */
    BPFIX_CAP_LOST = 4,        /* matched, but the ring buffer was full */
    BPFIX_CAP_MAX = 5,
};

#endif /* BPFIX_ABI_H */
