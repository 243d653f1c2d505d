// SPDX-License-Identifier: GPL-2.0
/* TCP round-trip time from the kernel's own smoothed RTT (tcp_sock->srtt_us,
 * kept in 1/8 µs), per socket 5-tuple. Three programs with one body, on the
 * function that handles every segment an established TCP socket receives
 * (tcp_rcv_established(sk, skb), where ACKs update the RTT); user space
 * loads the first one the kernel accepts, in this order:
 *   rtt_fentry   fentry/tcp_rcv_established (refused where the kernel has
 *                no BPF trampolines for tracing, e.g. this project's 6.18 host)
 *   rtt_tp_btf   tp_btf/tcp_probe, the BTF-typed tracepoint called at the
 *                start of tcp_rcv_established with (sk, skb)
 *   rtt_kprobe   kprobe/tcp_rcv_established
 * All three see the socket before the segment is processed: the srtt read
 * is the one the previous ACKs left. Each comes with a program of the same
 * kind on socket destruction (tcp_v4_destroy_sock, tp_btf/tcp_destroy_sock)
 * that takes the socket's final srtt.
 *
 * Cost bound: a socket counts a sample only when its srtt changed since its
 * last sample or BPFIX_RTT_MIN_GAP_NS passed; other segments cost a
 * socket-storage lookup (fentry, tp_btf) or a per-CPU hash lookup (kprobe)
 * and a compare. With socket storage the socket's key is read once and
 * kept there, so a sample costs one per-CPU hash update. Only sockets of the exporter's network namespace count.
 * Kernel structures are read with CO-RE through the minimal definitions
 * below, so offsets come from the running kernel's BTF. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfix_abi.h"

#define AF_INET_ 2
#define AF_INET6_ 10

struct ns_common {
    unsigned int inum;
} __attribute__((preserve_access_index));
struct net {
    struct ns_common ns;
} __attribute__((preserve_access_index));
typedef struct {
    struct net *net;
} possible_net_t;
/* Read whole (16 octets); its inner union is not named here. */
struct in6_addr {
    __u8 bytes[16];
};
struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    possible_net_t skc_net;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));
struct sock {
    struct sock_common __sk_common;
} __attribute__((preserve_access_index));
struct inet_sock {
    __be16 inet_sport;
} __attribute__((preserve_access_index));
struct tcp_sock {
    __u32 srtt_us;
} __attribute__((preserve_access_index));

/* inode number of /proc/self/ns/net of the exporter; set before load */
volatile const __u32 netns_inum = 0;

struct rtt_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct bpfix_rtt_key);
    __type(value, struct bpfix_rtt_stats);
};
struct rtt_map rtt_0 SEC(".maps");
struct rtt_map rtt_1 SEC(".maps");
volatile __u32 active_rtt = 0;

/* Samples that found the RTT map full (per-CPU; user space sums). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} rtt_lost SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct bpfix_rtt_gate);
} gates SEC(".maps");

static __always_inline int is_v4_mapped(const __u8 *a)
{
    __u64 lo;
    __builtin_memcpy(&lo, a, 8);
    return lo == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff;
}

/* Fills the key from the socket; 0 when it is not an IPv4/IPv6 socket of
 * our namespace. */
static __always_inline int socket_key(struct sock *sk, struct bpfix_rtt_key *key)
{
    unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET_ && family != AF_INET6_)
        return 0;
    if (BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != netns_inum)
        return 0;
    key->protocol = BPFIX_PROTO_TCP;
    key->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
    /* A socket being destroyed has given its port back (skc_num 0); the
     * port it sent from is still in inet_sport. */
    if (key->src_port == 0)
        key->src_port = __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
    key->dst_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (family == AF_INET6_) {
        BPF_CORE_READ_INTO(key->src_addr, sk, __sk_common.skc_v6_rcv_saddr);
        BPF_CORE_READ_INTO(key->dst_addr, sk, __sk_common.skc_v6_daddr);
        if (!is_v4_mapped(key->src_addr) || !is_v4_mapped(key->dst_addr)) {
            key->ip_version = BPFIX_IPV6;
            return 1;
        }
    }
    __be32 src = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __be32 dst = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memset(key->src_addr, 0, 16);
    __builtin_memset(key->dst_addr, 0, 16);
    __builtin_memcpy(key->src_addr, &src, 4);
    __builtin_memcpy(key->dst_addr, &dst, 4);
    key->ip_version = BPFIX_IPV4;
    return 1;
}

static __always_inline void count(struct bpfix_rtt_key *key, __u32 srtt, __u64 now)
{
    void *map = active_rtt ? (void *)&rtt_1 : (void *)&rtt_0;
    struct bpfix_rtt_stats *s = bpf_map_lookup_elem(map, key);
    if (!s) {
        struct bpfix_rtt_stats fresh = {.min_us = srtt, .max_us = srtt, .last_us = srtt, .samples = 1,
                                        .last_ns = now};
        if (bpf_map_update_elem(map, key, &fresh, BPF_NOEXIST) == 0)
            return;
        s = bpf_map_lookup_elem(map, key);
        if (!s) {
            __u32 zero = 0;
            __u64 *lost = bpf_map_lookup_elem(&rtt_lost, &zero);
            if (lost)
                *lost += 1;
            return;
        }
    }
    /* An entry another CPU created holds zeros for this CPU. */
    if (s->samples == 0 || srtt < s->min_us)
        s->min_us = srtt;
    if (srtt > s->max_us)
        s->max_us = srtt;
    s->last_us = srtt;
    s->samples += 1;
    s->last_ns = now;
}

static __always_inline __u32 srtt_of(struct sock *sk)
{
    return BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;
}

/* fentry and tp_btf: `sk` is a BTF pointer, so it has socket storage,
 * which keeps the socket's key (read once) and its last sample. */
static __always_inline int sample_gated(struct sock *sk)
{
    struct bpfix_rtt_gate *g = bpf_sk_storage_get(&gates, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!g || g->state == BPFIX_RTT_GATE_FOREIGN)
        return 0;
    __u32 srtt = srtt_of(sk);
    if (srtt == 0)
        return 0;  /* no RTT measured yet */
    __u64 now = bpf_ktime_get_ns();
    if (g->srtt_us == srtt && now - g->last_ns < BPFIX_RTT_MIN_GAP_NS)
        return 0;
    if (g->state == BPFIX_RTT_GATE_NEW) {
        /* A socket's namespace, family, addresses and ports do not change
         * once it is established. */
        if (!socket_key(sk, &g->key)) {
            g->state = BPFIX_RTT_GATE_FOREIGN;
            return 0;
        }
        g->state = BPFIX_RTT_GATE_OURS;
    }
    g->srtt_us = srtt;
    g->last_ns = now;
    count(&g->key, srtt, now);
    return 0;
}

SEC("fentry/tcp_rcv_established")
int rtt_fentry(__u64 *ctx)
{
    return sample_gated((struct sock *)ctx[0]);
}

SEC("tp_btf/tcp_probe")
int rtt_tp_btf(__u64 *ctx)
{
    return sample_gated((struct sock *)ctx[0]);
}

/* The socket's final srtt, when the kernel destroys it (after close, or a
 * reset): a per-segment program sees the srtt before that segment's ACK
 * is processed, and after close() ACKs are handled outside
 * tcp_rcv_established, so the last ACKs would otherwise never show. */
static __always_inline int sample_close(struct sock *sk)
{
    __u32 srtt = srtt_of(sk);
    if (srtt == 0)
        return 0;
    struct bpfix_rtt_key key = {};
    if (!socket_key(sk, &key))
        return 0;
    count(&key, srtt, bpf_ktime_get_ns());
    return 0;
}

/* With socket storage: the key the socket's samples used, if any. */
static __always_inline int sample_close_gated(struct sock *sk)
{
    struct bpfix_rtt_gate *g = bpf_sk_storage_get(&gates, sk, 0, 0);
    if (!g)
        return sample_close(sk);
    if (g->state != BPFIX_RTT_GATE_OURS)
        return 0;
    __u32 srtt = srtt_of(sk);
    if (srtt)
        count(&g->key, srtt, bpf_ktime_get_ns());
    return 0;
}

/* tcp_v4_destroy_sock destroys IPv6 TCP sockets too. */
SEC("fentry/tcp_v4_destroy_sock")
int rtt_fentry_close(__u64 *ctx)
{
    return sample_close_gated((struct sock *)ctx[0]);
}

SEC("tp_btf/tcp_destroy_sock")
int rtt_tp_btf_close(__u64 *ctx)
{
    return sample_close_gated((struct sock *)ctx[0]);
}

SEC("kprobe/tcp_v4_destroy_sock")
int BPF_KPROBE(rtt_kprobe_close, struct sock *sk)
{
    return sample_close(sk);
}

/* kprobe: no socket storage; the per-CPU entry of the 5-tuple is the gate. */
SEC("kprobe/tcp_rcv_established")
int BPF_KPROBE(rtt_kprobe, struct sock *sk)
{
    __u32 srtt = srtt_of(sk);
    if (srtt == 0)
        return 0;
    struct bpfix_rtt_key key = {};
    if (!socket_key(sk, &key))
        return 0;
    __u64 now = bpf_ktime_get_ns();
    void *map = active_rtt ? (void *)&rtt_1 : (void *)&rtt_0;
    struct bpfix_rtt_stats *s = bpf_map_lookup_elem(map, &key);
    if (s && s->last_us == srtt && now - s->last_ns < BPFIX_RTT_MIN_GAP_NS)
        return 0;
    count(&key, srtt, now);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
