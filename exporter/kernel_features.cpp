#include "kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "kernel_btf.h"
#include "sctp.h"

namespace bpfix {

namespace {

// r0 = 0; exit
const bpf_insn kReturnZero[] = {
    {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
    {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
};

bool loads(bpf_prog_type type, bpf_attach_type attach, uint32_t btf_id) {
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach, .attach_btf_id = btf_id);
    int fd = bpf_prog_load(type, "bpfix_probe", "GPL", kReturnZero, 2, &opts);
    if (fd < 0) return false;
    close(fd);
    return true;
}

// Whether `enumerator` is a value of the kernel's `enum bpf_attach_type`.
bool knows_attach_type(const KernelBtf& types, const char* enumerator) {
    auto values = types.enumerators("bpf_attach_type");
    if (!values) return false;
    for (const auto& e : *values) {
        if (e.name == enumerator) return true;
    }
    return false;
}

bool batch_ops() {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bpfix_probe", 4, 4, 4, nullptr);
    if (fd < 0) return false;
    uint32_t keys[4], values[4], out = 0, count = 4;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    // An empty map answers ENOENT when the kernel has the command.
    int err = bpf_map_lookup_and_delete_batch(fd, nullptr, &out, keys, values, &count, &opts);
    bool ok = err == 0 || errno == ENOENT;
    close(fd);
    return ok;
}

int quiet(enum libbpf_print_level, const char*, va_list) { return 0; }

}  // namespace

std::string KernelFeatures::line() const {
    auto yn = [](bool b) { return b ? "yes" : "no"; };
    return fmt::format("kernel {}: tc {}, tcx {}, fentry {}, tp_btf {}, ringbuf {}, batch_ops {}, sctp {}", release,
                       yn(tc), yn(tcx), yn(fentry), yn(tp_btf), yn(ringbuf), yn(batch_ops), yn(sctp));
}

KernelFeatures probe_kernel_features() {
    KernelFeatures f;
    utsname u{};
    f.release = uname(&u) == 0 ? u.release : "?";
    libbpf_print_fn_t previous = libbpf_set_print(quiet);
    f.tc = loads(BPF_PROG_TYPE_SCHED_CLS, bpf_attach_type{}, 0);
    f.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
    f.batch_ops = batch_ops();
    if (KernelBtf::available()) {
        KernelBtf types;
        f.tcx = f.tc && knows_attach_type(types, "BPF_TCX_INGRESS");
        if (auto fn = types.find("tcp_rcv_established", BTF_KIND_FUNC)) {
            f.fentry = loads(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, fn->id);
        }
        if (auto tp = types.find("btf_trace_kfree_skb", BTF_KIND_TYPEDEF)) {
            f.tp_btf = loads(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, tp->id);
        }
    }
    libbpf_set_print(previous);
    f.sctp = sctp_unavailable().empty();
    return f;
}

}  // namespace bpfix
