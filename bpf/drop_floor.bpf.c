/* The floor for a kernel drop tracer in the live benchmark (bench/live/run.sh,
 * tool "dropfloor"): a tp_btf/kfree_skb program that only counts the drops
 * in a per-CPU array. No reason, no headers, no flow key: what any tracer
 * of kfree_skb costs per dropped packet before it does any work, against
 * which bpf/drop_tracker.bpf.c's cost is read. Loaded and attached by
 * bench/live/drop_floor_run.c. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} floor_drops SEC(".maps");

SEC("tp_btf/kfree_skb")
int count_drop(void *ctx)
{
    __u32 key = 0;
    __u64 *n = bpf_map_lookup_elem(&floor_drops, &key);
    if (n)
        *n += 1;
    return 0;
}

char _license[] SEC("license") = "GPL";
