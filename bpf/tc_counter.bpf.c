// SPDX-License-Identifier: GPL-2.0
/* Minimal TC datapath: counts every packet and byte that crosses the hook,
 * per direction, in a per-CPU array. It proves the BPF build, skeleton and
 * test path end to end; flow metering in the kernel builds on it. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpfix_abi.h"

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct bpfix_if_counters);
} counters SEC(".maps");

/* Set by user space before load: BPFIX_DIR_INGRESS or BPFIX_DIR_EGRESS. */
volatile const __u32 direction = BPFIX_DIR_INGRESS;

SEC("tc")
int count_packets(struct __sk_buff *skb)
{
    __u32 idx = direction;
    struct bpfix_if_counters *c = bpf_map_lookup_elem(&counters, &idx);
    if (c) {
        c->packets += 1;
        c->bytes += skb->len;
    }
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
