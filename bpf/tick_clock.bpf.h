/* SPDX-License-Identifier: GPL-2.0 */
/* A per-CPU clock that reads the exact time once per jiffy: the time of
 * the current tick's first event on this CPU, at most one tick (4 ms at
 * HZ=250) behind. Reading a clock costs more than everything else a
 * cached flow update or a drop count needs. Included by the BPF programs
 * only (each object gets its own map). */
#pragma once

struct tick_clock {
    __u64 jiffies;
    __u64 ns;
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tick_clock);
} tick_clocks SEC(".maps");

static __always_inline __u64 tick_time_ns(void)
{
    __u32 zero = 0;
    struct tick_clock *c = bpf_map_lookup_elem(&tick_clocks, &zero);
    if (!c)
        return bpf_ktime_get_ns();
    __u64 j = bpf_jiffies64();
    if (c->jiffies != j) {
        c->jiffies = j;
        c->ns = bpf_ktime_get_ns();
    }
    return c->ns;
}
