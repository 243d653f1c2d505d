/* The floor for an eBPF TC meter in the live benchmark (bench/live/run.sh):
 * a clsact ingress program that only counts packets in a per-CPU array. No
 * parsing, no flow table, no clock: what attaching any TC program costs
 * before it does any metering work. Built by bpf/CMakeLists.txt; bench/maps
 * also times it as the floor of BPF_PROG_TEST_RUN. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} floor_packets SEC(".maps");

SEC("tc")
int count_only(struct __sk_buff *skb)
{
    __u32 key = 0;
    __u64 *n = bpf_map_lookup_elem(&floor_packets, &key);
    if (n)
        *n += 1;
    return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
