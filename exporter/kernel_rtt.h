#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernel_loader.h"
#include "rtt_matcher.h"

struct tcp_rtt;

namespace bpfix {

// Owns the kernel's TCP RTT sampler (bpf/tcp_rtt.bpf.c) in its own
// skeleton, so a kernel that refuses it never stops the flow meter. At
// start it loads the first hook the kernel accepts: fentry on
// tcp_rcv_established, else the tp_btf/tcp_probe tracepoint, else a kprobe
// on tcp_rcv_established, each with a program of the same kind that takes
// the final srtt when a socket is destroyed. Sockets of this process's
// network namespace only.
class KernelRtt {
public:
    // Entries of each of the two per-5-tuple maps (per CPU, preallocated).
    static constexpr uint32_t kMapEntries = 16384;

    // Probes, loads and attaches the first hook the kernel accepts, or with
    // `only` ("fentry", "tp_btf", "kprobe") that one alone; "auto" or empty
    // probes all. Throws bpfix::Error naming why each hook was refused.
    explicit KernelRtt(const std::string& only = "auto");
    ~KernelRtt();
    KernelRtt(const KernelRtt&) = delete;
    KernelRtt& operator=(const KernelRtt&) = delete;

    // "fentry/tcp_rcv_established", "tp_btf/tcp_probe" or
    // "kprobe/tcp_rcv_established".
    const std::string& hook() const { return hook_; }
    // Whether the kernel loaded it (no BTF parse here; kernel_loader.h).
    bool loaded_in_kernel() const { return in_kernel_; }

    // Flips the RTT maps, waits for programs still writing the old one,
    // and returns (and empties) what it holds, one entry per socket.
    std::vector<RttSample> drain();
    // Samples that found the map full since start.
    uint64_t lost() const;

private:
    struct SkelDeleter {
        void operator()(tcp_rtt* s) const;
    };
    std::unique_ptr<tcp_rtt, SkelDeleter> skel_;
    LinkSet links_;  // the attached programs (kernel_loader.h)
    std::string hook_;
    uint32_t active_ = 0;
    int ncpu_ = 0;
    bool in_kernel_ = false;
};

}  // namespace bpfix
