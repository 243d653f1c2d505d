// SPDX-License-Identifier: GPL-2.0
/* Packet capture: TC programs, attached only while someone wants packets
 * (a live PCAP client, packet reports to the collector), that copy the
 * packets matching the capture filter into a ring buffer, cut at the snap
 * length (see bpfix_capture_hdr). They run before the flow meter and
 * return TC_ACT_UNSPEC, so the meter and every other filter still see each
 * packet; they never change or drop one. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpfix_abi.h"
#include "packet_parse.bpf.h"

/* Set before load from the [capture] config. */
volatile const __u32 snap_len = BPFIX_CAPTURE_MAX_SNAP;
volatile const __u32 first_packets = 0;  /* > 0: only the first N packets of each flow */
volatile const __u32 sampling_interval = 1; /* N > 1: one matching packet in N (per CPU) */
/* > 0: wake the reader only once this many bytes wait (it also reads on a
 * timer); 0: the ring's own rule, a wake-up whenever the reader had caught
 * up, which at a high rate is one per packet. */
volatile const __u32 wakeup_bytes = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22); /* user space sets the size before load */
} capture_ring SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, BPFIX_CAP_MAX);
    __type(key, __u32);
    __type(value, struct bpfix_counter);
} capture_counters SEC(".maps");

/* Packets captured so far per flow (the uniflow key with interface and
 * direction), for first_packets; sized before load. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct bpfix_flow_key);
    __type(value, __u64);
} flow_packets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} sample_count SEC(".maps");

static __always_inline void count(__u32 idx, __u64 bytes)
{
    struct bpfix_counter *c = bpf_map_lookup_elem(&capture_counters, &idx);
    if (c) {
        c->packets += 1;
        c->bytes += bytes;
    }
}

/* One record of `size` data bytes (a constant: the ring buffer reserves
 * only constant sizes) holding the header and cap_len bytes of the frame. */
static __always_inline int emit(struct __sk_buff *skb, const struct bpfix_capture_hdr *h, const __u32 size)
{
    __u8 *rec = bpf_ringbuf_reserve(&capture_ring, sizeof(*h) + size, 0);
    if (!rec)
        return -1;
    __builtin_memcpy(rec, h, sizeof(*h));
    /* The copy length, 1 to size, in the form every verifier bounds (see
     * dns_copy in flow_meter.bpf.c). cap_len >= 1: checked by the caller. */
    __u64 len = h->cap_len;
    len -= 1;
    asm volatile("" : "+r"(len));
    if (len > size - 1)
        len = size - 1;
    len += 1;
    asm volatile("" : "+r"(len));
    if (bpf_skb_load_bytes(skb, 0, rec + sizeof(*h), len) < 0) {
        bpf_ringbuf_discard(rec, 0);
        return -1;
    }
    __u64 flags = 0;
    if (wakeup_bytes)
        flags = bpf_ringbuf_query(&capture_ring, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                                     : BPF_RB_NO_WAKEUP;
    bpf_ringbuf_submit(rec, flags);
    return 0;
}

/* Size classes: a DNS packet takes 128 bytes of the ring, not a jumbo
 * frame's worth; at most twice the bytes needed. */
static __always_inline int emit_sized(struct __sk_buff *skb, const struct bpfix_capture_hdr *h)
{
    __u32 n = h->cap_len;
#define CLASS(size)                    \
    if (n <= size)                     \
        return emit(skb, h, size);
    CLASS(128)
    CLASS(256)
    CLASS(512)
    CLASS(1024)
    CLASS(1536)
    CLASS(2048)
    CLASS(4096)
    CLASS(9216)
    CLASS(16384)
    CLASS(32768)
    CLASS(65536)
#undef CLASS
    return -1;
}

/* Whether a matching packet is one to capture: among the first N of its
 * flow, and the 1 in N. */
static __always_inline int wanted(struct packet *p, int parsed)
{
    if (first_packets && parsed) {
        __u64 *n = bpf_map_lookup_elem(&flow_packets, &p->key);
        if (n) {
            if (*n >= first_packets)
                return 0;
            __sync_fetch_and_add(n, 1);
        } else {
            __u64 one = 1;
            bpf_map_update_elem(&flow_packets, &p->key, &one, BPF_ANY);
        }
    }
    if (sampling_interval > 1) {
        __u32 zero = 0;
        __u64 *n = bpf_map_lookup_elem(&sample_count, &zero);
        if (n) {
            *n += 1;
            if (*n % sampling_interval != 0)
                return 0;
        }
    }
    return 1;
}

static __always_inline int capture(struct __sk_buff *skb, __u8 direction)
{
    __u32 len = skb->len;
    count(BPFIX_CAP_SEEN, len);
    struct packet p = {};
    int parsed = parse_packet(skb, &p) == PARSE_OK;
    p.key.ifindex = skb->ifindex;
    p.key.direction = direction;
    struct filter_view f = filter_now();
    if (f.count) {
        /* Packets that do not parse match no rule: the default decides. */
        __u32 action = parsed ? filter_action(&p, direction, &f) : f.default_action;
        if (action != BPFIX_FILTER_ACCEPT) {
            count(BPFIX_CAP_FILTERED, len);
            return TC_ACT_UNSPEC;
        }
    }
    if (!wanted(&p, parsed)) {
        count(BPFIX_CAP_SKIPPED, len);
        return TC_ACT_UNSPEC;
    }
    if (len == 0)
        return TC_ACT_UNSPEC;
    struct bpfix_capture_hdr h = {};
    h.ts_ns = bpf_ktime_get_ns();
    h.ifindex = skb->ifindex;
    h.orig_len = len;
    h.cap_len = len < snap_len ? len : snap_len;
    h.direction = direction;
    if (skb->vlan_present) {
        h.vlan_present = 1;
        h.vlan_tci = (__u16)skb->vlan_tci;
        h.vlan_proto = (__u16)skb->vlan_proto;
    }
    if (emit_sized(skb, &h) < 0)
        count(BPFIX_CAP_LOST, len);
    else
        count(BPFIX_CAP_CAPTURED, len);
    return TC_ACT_UNSPEC;
}

SEC("tc")
int capture_ingress(struct __sk_buff *skb)
{
    return capture(skb, BPFIX_DIR_INGRESS);
}

SEC("tc")
int capture_egress(struct __sk_buff *skb)
{
    return capture(skb, BPFIX_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
