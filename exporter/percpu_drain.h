// Empties a per-CPU BPF hash map with batched lookup-and-delete, handing
// each (key, one CPU's value) to `each`: the drop tracker's and the RTT
// sampler's drains (the flow maps have their own, with the flow cache).
#pragma once

#include <bpf/bpf.h>

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

}  // namespace bpfix
