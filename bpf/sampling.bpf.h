/* SPDX-License-Identifier: GPL-2.0 */
/* Systematic count-based sampling (RFC 5476; [live] sampling N): 1 event in
 * every `sampling_interval`, counted per CPU. Set before load; 1 takes all.
 * The TC meter samples packets with it and the drop tracer drops, each
 * object with its own counter (they cannot share one decision). Included
 * by the BPF programs only. */
#pragma once

volatile const __u32 sampling_interval = 1;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} sample_count SEC(".maps");

/* 1 when this event is not among the 1 in N taken. */
static __always_inline int sampled_out(void)
{
    if (sampling_interval <= 1)
        return 0;
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&sample_count, &zero);
    if (!n)
        return 0;
    *n += 1;
    return *n % sampling_interval != 0;
}
