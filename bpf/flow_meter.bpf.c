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
#include "flow_slot.bpf.h"
#include "packet_parse.bpf.h"
#include "sampling.bpf.h"
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


/* DNS ports (set before load): the payloads of packets to or from them go
 * to the dns_events ring buffer. */
volatile const __u32 dns_port_count = 0;
volatile const __u16 dns_ports[BPFIX_DNS_MAX_PORTS] = {};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 18); /* user space sets the size before load */
} dns_events SEC(".maps");

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

static __always_inline void account(void *cache, void *flows, struct packet *p, __u64 skb_len, __u32 segs)
{
    if (cache_enabled) {
        __u32 idx = bpfix_slot_index(&p->key, cache_mask);
        struct bpfix_flow_slot *slot = bpf_map_lookup_elem(cache, &idx);
        if (slot) {
            if (slot->stats.packets == 0) {
                slot->key = p->key;
                add_packet(&slot->stats, p, segs);
                return;
            }
            if (bpfix_same_key(&slot->key, &p->key)) {
                add_packet(&slot->stats, p, segs);
                return;
            }
        }
    }
    account_map(flows, p, skb_len, segs);
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
    if (sampled_out()) {
        count(BPFIX_CNT_SAMPLED_OUT, skb->len);
        return TC_ACT_OK;
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
    struct filter_view f = filter_now();
    if (f.count && filter_action(&p, direction, &f) != BPFIX_FILTER_ACCEPT) {
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
