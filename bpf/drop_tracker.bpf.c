// SPDX-License-Identifier: GPL-2.0
/* Kernel packet drops, attributed to flows: a tp_btf/kfree_skb program
 * (kfree_skb is traced only for real drops; freed-after-use packets go to
 * consume_skb). For each dropped skb on a metered interface of our network
 * namespace it reads the drop reason and parses the packet's IPv4/IPv6 and
 * TCP/UDP/... headers from skb->head at the network header offset into the
 * same struct bpfix_flow_key the TC meter (flow_meter.bpf.c) fills, then
 * counts the drop under that key. Attribution (docs/live-mode.md): a packet
 * the kernel received (skb_iif set) is keyed at the ingress of the
 * interface it arrived on, where the TC ingress hook metered it before the
 * stack dropped it; a locally sent packet at the egress of its output
 * device. Kernel structures are read through the minimal definitions
 * below with CO-RE, so field offsets come from the running kernel's BTF:
 * the skb and what it points to with plain loads (a tp_btf argument is a
 * typed pointer), the rest with BPF_CORE_READ. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "bpfix_abi.h"
#include "flow_slot.bpf.h"
#include "sampling.bpf.h"
#include "tick_clock.bpf.h"

/* Only the members read here; libbpf relocates each access against the
 * kernel's own layout (fields inside anonymous unions/structs included). */
struct net_device;
struct ns_common {
    unsigned int inum;
} __attribute__((preserve_access_index));
struct net {
    struct ns_common ns;
} __attribute__((preserve_access_index));
typedef struct {
    struct net *net;
} possible_net_t;
struct net_device {
    int ifindex;
    possible_net_t nd_net;
} __attribute__((preserve_access_index));
struct dst_entry {
    struct net_device *dev;
} __attribute__((preserve_access_index));
struct skb_shared_info {
    unsigned short gso_size;
    unsigned short gso_segs;
} __attribute__((preserve_access_index));
struct sock_common {
    unsigned short skc_family;
    volatile unsigned char skc_state;
} __attribute__((preserve_access_index));
struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
} __attribute__((preserve_access_index));
struct sk_buff {
    struct sock *sk;
    struct net_device *dev;
    unsigned long _skb_refdst;
    unsigned int len;
    __u16 vlan_tci;
    __be16 vlan_proto;
    int skb_iif;
    __be16 protocol;
    __u16 transport_header;
    __u16 network_header;
    __u16 mac_header;
    unsigned int end;
    unsigned char *head;
} __attribute__((preserve_access_index));
/* Kernels before 6.1 flagged a VLAN tag in the skb with a bit. */
struct sk_buff___vlan_bit {
    __u8 vlan_present : 1;
} __attribute__((preserve_access_index));
enum skb_drop_reason {
    SKB_NOT_DROPPED_YET = 0,
    SKB_CONSUMED = 1,
};

/* The network namespace (inode number of /proc/self/ns/net) whose
 * interfaces the exporter meters; set before load. ifindexes are per
 * namespace, so drops elsewhere are not ours. */
volatile const __u32 netns_inum = 0;

/* Interfaces the TC meter is attached to (user space keeps them in step):
 * ifindexes below BPFIX_WATCHED_ARRAY as bits of an array (its lookup is
 * inlined: every drop asks), larger ones (hosts that made many
 * interfaces) in a hash. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, BPFIX_WATCHED_ARRAY / 64);
    __type(key, __u32);
    __type(value, __u64);
} watched_low SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u8);
} watched SEC(".maps");

static __always_inline int is_watched(__u32 ifindex)
{
    if (ifindex < BPFIX_WATCHED_ARRAY) {
        __u32 word = ifindex / 64;
        __u64 *bits = bpf_map_lookup_elem(&watched_low, &word);
        return bits && (*bits >> (ifindex % 64)) & 1;
    }
    return bpf_map_lookup_elem(&watched, &ifindex) != 0;
}


/* Drops keyed by flow, double-buffered like the flow maps: the program
 * writes the map named by `active_drops`, user space flips it and drains
 * the other. Sized before load. */
struct drop_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct bpfix_flow_key);
    __type(value, struct bpfix_drop_stats);
};
struct drop_map drops_0 SEC(".maps");
struct drop_map drops_1 SEC(".maps");
volatile __u32 active_drops = 0;

/* In front of each drop map, a per-CPU direct-mapped cache (struct
 * bpfix_drop_slot): a flood of drops from a few flows counts in its slots
 * without a hash update per drop (that update was half the tracer's cost). */
struct drop_cache {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, BPFIX_DROP_CACHE_SLOTS);
    __type(key, __u32);
    __type(value, struct bpfix_drop_slot);
};
struct drop_cache drop_cache_0 SEC(".maps");
struct drop_cache drop_cache_1 SEC(".maps");

/* Drops that could not be keyed, per reason (totals, never cleared). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, BPFIX_MAX_DROP_REASONS);
    __type(key, __u32);
    __type(value, struct bpfix_counter);
} unkeyed SEC(".maps");

#define ETH_P_8021AD_ 0x88A8
#define ETH_P_QINQ_LEGACY 0x9100
#define MAX_VLAN_TAGS 4
#define MAX_IPV6_EXT 8

/* Two ways to read the packet's bytes and its shared info, one program
 * each (user space loads the one the kernel can run, DropTracker):
 * kernels whose bpf_rdonly_cast() casts to void (6.17+: enum bpf_features
 * has BPF_FEAT_RDONLY_CAST_TO_VOID) read them with plain loads, which the
 * kernel guards (a bad address reads zeros: the headers then do not parse
 * and the drop is counted unkeyed); older ones call bpf_probe_read_kernel,
 * about 15-20 ns a call. Weak: kernels before 6.2 have no such kfunc. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

static __always_inline int read_at(const unsigned char *head, __u32 off, void *buf, __u32 len, const int direct)
{
    if (direct) {
        /* Word loads, not one per byte: each guarded load costs a bounds
         * check of its own, and x86 and arm64 load unaligned words. The
         * buffers are 8-byte aligned on the stack. */
        const __u8 *p = bpf_rdonly_cast(head + off, 0);
        __builtin_memcpy(buf, __builtin_assume_aligned(p, 8), len);
        return 0;
    }
    return bpf_probe_read_kernel(buf, len, head + off);
}

static __always_inline int is_tag(__u16 type)
{
    return type == ETH_P_8021Q || type == ETH_P_8021AD_ || type == ETH_P_QINQ_LEGACY;
}

/* VLAN ids as the TC meter numbers them: the tag the stack took off the
 * frame first, then the tags still between the MAC and network headers. */
static __always_inline void vlans(struct sk_buff *skb, const unsigned char *head, __u16 nh,
                                  struct bpfix_flow_key *key, const int direct)
{
    int count = 0;
    int present;
    if (bpf_core_field_exists(((struct sk_buff___vlan_bit *)0)->vlan_present))
        present = BPF_CORE_READ_BITFIELD_PROBED((struct sk_buff___vlan_bit *)skb, vlan_present);
    else
        present = skb->vlan_proto != 0;
    if (present) {
        key->vlan_id = skb->vlan_tci & 0x0fff;
        count = 1;
    }
    __u16 mh = skb->mac_header;
    /* Tags still in the frame sit between the MAC and network headers:
     * with none (nh right after the 14-byte MAC header), nothing to read. */
    if (mh == (__u16)~0U || mh + 14 >= nh)
        return;
    __u8 t[2] __attribute__((aligned(8)));
    if (read_at(head, mh + 12, t, 2, direct) < 0)
        return;
    __u16 type = (__u16)t[0] << 8 | t[1];
    __u32 off = mh + 14;
    int i;
    for (i = 0; i < MAX_VLAN_TAGS; i++) {
        if (!is_tag(type) || off + 4 > nh)
            break;
        __u8 tag[4] __attribute__((aligned(8)));
        if (read_at(head, off, tag, 4, direct) < 0)
            return;
        __u16 vid = ((__u16)tag[0] << 8 | tag[1]) & 0x0fff;
        if (count == 0)
            key->vlan_id = vid;
        else if (count == 1)
            key->inner_vlan_id = vid;
        count++;
        type = (__u16)tag[2] << 8 | tag[3];
        off += 4;
    }
}

static __always_inline int is_ipv6_extension(__u8 next)
{
    return next == 0 || next == 43 || next == 60 || next == 135 || next == 139 || next == 140 || next == 253 ||
           next == 254 || next == 51 || next == 44;
}

/* Fills the key's addresses, protocol and ports from the IP header at `nh`;
 * returns the IP length (0: not parseable) and the IP + transport header
 * length in *hdr_len. Later fragments keep ports 0 (the TC meter's
 * fragment table is not consulted). One read takes the IP header and the
 * transport header after it when no options or extension headers sit in
 * between (each bpf_probe_read_kernel costs, and every drop of a flooded
 * socket comes here). */
static __always_inline __u32 parse_ip(const unsigned char *head, __u32 nh, __u16 proto,
                                      struct bpfix_flow_key *key, __u32 *hdr_len, const int direct)
{
    __u32 ip_len, th;
    __u8 more[14] __attribute__((aligned(8)));
    const __u8 *t;
    if (proto == bpf_htons(ETH_P_IP)) {
        __u8 h[20 + 14] __attribute__((aligned(8)));
        if (read_at(head, nh, h, sizeof h, direct) < 0 || (h[0] >> 4) != 4)
            return 0;
        __u32 ihl = (__u32)(h[0] & 0x0f) * 4;
        ip_len = (__u32)h[2] << 8 | h[3];
        if (ihl < 20 || ip_len < ihl)
            return 0;
        key->ip_version = BPFIX_IPV4;
        key->protocol = h[9];
        __builtin_memcpy(key->src_addr, h + 12, 4);
        __builtin_memcpy(key->dst_addr, h + 16, 4);
        __u16 frag = (__u16)h[6] << 8 | h[7];
        *hdr_len = ihl;
        if (frag & 0x1fff)
            return ip_len;
        if (bpfix_transport_header_len(key->protocol) == 0)
            return ip_len;
        if (ihl == 20) {
            t = h + 20;
        } else {
            if (read_at(head, nh + ihl, more, sizeof more, direct) < 0)
                return ip_len;  /* addresses known, ports not: still this host's drop */
            t = more;
        }
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        __u8 h[40 + 14] __attribute__((aligned(8)));
        if (read_at(head, nh, h, sizeof h, direct) < 0 || (h[0] >> 4) != 6)
            return 0;
        ip_len = ((__u32)h[4] << 8 | h[5]) + 40;
        key->ip_version = BPFIX_IPV6;
        __builtin_memcpy(key->src_addr, h + 8, 16);
        __builtin_memcpy(key->dst_addr, h + 24, 16);
        __u8 next = h[6];
        th = nh + 40;
        if (!is_ipv6_extension(next)) {
            key->protocol = next;
            *hdr_len = 40;
            if (bpfix_transport_header_len(next) == 0)
                return ip_len;
            t = h + 40;
        } else {
            int i;
            for (i = 0; i < MAX_IPV6_EXT; i++) {
                if (!is_ipv6_extension(next))
                    break;
                __u8 eh[4] __attribute__((aligned(8)));
                if (read_at(head, th, eh, sizeof eh, direct) < 0)
                    return 0;
                if (next == 44) {  /* fragment: only the first carries ports */
                    __u16 fo = (__u16)eh[2] << 8 | eh[3];
                    next = eh[0];
                    th += 8;
                    if (fo >> 3) {
                        key->protocol = next;
                        *hdr_len = th - nh;
                        return ip_len;
                    }
                    continue;
                }
                th += next == 51 ? ((__u32)eh[1] + 2) * 4 : ((__u32)eh[1] + 1) * 8;
                next = eh[0];
            }
            if (is_ipv6_extension(next))
                return 0;
            key->protocol = next;
            *hdr_len = th - nh;
            if (bpfix_transport_header_len(next) == 0)
                return ip_len;
            if (read_at(head, th, more, sizeof more, direct) < 0)
                return ip_len;
            t = more;
        }
    } else {
        return 0;
    }
    if (key->protocol == BPFIX_PROTO_ICMP || key->protocol == BPFIX_PROTO_ICMPV6) {
        key->icmp_type_code = (__u16)t[0] << 8 | t[1];
        return ip_len;
    }
    key->src_port = (__u16)t[0] << 8 | t[1];
    key->dst_port = (__u16)t[2] << 8 | t[3];
    *hdr_len += key->protocol == BPFIX_PROTO_TCP ? (__u32)(t[12] >> 4) * 4
                                                 : (__u32)bpfix_transport_header_len(key->protocol);
    return ip_len;
}

static __always_inline void count_unkeyed(__u32 reason, __u64 bytes)
{
    struct bpfix_counter *c = bpf_map_lookup_elem(&unkeyed, &reason);
    if (!c) {
        struct bpfix_counter fresh = {};
        bpf_map_update_elem(&unkeyed, &reason, &fresh, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&unkeyed, &reason);
        if (!c)
            return;
    }
    c->packets += 1;
    c->bytes += bytes;
}

static __always_inline void add_drop(struct bpfix_drop_stats *s, __u32 reason, __u64 packets, __u64 bytes,
                                     __u8 tcp_state)
{
    s->packets += packets;
    s->bytes += bytes;
    s->last_ns = tick_time_ns();
    s->last_reason = reason;
    if (tcp_state)
        s->tcp_state = tcp_state;
}

static __always_inline void count_keyed(void *cache, void *drops, struct bpfix_flow_key *key, __u32 reason,
                                        __u64 packets, __u64 bytes, __u64 skb_len, __u8 tcp_state)
{
    __u32 idx = bpfix_slot_index(key, BPFIX_DROP_CACHE_SLOTS - 1);
    struct bpfix_drop_slot *slot = bpf_map_lookup_elem(cache, &idx);
    if (slot) {
        if (slot->stats.packets == 0) {
            slot->key = *key;
            add_drop(&slot->stats, reason, packets, bytes, tcp_state);
            return;
        }
        if (bpfix_same_key(&slot->key, key)) {
            add_drop(&slot->stats, reason, packets, bytes, tcp_state);
            return;
        }
    }
    struct bpfix_drop_stats *s = bpf_map_lookup_elem(drops, key);
    if (!s) {
        struct bpfix_drop_stats fresh = {};
        bpf_map_update_elem(drops, key, &fresh, BPF_NOEXIST);
        s = bpf_map_lookup_elem(drops, key);
        if (!s) {
            count_unkeyed(reason, skb_len);  /* map full: still counted */
            return;
        }
    }
    add_drop(s, reason, packets, bytes, tcp_state);
}

/* The TCP state of the socket a dropped TCP packet belongs to, when the
 * skb still names one (packets sent from a local socket; received ones
 * while they are attached to theirs); 0 otherwise. */
static __always_inline __u8 tcp_state_of(struct sk_buff *skb)
{
    struct sock *sk = skb->sk;
    if (!sk)
        return 0;
    __u16 family = sk->__sk_common.skc_family;
    if (family != 2 /* AF_INET */ && family != 10 /* AF_INET6 */)
        return 0;
    if (sk->sk_protocol != 6 /* IPPROTO_TCP */)
        return 0;
    return sk->__sk_common.skc_state;
}

static __always_inline int on_drop(__u64 *ctx, const int direct)
{
    /* A tp_btf argument is a typed kernel pointer: its fields are read
     * with plain (fault-tolerant) loads, relocated by CO-RE, rather than a
     * bpf_probe_read_kernel call each. Every drop of a flooded receiver
     * passes here, so each call counts. */
    struct sk_buff *skb = (struct sk_buff *)ctx[0];
    __u32 reason = (__u32)ctx[2];
    if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
        reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
        return 0;
    if (reason == SKB_NOT_DROPPED_YET)
        return 0;

    struct bpfix_flow_key key = {};
    int iif = skb->skb_iif;
    __u32 inum;
    if (iif) {
        /* A received packet is still on the device it arrived on (or one
         * stacked on it, in the same namespace). */
        key.direction = BPFIX_DIR_INGRESS;
        key.ifindex = (__u32)iif;
        struct net_device *in = skb->dev;
        inum = in ? in->nd_net.net->ns.inum : netns_inum;
    } else {
        key.direction = BPFIX_DIR_EGRESS;
        struct net_device *out = skb->dev;
        if (out) {
            key.ifindex = (__u32)out->ifindex;
            inum = out->nd_net.net->ns.inum;
        } else {
            /* Sent from this host: before ip_output() the skb has no
             * device yet; its route names the one it would leave by. */
            struct dst_entry *dst = (struct dst_entry *)(skb->_skb_refdst & ~1UL);
            struct net_device *via = dst ? BPF_CORE_READ(dst, dev) : 0;
            if (!via)
                return 0;
            key.ifindex = (__u32)BPF_CORE_READ(via, ifindex);
            inum = BPF_CORE_READ(via, nd_net.net, ns.inum);
        }
    }
    if (inum != netns_inum)
        return 0;
    if (!is_watched(key.ifindex))
        return 0;
    /* [live] sampling: 1 drop in N on the metered interfaces, so a sampled
     * record's dropped counts estimate as its packet counts do */
    if (sampled_out())
        return 0;

    __u64 skb_len = skb->len;
    const unsigned char *head = skb->head;
    __u16 nh = skb->network_header;
    __u32 hdr_len = 0, ip_len = 0;
    if (head && nh != (__u16)~0U) {
        vlans(skb, head, nh, &key, direct);
        ip_len = parse_ip(head, nh, skb->protocol, &key, &hdr_len, direct);
    }
    if (ip_len == 0) {
        count_unkeyed(reason, skb_len);
        return 0;
    }
    /* A GSO super-packet is gso_segs packets, each with its own headers
     * (as the TC meter counts it). */
    __u64 packets = 1, bytes = ip_len;
    struct skb_shared_info *shinfo = (struct skb_shared_info *)(head + skb->end);
    /* (a plain array: a local of a preserve_access_index type would have
     * its field offsets relocated to the kernel's layout) */
    __u16 gso[2] = {};  /* gso_size, gso_segs */
    if (direct) {
        const __u8 *sh = bpf_rdonly_cast(shinfo, 0);
        gso[0] = *(const __u16 *)(sh + bpf_core_field_offset(struct skb_shared_info, gso_size));
        gso[1] = *(const __u16 *)(sh + bpf_core_field_offset(struct skb_shared_info, gso_segs));
    } else if (bpf_core_field_offset(struct skb_shared_info, gso_segs) ==
               bpf_core_field_offset(struct skb_shared_info, gso_size) + 2) {
        /* neighbours: one read for both */
        bpf_probe_read_kernel(gso, sizeof gso,
                              (const char *)shinfo + bpf_core_field_offset(struct skb_shared_info, gso_size));
    } else {
        gso[0] = BPF_CORE_READ(shinfo, gso_size);
        gso[1] = BPF_CORE_READ(shinfo, gso_segs);
    }
    if (gso[0] && gso[1] > 1) {
        packets = gso[1];
        bytes += (__u64)(gso[1] - 1) * hdr_len;
    }
    __u8 tcp_state = key.protocol == 6 ? tcp_state_of(skb) : 0;
    if (active_drops)
        count_keyed(&drop_cache_1, &drops_1, &key, reason, packets, bytes, skb_len, tcp_state);
    else
        count_keyed(&drop_cache_0, &drops_0, &key, reason, packets, bytes, skb_len, tcp_state);
    return 0;
}

SEC("tp_btf/kfree_skb")
int drop_kfree_skb(__u64 *ctx)
{
    return on_drop(ctx, 0);
}

/* The same with plain loads (kernels 6.17+; see read_at). */
SEC("tp_btf/kfree_skb")
int drop_kfree_skb_direct(__u64 *ctx)
{
    return on_drop(ctx, 1);
}

char LICENSE[] SEC("license") = "GPL";
