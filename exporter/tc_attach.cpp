#include "tc_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <utility>

#include "error.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

// While probing for leftovers a missing qdisc is expected, so libbpf's
// warnings are demoted to debug.
thread_local bool quiet_libbpf = false;

int libbpf_to_spdlog(enum libbpf_print_level level, const char* fmt, va_list args) {
    // Whole: a verifier log (one message) says why at its end.
    va_list again;
    va_copy(again, args);
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, args);
    std::string msg;
    if (n >= static_cast<int>(sizeof buf)) {
        msg.resize(static_cast<size_t>(n) + 1);
        vsnprintf(msg.data(), msg.size(), fmt, again);
        msg.resize(static_cast<size_t>(n));
    } else if (n > 0) {
        msg.assign(buf, static_cast<size_t>(n));
    }
    va_end(again);
    if (msg.rfind("libbpf: ", 0) == 0) msg.erase(0, 8);  // ours says it
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (level == LIBBPF_WARN && !quiet_libbpf) {
        spdlog::warn("libbpf: {}", msg);
    } else {
        spdlog::debug("libbpf: {}", msg);
    }
    return n;
}

enum class Owner { kOurs, kOther, kUnknown };

// Whose program a tc filter runs. Reading a program by id needs
// CAP_SYS_ADMIN: a daemon with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON
// cannot tell (kUnknown).
Owner program_owner(uint32_t prog_id, const TcPrograms& p) {
    int fd = bpf_prog_get_fd_by_id(prog_id);
    if (fd < 0) return errno == EPERM || errno == EACCES ? Owner::kUnknown : Owner::kOther;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                (std::strncmp(info.name, p.ingress_name.c_str(), sizeof info.name - 1) == 0 ||
                 std::strncmp(info.name, p.egress_name.c_str(), sizeof info.name - 1) == 0);
    close(fd);
    return ours ? Owner::kOurs : Owner::kOther;
}

// BPF_TCX_INGRESS and BPF_TCX_EGRESS (kernel 6.6) and BPF_F_BEFORE;
// Debian 12's headers predate them.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;
constexpr uint32_t kBpfFBefore = 1u << 3;

}  // namespace

void route_libbpf_logs() { libbpf_set_print(libbpf_to_spdlog); }

TcAttacher::TcAttacher(TcPrograms progs, AttachMode mode) : progs_(std::move(progs)), mode_(mode) {}

TcAttacher::~TcAttacher() { detach_all(); }

void TcAttacher::detach_all() {
    for (int ifindex : attached_interfaces()) detach(ifindex);
}

std::vector<int> TcAttacher::attached_interfaces() const {
    std::vector<int> out;
    for (const auto& [ifindex, a] : attached_) out.push_back(ifindex);
    return out;
}

bool TcAttacher::remove_leftover(int ifindex, bool* unsure) const {
    bool removed = false;
    quiet_libbpf = true;
    for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
        LIBBPF_OPTS(bpf_tc_opts, q, .handle = progs_.handle, .priority = progs_.priority);
        if (bpf_tc_query(&hook, &q) != 0) continue;
        // At bpfix's own handle and priority, a filter whose program cannot
        // be read (no CAP_SYS_ADMIN) is taken as ours: left, it would block
        // the classic tc attach (EEXIST).
        Owner owner = program_owner(q.prog_id, progs_);
        if (owner == Owner::kOther) continue;
        LIBBPF_OPTS(bpf_tc_opts, d, .handle = progs_.handle, .priority = progs_.priority);
        if (bpf_tc_detach(&hook, &d) == 0) {
            removed = true;
            if (owner == Owner::kUnknown && unsure) *unsure = true;
        }
    }
    quiet_libbpf = false;
    return removed;
}

void TcAttacher::attach(int ifindex, const std::string& name) {
    if (attached(ifindex)) return;
    bool unsure = false;
    if (remove_leftover(ifindex, &unsure)) {
        spdlog::warn("{}: removed a bpfix {} tc filter left by an earlier run{}", name, progs_.what,
                     unsure ? fmt::format(" (at bpfix's handle and priority {:#x}; without CAP_SYS_ADMIN its "
                                          "program cannot be read)",
                                          progs_.handle)
                            : "");
    }
    if (mode_ != AttachMode::kTc && attach_tcx(ifindex, name)) {
        mode_ = AttachMode::kTcx;
    } else {
        mode_ = AttachMode::kTc;
        attach_tc(ifindex, name);
    }
}

bool TcAttacher::attach_tcx(int ifindex, const std::string& name) {
    Attachment a{name};
    const std::pair<int, int> hooks[] = {{kBpfTcxIngress, progs_.ingress_fd}, {kBpfTcxEgress, progs_.egress_fd}};
    for (int i = 0; i < 2; ++i) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = progs_.first ? kBpfFBefore : 0);
        int fd = bpf_link_create(hooks[i].second, ifindex, static_cast<bpf_attach_type>(hooks[i].first), &opts);
        if (fd < 0) {
            int err = errno;
            if (a.links[0] >= 0) close(a.links[0]);
            // EINVAL: a kernel without TCX knows no such attach type.
            if (mode_ == AttachMode::kAuto && i == 0 && (err == EINVAL || err == EOPNOTSUPP)) return false;
            throw Error(fmt::format("interface {}: cannot attach the TCX {} {} program: {}", name,
                                    i == 0 ? "ingress" : "egress", progs_.what, errstr(err)));
        }
        a.links[i] = fd;
    }
    attached_[ifindex] = a;
    return true;
}

void TcAttacher::attach_tc(int ifindex, const std::string& name) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = static_cast<bpf_tc_attach_point>(
                                                           BPF_TC_INGRESS | BPF_TC_EGRESS));
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) {
        throw Error(fmt::format("interface {}: cannot add the clsact qdisc: {}", name, errstr(err)));
    }
    const std::pair<bpf_tc_attach_point, int> hooks[] = {{BPF_TC_INGRESS, progs_.ingress_fd},
                                                         {BPF_TC_EGRESS, progs_.egress_fd}};
    for (const auto& [point, fd] : hooks) {
        hook.attach_point = point;
        LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fd, .handle = progs_.handle, .priority = progs_.priority);
        err = bpf_tc_attach(&hook, &opts);
        if (err) {
            attached_[ifindex] = Attachment{name};
            detach(ifindex);
            throw Error(fmt::format("interface {}: cannot attach the tc {} {} program: {}", name,
                                    point == BPF_TC_INGRESS ? "ingress" : "egress", progs_.what, errstr(err)));
        }
    }
    attached_[ifindex] = Attachment{name};
}

void TcAttacher::detach(int ifindex) {
    auto it = attached_.find(ifindex);
    if (it == attached_.end()) return;
    if (it->second.links[0] >= 0) {
        // Closing a TCX link detaches it (an interface that vanished took
        // its links with it already).
        for (int fd : it->second.links) {
            if (fd >= 0) close(fd);
        }
        attached_.erase(it);
        return;
    }
    for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = progs_.handle, .priority = progs_.priority);
        int err = bpf_tc_detach(&hook, &opts);
        if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL) {
            spdlog::warn("interface {}: cannot detach our {} tc filter: {}", it->second.name, progs_.what,
                         errstr(err));
        }
    }
    // The clsact qdisc stays: other tools may have filters on it by now, and
    // an empty clsact costs nothing.
    attached_.erase(it);
}

}  // namespace bpfix
