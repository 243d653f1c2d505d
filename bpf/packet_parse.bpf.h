// SPDX-License-Identifier: GPL-2.0
/* What the TC programs share: the packet parser (Ethernet, 802.1Q/QinQ,
 * IPv4, IPv6 with extension headers, the transport header) into the flow
 * key of bpfix_abi.h, and the filter rules (bpfix_filter_rule, first match
 * wins) with their map and counts. Each object that includes this gets its
 * own `filter_rules` map, set by user space before the programs run
 * (exporter/filter_rules.h). */
#pragma once
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "bpfix_abi.h"

/* Filter rules (first match wins) in two banks (bpfix_abi.h); user space
 * sets them and may replace them while the programs run. With no rules
 * every packet matches. */
volatile __u32 filter_bank = 0;
volatile struct bpfix_filter_set filter_sets[2] = {{0, BPFIX_FILTER_ACCEPT}, {0, BPFIX_FILTER_ACCEPT}};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * BPFIX_MAX_FILTER_RULES);
    __type(key, __u32);
    __type(value, struct bpfix_filter_rule);
} filter_rules SEC(".maps");

/* The rule set a packet is filtered by: read once per packet. */
struct filter_view {
    __u32 bank, count, default_action;
};

static __always_inline struct filter_view filter_now(void)
{
    struct filter_view f;
    f.bank = filter_bank & 1;
    f.count = filter_sets[f.bank].count;
    f.default_action = filter_sets[f.bank].default_action;
    return f;
}

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

static __always_inline __u32 filter_action(const struct packet *p, __u8 direction, const struct filter_view *f)
{
    __u32 i;
    for (i = 0; i < BPFIX_MAX_FILTER_RULES; i++) {
        if (i >= f->count)
            break;
        __u32 idx = f->bank * BPFIX_MAX_FILTER_RULES + i;
        const struct bpfix_filter_rule *r = bpf_map_lookup_elem(&filter_rules, &idx);
        if (r && rule_matches(r, p, direction))
            return r->action;
    }
    return f->default_action;
}

