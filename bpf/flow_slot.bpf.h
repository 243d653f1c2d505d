/* The direct-mapped per-CPU caches in front of the flow and drop maps
 * (flow_meter.bpf.c, drop_tracker.bpf.c): the slot of a key and key
 * equality, word by word. */
#pragma once

#include <linux/types.h>
#include "bpfix_abi.h"

/* The cache slot of a key: its words times distinct odd constants, summed
 * (independent multiplies, so the CPU overlaps them), high bits, under
 * `mask` (slots - 1, a power of two minus one). Source and destination
 * words have different constants: the two directions of a conversation
 * land in different slots. */
static __always_inline __u32 bpfix_slot_index(const struct bpfix_flow_key *k, __u32 mask)
{
    const __u64 *w = (const __u64 *)k;
    __u64 h = w[0] * 0x9e3779b97f4a7c15ULL + w[1] * 0xc2b2ae3d27d4eb4fULL + w[2] * 0x165667b19e3779f9ULL +
              w[3] * 0xd6e8feb86659fd93ULL + w[4] * 0xff51afd7ed558ccdULL + w[5] * 0xc4ceb9fe1a85ec53ULL +
              (__u64)k->direction * 0x27d4eb2f165667c5ULL;
    h ^= h >> 29;
    return (__u32)(h >> 32) & mask;
}

static __always_inline int bpfix_same_key(const struct bpfix_flow_key *a, const struct bpfix_flow_key *b)
{
    const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] && x[5] == y[5] &&
           a->direction == b->direction;
}
