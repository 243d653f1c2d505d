// SPDX-License-Identifier: GPL-2.0
/* TC flow meter: parses every packet crossing the hook (Ethernet, 802.1Q /
 * QinQ, IPv4 with options and fragments, IPv6 with extension headers and
 * fragments, TCP/UDP/UDP-Lite/SCTP/DCCP/ICMP/ICMPv6) into the uniflow key
 * of bpf/bpfix_abi.h and aggregates it in a per-CPU hash. The rules match
 * the pcap path (docs/flow-semantics.md) so both engines give the same
 * flows; the fixture tests in tests/bpf check that. Every packet ends up in
 * a flow map or in a counter. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "bpfix_abi.h"
#include "tick_clock.bpf.h"

/* Sized from the configuration before load (bpf_map__set_max_entries). */
struct flow_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct bpfix_flow_key);
    __type(value, struct bpfix_flow_stats);
};
struct flow_map flows_0 SEC(".maps");
struct flow_map flows_1 SEC(".maps");

/* The per-CPU flow caches (bpfix_flow_slot); their size, a power of two,
 * is set before load, and `cache_mask` to that size - 1. cache_slots = 0
 * in the config loads them with one slot and `cache_enabled` 0. */
struct cache_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct bpfix_flow_slot);
};
struct cache_map cache_0 SEC(".maps");
struct cache_map cache_1 SEC(".maps");
volatile const __u32 cache_enabled = 1;
volatile const __u32 cache_mask = 4095;

/* Which flow map the programs update (0: flows_0, 1: flows_1). A global in
 * .bss: user space flips it through the skeleton's memory map, the programs
 * read it with a plain load. */
volatile __u32 active_flows = 0;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, BPFIX_CNT_MAX);
    __type(key, __u32);
    __type(value, struct bpfix_counter);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct bpfix_frag_key);
    __type(value, struct bpfix_frag_ports);
} frag_ports SEC(".maps");

/* Systematic count-based sampling (RFC 5476): 1 packet in every
 * `sampling_interval`, counted per CPU. Set before load; 1 meters all. */
volatile const __u32 sampling_interval = 1;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} sample_count SEC(".maps");

/* Filter rules (first match wins); set before load. With no rules every
 * packet is metered. */
volatile const __u32 dns_port_count = 0;
volatile const __u16 dns_ports[BPFIX_DNS_MAX_PORTS] = {};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 18); /* user space sets the size before load */
} dns_events SEC(".maps");

volatile const __u32 filter_rule_count = 0;
volatile const __u32 filter_default_action = BPFIX_FILTER_ACCEPT;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, BPFIX_MAX_FILTER_RULES);
    __type(key, __u32);
    __type(value, struct bpfix_filter_rule);
} filter_rules SEC(".maps");

#define ETH_P_8021AD_ 0x88A8
#define ETH_P_QINQ_LEGACY 0x9100
#define MAX_VLAN_TAGS 4
#define MAX_IPV6_EXT 16

enum parse_status { PARSE_OK, PARSE_NON_IP, PARSE_MALFORMED };

struct packet {
    struct bpfix_flow_key key;
    __u64 ip_len;
    __u16 tcp_flags;
    __u8 tos;
    __u8 fragment;
    __u8 first_fragment;
    __u32 frag_id;
    __u32 hdr_len; /* IP + transport header bytes, repeated in every GSO segment */
    __u32 payload_off; /* TCP/UDP payload: [payload_off, payload_end) in the skb; 0: none */
    __u32 payload_end;
};

/* Copies header bytes at offset `off` into `buf`: `len` (a constant) of
 * them straight from the linear packet data when they lie there (nearly
 * every packet; no helper call), else the `need` <= `len` bytes the caller
 * reads through bpf_skb_load_bytes (headers in paged data, or a packet
 * that ends sooner). Returns 0, or < 0 when the packet is shorter. */
static __always_inline int load_upto(struct __sk_buff *skb, __u32 off, void *buf, __u32 len, __u32 need)
{
    __u8 *data = (__u8 *)(long)skb->data;
    __u8 *data_end = (__u8 *)(long)skb->data_end;
    if (off < 0x4000) {
        __u8 *p = data + off;
        /* keep the comparison on packet pointers, which the verifier tracks */
        asm volatile("" : "+r"(p));
        if (p + len <= data_end) {
            __builtin_memcpy(buf, __builtin_assume_aligned(p, 4), len);
            return 0;
        }
    }
    return bpf_skb_load_bytes(skb, off, buf, need);
}

static __always_inline int load(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
    return load_upto(skb, off, buf, len, len);
}

/* Transport header at `off`; `end` is where the IP packet's data ends in
 * the skb (the IP length, or the skb if shorter). */
static __always_inline int parse_transport(struct __sk_buff *skb, __u32 off, __u32 end, struct packet *p)
{
    __u8 proto = p->key.protocol;
    int need = bpfix_transport_header_len(proto);
    if (need == 0)
        return PARSE_OK;
    if (off + need > end)
        return PARSE_MALFORMED;
    __u8 th[20] __attribute__((aligned(8))) = {};
    if (load_upto(skb, off, th, sizeof th, need & 31) < 0)
        return PARSE_MALFORMED;
    if (proto == BPFIX_PROTO_ICMP || proto == BPFIX_PROTO_ICMPV6) {
        p->key.icmp_type_code = (__u16)th[0] << 8 | th[1];
        return PARSE_OK;
    }
    p->key.src_port = (__u16)th[0] << 8 | th[1];
    p->key.dst_port = (__u16)th[2] << 8 | th[3];
    p->hdr_len += need;
    if (proto == BPFIX_PROTO_TCP) {
        p->tcp_flags = (__u16)(th[12] & 1) << 8 | th[13];
        p->hdr_len += (__u32)(th[12] >> 4) * 4 - need;
        __u32 doff = (__u32)(th[12] >> 4) * 4;
        if (doff >= 20 && off + doff < end) {
            p->payload_off = off + doff;
            p->payload_end = end;
        }
    } else if (proto == BPFIX_PROTO_UDP && off + 8 < end) {
        p->payload_off = off + 8;
        p->payload_end = end;
    }
    return PARSE_OK;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, __u32 off, struct packet *p)
{
    __u8 h[20] __attribute__((aligned(8)));
    if (load(skb, off, h, sizeof h) < 0)
        return PARSE_MALFORMED;
    if ((h[0] >> 4) != 4)
        return PARSE_MALFORMED;
    __u32 ihl = (__u32)(h[0] & 0x0f) * 4;
    __u32 total = (__u32)h[2] << 8 | h[3];
    /* BIG TCP over IPv4 (GSO packets over 64 KiB) sets Total Length 0: the
     * packet is the rest of the skb. */
    if (total == 0 && skb->gso_segs > 1 && skb->len > off)
        total = skb->len - off;
    if (ihl < 20 || total < ihl || off + ihl > skb->len)
        return PARSE_MALFORMED;
    p->key.ip_version = BPFIX_IPV4;
    p->key.protocol = h[9];
    p->tos = h[1];
    __builtin_memcpy(p->key.src_addr, h + 12, 4);
    __builtin_memcpy(p->key.dst_addr, h + 16, 4);
    p->ip_len = total;
    __u16 frag = (__u16)h[6] << 8 | h[7];
    if ((frag & 0x1fff) || (frag & 0x2000)) {
        p->fragment = 1;
        p->first_fragment = (frag & 0x1fff) == 0;
        p->frag_id = (__u16)h[4] << 8 | h[5];
        if (!p->first_fragment)
            return PARSE_OK;
    }
    __u32 end = off + total < skb->len ? off + total : skb->len;
    p->hdr_len = ihl;
    return parse_transport(skb, off + ihl, end, p);
}

/* IPv6 Payload Length 0 is a jumbogram only with a Jumbo Payload option
 * (RFC 2675) in the hop-by-hop header. The options are walked like the pcap
 * parser does (up to 16 of them), one bpf_loop step per option, so the
 * verifier checks one step instead of every path through 16 of them. Off
 * the common path: reads through bpf_skb_load_bytes. */
struct jumbo_walk {
    struct __sk_buff *skb;
    __u32 off;    /* the hop-by-hop header */
    __u32 hlen;   /* its length */
    __u32 o;      /* the option being read, from the header's start */
    __u32 length; /* the Jumbo Payload Length found, or 0 */
};

static long jumbo_option_step(__u32 index, void *ctx)
{
    struct jumbo_walk *w = ctx;
    __u8 opt[6];
    __u32 o = w->o;
    if (o >= w->hlen || o > 2048)
        return 1;
    if (bpf_skb_load_bytes(w->skb, w->off + o, opt, 1) < 0)
        return 1;
    if (opt[0] == 0) { /* Pad1 */
        w->o = o + 1;
        return 0;
    }
    if (o + 2 > w->hlen || bpf_skb_load_bytes(w->skb, w->off + o, opt, 2) < 0)
        return 1;
    if (opt[0] == 0xc2 && opt[1] == 4 && o + 6 <= w->hlen) {
        if (bpf_skb_load_bytes(w->skb, w->off + o, opt, 6) == 0)
            w->length = (__u32)opt[2] << 24 | (__u32)opt[3] << 16 | (__u32)opt[4] << 8 | opt[5];
        return 1;
    }
    w->o = o + 2 + (__u32)opt[1];
    return 0;
}

/* The Jumbo Payload Length in the hop-by-hop header at `off`, or 0. */
static __always_inline __u32 jumbo_payload_length(struct __sk_buff *skb, __u32 off)
{
    __u8 h[2];
    if (bpf_skb_load_bytes(skb, off, h, 2) < 0)
        return 0;
    struct jumbo_walk w = {.skb = skb, .off = off, .hlen = ((__u32)h[1] + 1) * 8, .o = 2};
    bpf_loop(16, jumbo_option_step, &w, 0);
    return w.length;
}

static __always_inline int is_ipv6_extension(__u8 next)
{
    return next == 0 || next == 43 || next == 60 || next == 135 || next == 139 || next == 140 || next == 253 ||
           next == 254 || next == 51 || next == 44;
}

/* Walks the IPv6 extension headers from `cur` (the next header in
 * p->key.protocol) up to the upper-layer header, within `end`. Returns that
 * header's offset with p->key.protocol set to its type (and the fragment
 * fields set), or -1 when the chain is malformed. A global function: the
 * verifier checks it once on its own, not once per path that reaches it. */
__attribute__((noinline)) long ipv6_extension_headers(struct __sk_buff *skb, struct packet *p, __u32 cur, __u32 end)
{
    if (!p)
        return -1;
    __u8 next = p->key.protocol;
    int i;
    for (i = 0; i < MAX_IPV6_EXT + 1; i++) {
        __u8 eh[8];
        if (!is_ipv6_extension(next))
            break;
        if (i >= MAX_IPV6_EXT || cur + 8 > end || bpf_skb_load_bytes(skb, cur, eh, 8) < 0)
            return -1;
        if (next == 44) { /* fragment */
            __u16 fo = (__u16)eh[2] << 8 | eh[3];
            p->fragment = 1;
            p->first_fragment = (fo >> 3) == 0;
            p->frag_id = (__u32)eh[4] << 24 | (__u32)eh[5] << 16 | (__u32)eh[6] << 8 | eh[7];
            next = eh[0];
            cur += 8;
            if (!p->first_fragment)
                break;
            continue;
        }
        if (next == 51) /* AH: length in 4-octet units, minus 2 */
            cur += ((__u32)eh[1] + 2) * 4;
        else
            cur += ((__u32)eh[1] + 1) * 8;
        next = eh[0];
        if (cur > end)
            return -1;
    }
    p->key.protocol = next;
    return cur;
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, __u32 off, struct packet *p)
{
    __u8 h[40] __attribute__((aligned(8)));
    if (load(skb, off, h, sizeof h) < 0)
        return PARSE_MALFORMED;
    if ((h[0] >> 4) != 6)
        return PARSE_MALFORMED;
    p->key.ip_version = BPFIX_IPV6;
    p->tos = (__u8)((((__u16)h[0] << 8 | h[1]) >> 4) & 0xff);
    __builtin_memcpy(p->key.src_addr, h + 8, 16);
    __builtin_memcpy(p->key.dst_addr, h + 24, 16);
    __u64 payload = (__u16)h[4] << 8 | h[5];
    __u8 next = h[6];
    /* Octets of a hop-by-hop header that exists only in this GSO
     * super-packet, not in the segments on the wire. */
    __u32 gso_only = 0;
    if (payload == 0 && next == 0) {
        payload = jumbo_payload_length(skb, off + 40);
        /* BIG TCP as the IPv6 stack builds it (6.18 here): it adds an
         * 8-octet hop-by-hop header holding only the Jumbo option, and
         * removes it again when it cuts the packet into segments. */
        __u8 hbh[4];
        if (payload && skb->gso_segs > 1 && bpf_skb_load_bytes(skb, off + 40, hbh, 4) == 0 && hbh[1] == 0 &&
            hbh[2] == 0xc2 && hbh[3] == 4)
            gso_only = 8;
    }
    /* A GSO packet with Payload Length 0 and no Jumbo option (BIG TCP
     * without the hop-by-hop header): the packet is the rest of the skb. */
    if (payload == 0 && skb->gso_segs > 1 && skb->len > off + 40)
        payload = skb->len - off - 40;
    p->ip_len = payload + 40 - gso_only;
    __u32 end = off + 40 + payload < skb->len ? off + 40 + (__u32)payload : skb->len;
    __u32 cur = off + 40;
    p->key.protocol = next;
    if (is_ipv6_extension(next)) {
        long c = ipv6_extension_headers(skb, p, cur, end);
        if (c < 0)
            return PARSE_MALFORMED;
        if (p->fragment && !p->first_fragment)
            return PARSE_OK;
        cur = (__u32)c;
        next = p->key.protocol;
    }
    p->hdr_len = cur - off - gso_only;
    if (next == 59)
        return PARSE_OK;
    return parse_transport(skb, cur, end, p);
}

/* The network and transport headers at `off`. (Inlined: as a global
 * function the verifier would check it once for any offset instead of once
 * per number of VLAN tags, 8k instructions fewer, but the call cost about
 * 6 ns per packet under BPF_PROG_TEST_RUN, a tenth of the program.) */
static __always_inline int parse_ip(struct __sk_buff *skb, struct packet *p, __u32 off, __u32 ethertype)
{
    if (ethertype == ETH_P_IP)
        return parse_ipv4(skb, off, p);
    return parse_ipv6(skb, off, p);
}

static __always_inline int parse_packet(struct __sk_buff *skb, struct packet *p)
{
    __u8 eth[14] __attribute__((aligned(8)));
    if (load(skb, 0, eth, sizeof eth) < 0)
        return PARSE_MALFORMED;
    __u16 type = (__u16)eth[12] << 8 | eth[13];
    __u32 off = 14;
    /* A tag the NIC or the stack already took off the frame is the
     * outermost one; the tags still in the frame follow it. Tags are
     * numbered in that order, as the pcap parser sees them on the wire. */
    int count = 0;
    if (skb->vlan_present) {
        p->key.vlan_id = skb->vlan_tci & 0x0fff;
        count = 1;
    }
    int i;
    for (i = 0; i < MAX_VLAN_TAGS + 1; i++) {
        if (type != ETH_P_8021Q && type != ETH_P_8021AD_ && type != ETH_P_QINQ_LEGACY)
            break;
        if (count >= MAX_VLAN_TAGS)
            return PARSE_MALFORMED;
        __u8 tag[4] __attribute__((aligned(8)));
        if (load(skb, off, tag, 4) < 0)
            return PARSE_MALFORMED;
        __u16 vid = ((__u16)tag[0] << 8 | tag[1]) & 0x0fff;
        if (count == 0)
            p->key.vlan_id = vid;
        else if (count == 1)
            p->key.inner_vlan_id = vid;
        count++;
        type = (__u16)tag[2] << 8 | tag[3];
        off += 4;
    }
    if (type != ETH_P_IP && type != ETH_P_IPV6)
        return PARSE_NON_IP;
    return parse_ip(skb, p, off, type);
}

static __always_inline void count_n(__u32 idx, __u64 packets, __u64 bytes)
{
    struct bpfix_counter *c = bpf_map_lookup_elem(&counters, &idx);
    if (c) {
        c->packets += packets;
        c->bytes += bytes;
    }
}

static __always_inline void count(__u32 idx, __u64 bytes)
{
    count_n(idx, 1, bytes);
}

static __always_inline void fragment_ports(struct packet *p)
{
    struct bpfix_frag_key fk = {};
    __builtin_memcpy(fk.src_addr, p->key.src_addr, 16);
    __builtin_memcpy(fk.dst_addr, p->key.dst_addr, 16);
    fk.id = p->frag_id;
    fk.protocol = p->key.ip_version == BPFIX_IPV4 ? p->key.protocol : 0;
    fk.ip_version = p->key.ip_version;
    if (p->first_fragment) {
        struct bpfix_frag_ports v = {
            .src_port = p->key.src_port,
            .dst_port = p->key.dst_port,
            .icmp_type_code = p->key.icmp_type_code,
        };
        bpf_map_update_elem(&frag_ports, &fk, &v, BPF_ANY);
        return;
    }
    struct bpfix_frag_ports *v = bpf_map_lookup_elem(&frag_ports, &fk);
    if (v) {
        p->key.src_port = v->src_port;
        p->key.dst_port = v->dst_port;
        p->key.icmp_type_code = v->icmp_type_code;
    }
}


/* Adds one packet (or a GSO super-packet of `segs`) to a flow's counters. */
static __always_inline void add_packet(struct bpfix_flow_stats *s, const struct packet *p, __u32 segs)
{
    if (s->packets == 0) {
        /* A flow's first packet on this CPU reads the exact clock. */
        __u64 now = bpf_ktime_get_ns();
        s->first_ns = now;
        s->last_ns = now;
        s->tos = p->tos;
    } else {
        /* Later packets: the time of this tick's first packet (so flowEnd
         * is exact to a tick, flowStart exact). */
        __u64 now = tick_time_ns();
        if (now > s->last_ns)
            s->last_ns = now;
    }
    /* A GSO super-packet is `segs` packets on the wire, each with its own
     * copy of the IP and transport headers. */
    s->packets += segs;
    s->bytes += p->ip_len + (__u64)(segs - 1) * p->hdr_len;
    s->tcp_flags |= p->tcp_flags;
}

static __always_inline void account_map(void *flows, struct packet *p, __u64 skb_len, __u32 segs)
{
    struct bpfix_flow_stats *s = bpf_map_lookup_elem(flows, &p->key);
    if (!s) {
        struct bpfix_flow_stats fresh = {};
        /* Another CPU may create the same key at the same moment: then
         * EEXIST, and the lookup below finds it. */
        if (bpf_map_update_elem(flows, &p->key, &fresh, BPF_NOEXIST) < 0 &&
            !bpf_map_lookup_elem(flows, &p->key)) {
            count_n(BPFIX_CNT_MAP_FULL, segs, skb_len);
            return;
        }
        s = bpf_map_lookup_elem(flows, &p->key);
        if (!s) {
            count_n(BPFIX_CNT_MAP_FULL, segs, skb_len);
            return;
        }
    }
    add_packet(s, p, segs);
}

/* The cache slot of a key: its words times distinct odd constants, summed
 * (independent multiplies, so the CPU overlaps them), high bits. Source
 * and destination words have different constants: the two directions of a
 * conversation land in different slots. */
static __always_inline __u32 slot_index(const struct bpfix_flow_key *k)
{
    const __u64 *w = (const __u64 *)k;
    __u64 h = w[0] * 0x9e3779b97f4a7c15ULL + w[1] * 0xc2b2ae3d27d4eb4fULL + w[2] * 0x165667b19e3779f9ULL +
              w[3] * 0xd6e8feb86659fd93ULL + w[4] * 0xff51afd7ed558ccdULL + w[5] * 0xc4ceb9fe1a85ec53ULL +
              (__u64)k->direction * 0x27d4eb2f165667c5ULL;
    h ^= h >> 29;
    return (__u32)(h >> 32) & cache_mask;
}

static __always_inline int same_key(const struct bpfix_flow_key *a, const struct bpfix_flow_key *b)
{
    const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] && x[5] == y[5] &&
           a->direction == b->direction;
}

static __always_inline void account(void *cache, void *flows, struct packet *p, __u64 skb_len, __u32 segs)
{
    if (cache_enabled) {
        __u32 idx = slot_index(&p->key);
        struct bpfix_flow_slot *slot = bpf_map_lookup_elem(cache, &idx);
        if (slot) {
            if (slot->stats.packets == 0) {
                slot->key = p->key;
                add_packet(&slot->stats, p, segs);
                return;
            }
            if (same_key(&slot->key, &p->key)) {
                add_packet(&slot->stats, p, segs);
                return;
            }
        }
    }
    account_map(flows, p, skb_len, segs);
}

static __always_inline int addr_in(const __u8 *addr, const __u8 *net, const __u8 *mask)
{
    __u64 a0, a1, n0, n1, m0, m1;
    __builtin_memcpy(&a0, addr, 8);
    __builtin_memcpy(&a1, addr + 8, 8);
    __builtin_memcpy(&n0, net, 8);
    __builtin_memcpy(&n1, net + 8, 8);
    __builtin_memcpy(&m0, mask, 8);
    __builtin_memcpy(&m1, mask + 8, 8);
    return (a0 & m0) == n0 && (a1 & m1) == n1;
}

static __always_inline int rule_matches(const struct bpfix_filter_rule *r, const struct packet *p, __u8 direction)
{
    if (r->directions && !(r->directions & (1 << direction)))
        return 0;
    if (r->ip_version && r->ip_version != p->key.ip_version)
        return 0;
    if (r->protocol && r->protocol != p->key.protocol)
        return 0;
    if (r->flags & BPFIX_FILTER_F_PEER) {
        if (!addr_in(p->key.src_addr, r->src_addr, r->src_mask) &&
            !addr_in(p->key.dst_addr, r->src_addr, r->src_mask))
            return 0;
    } else {
        if (!addr_in(p->key.src_addr, r->src_addr, r->src_mask))
            return 0;
        if (!addr_in(p->key.dst_addr, r->dst_addr, r->dst_mask))
            return 0;
    }
    __u16 sp = p->key.src_port, dp = p->key.dst_port;
    if (r->flags & BPFIX_FILTER_F_EITHER_PORT) {
        if (!(sp >= r->sport_lo && sp <= r->sport_hi) && !(dp >= r->sport_lo && dp <= r->sport_hi))
            return 0;
    } else {
        if (sp < r->sport_lo || sp > r->sport_hi)
            return 0;
        if (dp < r->dport_lo || dp > r->dport_hi)
            return 0;
    }
    return 1;
}

static __always_inline __u32 filter_action(const struct packet *p, __u8 direction)
{
    __u32 i;
    for (i = 0; i < BPFIX_MAX_FILTER_RULES; i++) {
        if (i >= filter_rule_count)
            break;
        __u32 idx = i;
        const struct bpfix_filter_rule *r = bpf_map_lookup_elem(&filter_rules, &idx);
        if (r && rule_matches(r, p, direction))
            return r->action;
    }
    return filter_default_action;
}

#ifdef BPFIX_SHARED_MAP_VARIANT
/* Not the exporter's datapath: the alternatives bench/maps measures it
 * against (docs/live-mode.md). One hash shared by every CPU, updated with
 * atomic adds (BPFIX_SHARED_MAP_VARIANT 1), under a bpf_spin_lock (2), or
 * with plain adds (3: CPUs racing on one flow lose counts). */
struct shared_stats {
    struct bpf_spin_lock lock;
    __u32 pad;
    __u64 packets;
    __u64 bytes;
    __u64 first_ns;
    __u64 last_ns;
    __u64 tcp_flags;
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct bpfix_flow_key);
    __type(value, struct shared_stats);
} shared_flows SEC(".maps");

static __always_inline void account_shared(struct packet *p, __u64 skb_len, __u32 segs)
{
    struct shared_stats *s = bpf_map_lookup_elem(&shared_flows, &p->key);
    if (!s) {
        struct shared_stats fresh = {};
        fresh.first_ns = bpf_ktime_get_ns();
        bpf_map_update_elem(&shared_flows, &p->key, &fresh, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&shared_flows, &p->key);
        if (!s) {
            count_n(BPFIX_CNT_MAP_FULL, segs, skb_len);
            return;
        }
    }
    __u64 now = tick_time_ns();
    __u64 bytes = p->ip_len + (__u64)(segs - 1) * p->hdr_len;
#if BPFIX_SHARED_MAP_VARIANT == 1
    __sync_fetch_and_add(&s->packets, segs);
    __sync_fetch_and_add(&s->bytes, bytes);
    __sync_fetch_and_or(&s->tcp_flags, p->tcp_flags);
    s->last_ns = now;
#elif BPFIX_SHARED_MAP_VARIANT == 2
    bpf_spin_lock(&s->lock);
    s->packets += segs;
    s->bytes += bytes;
    s->tcp_flags |= p->tcp_flags;
    s->last_ns = now;
    bpf_spin_unlock(&s->lock);
#else
    s->packets += segs;
    s->bytes += bytes;
    s->tcp_flags |= p->tcp_flags;
    s->last_ns = now;
#endif
}
#endif

/* DNS enrichment: the payload of a packet to or from a DNS port, to user
 * space through the ring buffer (see bpfix_dns_event). */
static __always_inline void dns_copy(struct __sk_buff *skb, const struct packet *p)
{
    if (!p->payload_off || p->payload_end <= p->payload_off)
        return;
    int match = 0;
    for (__u32 i = 0; i < BPFIX_DNS_MAX_PORTS; i++) {
        if (i >= dns_port_count)
            break;
        if (p->key.src_port == dns_ports[i] || p->key.dst_port == dns_ports[i])
            match = 1;
    }
    if (!match)
        return;
    struct bpfix_dns_event *ev = bpf_ringbuf_reserve(&dns_events, sizeof(*ev), 0);
    if (!ev) {
        count(BPFIX_CNT_DNS_LOST, skb->len);
        return;
    }
    __u64 len = (__u32)(p->payload_end - p->payload_off); /* >= 1: checked above */
    ev->key = p->key;
    ev->ts_ns = bpf_ktime_get_ns();
    ev->orig_len = (__u32)len;
    ev->pad = 0;
    /* The copy length, 1 to BPFIX_DNS_SNAP, built so that every verifier
     * sees that range: a clamp of len - 1, then + 1 (Debian 12's 6.1 does
     * not narrow "len != 0" to len >= 1 and refused the call with a
     * possibly empty size). The barriers keep the compiler from folding it
     * back into a clamp of len, and bound the register the call gets. */
    len -= 1;
    asm volatile("" : "+r"(len));
    if (len > BPFIX_DNS_SNAP - 1)
        len = BPFIX_DNS_SNAP - 1;
    len += 1;
    asm volatile("" : "+r"(len));
    if (bpf_skb_load_bytes(skb, p->payload_off, ev->data, len) < 0) {
        bpf_ringbuf_discard(ev, 0);
        count(BPFIX_CNT_DNS_LOST, skb->len);
        return;
    }
    ev->len = (__u32)len;
    bpf_ringbuf_submit(ev, 0);
}

static __always_inline int meter(struct __sk_buff *skb, __u8 direction)
{
    if (sampling_interval > 1) {
        __u32 zero = 0;
        __u64 *n = bpf_map_lookup_elem(&sample_count, &zero);
        if (n) {
            *n += 1;
            if (*n % sampling_interval != 0) {
                count(BPFIX_CNT_SAMPLED_OUT, skb->len);
                return TC_ACT_OK;
            }
        }
    }
    struct packet p = {};
    int st = parse_packet(skb, &p);
    if (st == PARSE_NON_IP) {
        count(BPFIX_CNT_NON_IP, skb->len);
        return TC_ACT_OK;
    }
    if (st != PARSE_OK) {
        count(BPFIX_CNT_MALFORMED, skb->len);
        return TC_ACT_OK;
    }
    if (p.fragment)
        fragment_ports(&p);
    if (filter_rule_count && filter_action(&p, direction) != BPFIX_FILTER_ACCEPT) {
        count(BPFIX_CNT_FILTERED, skb->len);
        return TC_ACT_OK;
    }
    p.key.ifindex = skb->ifindex;
    p.key.direction = direction;
    if (dns_port_count && (!p.fragment || p.first_fragment))
        dns_copy(skb, &p);
    __u32 segs = skb->gso_segs > 1 && !p.fragment ? skb->gso_segs : 1;
#ifdef BPFIX_SHARED_MAP_VARIANT
    account_shared(&p, skb->len, segs);
    return TC_ACT_OK;
#endif
    if (active_flows)
        account(&cache_1, &flows_1, &p, skb->len, segs);
    else
        account(&cache_0, &flows_0, &p, skb->len, segs);
    return TC_ACT_OK;
}

SEC("tc")
int meter_ingress(struct __sk_buff *skb)
{
    return meter(skb, BPFIX_DIR_INGRESS);
}

SEC("tc")
int meter_egress(struct __sk_buff *skb)
{
    return meter(skb, BPFIX_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
