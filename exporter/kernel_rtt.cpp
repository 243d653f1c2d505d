#include "kernel_rtt.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/btf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <unordered_map>

#include "error.h"
#include "kernel_btf.h"
#include "percpu_drain.h"
#include "tcp_rtt.skel.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

struct RttKeyHash {
    size_t operator()(const bpfix_rtt_key& k) const noexcept {
        const auto* p = reinterpret_cast<const uint8_t*>(&k);
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < sizeof k; ++i) h = (h ^ p[i]) * 1099511628211ULL;
        return static_cast<size_t>(h);
    }
};
struct RttKeyEqual {
    bool operator()(const bpfix_rtt_key& a, const bpfix_rtt_key& b) const noexcept {
        return std::memcmp(&a, &b, sizeof a) == 0;
    }
};

enum class Hook { fentry, tp_btf, kprobe };

const char* hook_key(Hook h) {
    switch (h) {
    case Hook::fentry: return "fentry";
    case Hook::tp_btf: return "tp_btf";
    case Hook::kprobe: return "kprobe";
    }
    return "?";
}

const char* hook_name(Hook h) {
    switch (h) {
    case Hook::fentry: return "fentry/tcp_rcv_established";
    case Hook::tp_btf: return "tp_btf/tcp_probe";
    case Hook::kprobe: return "kprobe/tcp_rcv_established";
    }
    return "?";
}

// Probing expects refusals; libbpf's own lines about them would read like
// errors. Silenced while a hook is tried, restored after.
int quiet(enum libbpf_print_level, const char*, va_list) { return 0; }

}  // namespace

void KernelRtt::SkelDeleter::operator()(tcp_rtt* s) const { tcp_rtt__destroy(s); }

KernelRtt::KernelRtt(const std::string& only) {
    ncpu_ = libbpf_num_possible_cpus();
    if (ncpu_ <= 0) throw Error("cannot count the possible CPUs (libbpf_num_possible_cpus)");
    struct stat ns {};
    if (stat("/proc/self/ns/net", &ns) != 0) {
        throw Error("cannot read this process's network namespace (/proc/self/ns/net): " + errstr(errno));
    }
    std::optional<KernelBtf> types;
    if (KernelBtf::available()) types.emplace();
    const bool have_btf = types.has_value();
    const bool have_tcp_probe = have_btf && types->find("btf_trace_tcp_probe", BTF_KIND_TYPEDEF);
    const bool have_tcp_destroy = have_btf && types->find("btf_trace_tcp_destroy_sock", BTF_KIND_TYPEDEF);
    const bool have_func = have_btf && types->find("tcp_rcv_established", BTF_KIND_FUNC) &&
                           types->find("tcp_v4_destroy_sock", BTF_KIND_FUNC);
    types.reset();

    // libbpf attaches kprobes through the kprobe PMU, or tracefs on old kernels.
    const bool have_kprobes = access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 ||
                              access("/sys/kernel/tracing/kprobe_events", F_OK) == 0 ||
                              access("/sys/kernel/debug/tracing/kprobe_events", F_OK) == 0;
    std::vector<std::string> refused;
    struct Restore {
        libbpf_print_fn_t previous;
        ~Restore() { libbpf_set_print(previous); }
    } restore{libbpf_set_print(quiet)};
    for (Hook h : {Hook::fentry, Hook::tp_btf, Hook::kprobe}) {
        if (!only.empty() && only != "auto" && only != hook_key(h)) continue;
        if (h == Hook::fentry && !have_func) {
            refused.push_back(fmt::format("{}: {}", hook_name(h),
                                          have_btf ? "tcp_rcv_established or tcp_v4_destroy_sock is not in "
                                                     "the kernel's BTF"
                                                   : "the kernel has no BTF (/sys/kernel/btf/vmlinux)"));
            continue;
        }
        if (h == Hook::tp_btf && !have_tcp_probe) {
            refused.push_back(fmt::format("{}: {}", hook_name(h),
                                          have_btf ? "the kernel has no tcp_probe tracepoint in its BTF"
                                                   : "the kernel has no BTF (/sys/kernel/btf/vmlinux)"));
            continue;
        }
        if (h == Hook::kprobe && !have_kprobes) {
            refused.push_back(fmt::format("{}: the kernel has no kprobes (no /sys/bus/event_source/devices/kprobe; "
                                          "CONFIG_KPROBES)",
                                          hook_name(h)));
            continue;
        }
        auto open_hook = [&] {
            std::unique_ptr<tcp_rtt, SkelDeleter> skel(tcp_rtt__open());
            if (!skel) throw Error("cannot open the eBPF TCP RTT sampler: " + errstr(errno));
            bpf_program__set_autoload(skel->progs.rtt_fentry, h == Hook::fentry);
            bpf_program__set_autoload(skel->progs.rtt_tp_btf, h == Hook::tp_btf);
            bpf_program__set_autoload(skel->progs.rtt_kprobe, h == Hook::kprobe);
            bpf_program__set_autoload(skel->progs.rtt_fentry_close, h == Hook::fentry);
            // tcp_destroy_sock came in 5.3: without it the final srtt is not sampled.
            bpf_program__set_autoload(skel->progs.rtt_tp_btf_close, h == Hook::tp_btf && have_tcp_destroy);
            bpf_program__set_autoload(skel->progs.rtt_kprobe_close, h == Hook::kprobe);
            // The kprobe program cannot use socket storage: no map for it.
            if (h == Hook::kprobe) bpf_map__set_autocreate(skel->maps.gates, false);
            for (bpf_map* m : {skel->maps.rtt_0, skel->maps.rtt_1}) bpf_map__set_max_entries(m, kMapEntries);
            skel->rodata->netns_inum = static_cast<uint32_t>(ns.st_ino);
            return skel;
        };
        std::unique_ptr<tcp_rtt, SkelDeleter> skel = open_hook();
        LinkSet links;
        LoadOutcome r = load_and_attach(
            skel->skeleton,
            [&] {
                skel = open_hook();
                return skel->skeleton;
            },
            links);
        if (r.status == LoadOutcome::kAttachRefused) {
            refused.push_back(fmt::format("{}: attach refused ({})", hook_name(h), errstr(r.err)));
            continue;
        }
        if (r.status == LoadOutcome::kLoadRefused) {
            refused.push_back(fmt::format("{}: load refused ({}{})", hook_name(h), errstr(r.err),
                                          r.err == -EPERM ? ": without CAP_BPF and CAP_PERFMON, or the kernel "
                                                            "does not allow this program type"
                                                          : ""));
            continue;
        }
        links_ = std::move(links);
        in_kernel_ = r.in_kernel;
        skel_ = std::move(skel);
        hook_ = hook_name(h);
        break;
    }
    if (!skel_) {
        throw Error(fmt::format("no hook for the kernel's TCP RTT: {}", fmt::join(refused, "; ")));
    }
}

KernelRtt::~KernelRtt() = default;

std::vector<RttSample> KernelRtt::drain() {
    uint32_t next = active_ ^ 1;
    __atomic_store_n(&skel_->bss->active_rtt, next, __ATOMIC_SEQ_CST);
    bpf_map* old = active_ ? skel_->maps.rtt_1 : skel_->maps.rtt_0;
    active_ = next;
    // Tracing programs run to completion without sleeping: one that read
    // the old index is done long before this.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));

    std::unordered_map<bpfix_rtt_key, RttSample, RttKeyHash, RttKeyEqual> merged;
    drain_percpu_hash<bpfix_rtt_key, bpfix_rtt_stats>(
        bpf_map__fd(old), ncpu_, "TCP RTT map", [&](const bpfix_rtt_key& k, const bpfix_rtt_stats& v) {
            if (v.samples == 0) return;
            RttSample& s = merged[k];
            if (s.samples == 0) {
                s.key = k;
                s.min_us = v.min_us;
                s.max_us = v.max_us;
            } else {
                s.min_us = std::min(s.min_us, v.min_us);
                s.max_us = std::max(s.max_us, v.max_us);
            }
            if (v.last_ns >= s.last_ns) {
                s.last_ns = v.last_ns;
                s.last_us = v.last_us;
            }
            s.samples += v.samples;
        });
    std::vector<RttSample> out;
    out.reserve(merged.size());
    for (auto& [k, s] : merged) out.push_back(s);
    return out;
}

uint64_t KernelRtt::lost() const {
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu_));
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rtt_lost), &zero, per_cpu.data()) != 0) return 0;
    uint64_t sum = 0;
    for (uint64_t v : per_cpu) sum += v;
    return sum;
}

}  // namespace bpfix
