// Empties a per-CPU BPF hash map with batched lookup-and-delete, handing
// each (key, one CPU's value) to `each`: the drop tracker's and the RTT
// sampler's drains (the flow maps have their own, with the flow cache).
// drain_percpu_slots empties the per-CPU direct-mapped caches in front of
// the flow and drop maps.
#pragma once

#include <bpf/bpf.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"

namespace bpfix {

template <typename Key, typename Value, typename Each>
void drain_percpu_hash(int fd, int ncpu, const char* what, Each&& each) {
    constexpr uint32_t kBatch = 1024;
    std::vector<Key> keys(kBatch);
    std::vector<Value> values(static_cast<size_t>(kBatch) * static_cast<size_t>(ncpu));
    uint32_t out_batch = 0;
    bool first = true;
    for (;;) {
        uint32_t count = kBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &out_batch, &out_batch, keys.data(),
                                                  values.data(), &count, &opts);
        int saved = errno;
        first = false;
        for (uint32_t i = 0; i < count; ++i) {
            for (int c = 0; c < ncpu; ++c) {
                each(keys[i], values[static_cast<size_t>(i) * static_cast<size_t>(ncpu) + static_cast<size_t>(c)]);
            }
        }
        if (err) {
            if (saved == ENOENT) return;  // the map is empty now
            throw Error(std::string("cannot drain the eBPF ") + what + ": " + std::strerror(saved));
        }
    }
}

// Reads every slot of a per-CPU array map of `slots` cache slots (a Slot has
// `.stats.packets`, 0 when the slot is free), hands each used one (one
// CPU's) to `each`, and writes the chunks that had any back empty. The
// programs use the other bank's cache meanwhile, so nothing is lost between
// read and clear. Chunks bound `buf` (chunk x CPUs slots) on big machines.
template <typename Slot, typename Each>
void drain_percpu_slots(int fd, uint32_t slots, int ncpu, const char* what, std::vector<Slot>& buf, Each&& each) {
    constexpr uint32_t kChunk = 512;
    const size_t n_cpu = static_cast<size_t>(ncpu);
    buf.resize(static_cast<size_t>(std::min(kChunk, slots)) * n_cpu);
    uint32_t keys[kChunk], out_keys[kChunk];
    for (uint32_t start = 0; start < slots; start += kChunk) {
        uint32_t count = std::min(kChunk, slots - start);
        for (uint32_t i = 0; i < count; ++i) keys[i] = start + i;
        // Per-CPU array values come back as ncpu consecutive slots per key;
        // the batch starts after the key in `in_batch` (none: at slot 0).
        uint32_t prev = start - 1, next = 0, got = count;
        LIBBPF_OPTS(bpf_map_batch_opts, ropts);
        if (bpf_map_lookup_batch(fd, start ? &prev : nullptr, &next, out_keys, buf.data(), &got, &ropts) != 0 &&
            errno != ENOENT) {
            throw Error(std::string("cannot read the eBPF ") + what + ": " + std::strerror(errno));
        }
        if (got != count || out_keys[0] != start) {
            throw Error(fmt::format("cannot read the eBPF {}: slots {}..{} came back as {} from {}", what, start,
                                    start + count - 1, got, got ? out_keys[0] : 0));
        }
        bool used = false;
        for (size_t i = 0; i < count * n_cpu; ++i) {
            if (buf[i].stats.packets) {
                each(buf[i]);
                used = true;
            }
        }
        if (!used) continue;
        std::fill(buf.begin(), buf.end(), Slot{});
        uint32_t n = count;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        if (bpf_map_update_batch(fd, keys, buf.data(), &n, &opts) != 0 || n != count) {
            throw Error(std::string("cannot clear the eBPF ") + what + ": " + std::strerror(errno));
        }
    }
}

}  // namespace bpfix
