#pragma once

#include <string>

namespace bpfix {

// What the running kernel offers the exporter, found by asking it (loading
// two-instruction programs, reading its BTF, opening a socket), never by
// its version number. Probed once at start and logged as one line.
struct KernelFeatures {
    std::string release;   // uname -r
    bool tc = false;       // TC classifier programs (classic tc, clsact)
    bool tcx = false;      // TCX links (6.6+); else classic tc is used
    bool fentry = false;   // fentry on tcp_rcv_established (RTT's first choice)
    bool tp_btf = false;   // BTF tracepoints (kfree_skb for drops; tcp_probe)
    bool ringbuf = false;  // BPF ring buffer maps (DNS, capture)
    bool batch_ops = false;  // batched map lookup-and-delete (the drain)
    bool sctp = false;     // SCTP sockets (the sctp module loads)

    // "kernel 6.1.0-57-amd64: tc yes, tcx no, fentry yes, ..."
    std::string line() const;
};

// Needs the exporter's capabilities (CAP_BPF, CAP_PERFMON) to see the BPF
// features; without them they read "no".
KernelFeatures probe_kernel_features();

}  // namespace bpfix
