// A clock reading in ns (CLOCK_MONOTONIC is what bpf_ktime_get_ns reads;
// CLOCK_REALTIME minus it turns kernel times into UNIX times).
#pragma once

#include <cstdint>
#include <ctime>

namespace bpfix {

inline uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace bpfix
