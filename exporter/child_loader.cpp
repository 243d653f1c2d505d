#include "child_loader.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "error.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

// What the child sends, with the descriptors (maps that exist, then links)
// as SCM_RIGHTS.
struct Answer {
    int32_t failed_step;  // -1: none, else ChildLoadFailure::Step
    int32_t err;
    uint64_t map_mask;   // bit i: map i's descriptor is among those sent
    uint64_t link_mask;  // bit i: program i's link is among those sent
    uint64_t peak_rss_kib;
};

constexpr int kMaxItems = 64;
constexpr size_t kMaxFds = 2 * kMaxItems;

uint64_t peak_rss_kib() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
    return 0;
}

bpf_map* map_at(const bpf_object_skeleton* s, int i) {
    auto* m = reinterpret_cast<const bpf_map_skeleton*>(reinterpret_cast<const char*>(s->maps) +
                                                        static_cast<size_t>(i) * static_cast<size_t>(s->map_skel_sz));
    return *m->map;
}

void** mmaped_at(const bpf_object_skeleton* s, int i) {
    auto* m = reinterpret_cast<const bpf_map_skeleton*>(reinterpret_cast<const char*>(s->maps) +
                                                        static_cast<size_t>(i) * static_cast<size_t>(s->map_skel_sz));
    return m->mmaped;
}

bpf_link* link_at(const bpf_object_skeleton* s, int i) {
    auto* p = reinterpret_cast<const bpf_prog_skeleton*>(reinterpret_cast<const char*>(s->progs) +
                                                         static_cast<size_t>(i) * static_cast<size_t>(s->prog_skel_sz));
    return p->link ? *p->link : nullptr;
}

[[noreturn]] void child(bpf_object_skeleton* s, int sock) {
    Answer a{-1, 0, 0, 0, 0};
    std::vector<int> fds;
    if (int err = bpf_object__load_skeleton(s)) {
        a.failed_step = ChildLoadFailure::kLoad;
        a.err = err;
    } else if (int err2 = bpf_object__attach_skeleton(s)) {
        a.failed_step = ChildLoadFailure::kAttach;
        a.err = err2;
    } else {
        for (int i = 0; i < s->map_cnt; ++i) {
            int fd = bpf_map__fd(map_at(s, i));
            if (fd < 0) continue;  // not created (autocreate off)
            a.map_mask |= uint64_t{1} << i;
            fds.push_back(fd);
        }
        for (int i = 0; i < s->prog_cnt; ++i) {
            bpf_link* l = link_at(s, i);
            if (!l) continue;  // not loaded (autoload off)
            a.link_mask |= uint64_t{1} << i;
            fds.push_back(bpf_link__fd(l));
        }
    }
    a.peak_rss_kib = peak_rss_kib();
    iovec iov{&a, sizeof a};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    int rc = sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof a) ? 0 : 1;
    // No destructors, no atexit handlers of the parent's state: the parent
    // owns everything from here (the kernel objects live on through the
    // descriptors it received).
    _exit(rc);
}

// Puts the kernel's array map behind the address where libbpf keeps the
// skeleton's copy of .bss/.data/.rodata, as X__load() does.
void map_global_data(bpf_object_skeleton* s, int i) {
    void** mmaped = mmaped_at(s, i);
    if (!mmaped || !*mmaped) return;
    bpf_map* map = map_at(s, i);
    const uint32_t flags = bpf_map__map_flags(map);
    if (!(flags & BPF_F_MMAPABLE)) {
        *mmaped = nullptr;  // as libbpf does on kernels without mmapable arrays
        return;
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t size = (static_cast<size_t>(bpf_map__value_size(map)) + 7) / 8 * 8 * bpf_map__max_entries(map);
    size = (size + page - 1) / page * page;
    const int prot = (flags & BPF_F_RDONLY_PROG) ? PROT_READ : PROT_READ | PROT_WRITE;
    void* p = mmap(*mmaped, size, prot, MAP_SHARED | MAP_FIXED, bpf_map__fd(map), 0);
    if (p == MAP_FAILED) {
        throw Error(fmt::format("cannot map the BPF map {} into memory: {}", bpf_map__name(map), errstr(errno)));
    }
}

}  // namespace

LinkSet::~LinkSet() {
    for (int fd : fds_) close(fd);
}

LinkSet& LinkSet::operator=(LinkSet&& o) noexcept {
    if (this != &o) {
        for (int fd : fds_) close(fd);
        fds_ = std::move(o.fds_);
        o.fds_.clear();
    }
    return *this;
}

std::optional<ChildLoadFailure> load_and_attach_in_child(bpf_object_skeleton* s, LinkSet& links) {
    if (s->map_cnt > kMaxItems || s->prog_cnt > kMaxItems) {
        throw Error(fmt::format("BPF object {}: more than {} maps or programs", s->name, kMaxItems));
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        throw Error("cannot make a socket pair for the BPF loader process: " + errstr(errno));
    }
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        throw Error("cannot start the BPF loader process (fork): " + errstr(e));
    }
    if (pid == 0) {
        close(sv[0]);
        child(s, sv[1]);
    }
    close(sv[1]);

    Answer a{};
    iovec iov{&a, sizeof a};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got;
    do {
        got = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    const int recv_errno = errno;
    close(sv[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const auto* p = reinterpret_cast<const int*>(CMSG_DATA(c));
        fds.insert(fds.end(), p, p + n);
    }
    auto close_all = [&fds] {
        for (int fd : fds) close(fd);
    };
    if (got != static_cast<ssize_t>(sizeof a) || (msg.msg_flags & MSG_CTRUNC)) {
        close_all();
        std::string how = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                              : fmt::format("exit status {}", WEXITSTATUS(status));
        throw Error(fmt::format("the BPF loader process for {} gave no answer ({}; {})", s->name,
                                got < 0 ? errstr(recv_errno) : "short or truncated message", how));
    }
    if (a.failed_step >= 0) {
        close_all();
        return ChildLoadFailure{static_cast<ChildLoadFailure::Step>(a.failed_step), a.err};
    }
    spdlog::debug("{}: loaded and attached by a child process (its peak RSS {:.1f} MiB)", s->name,
                  a.peak_rss_kib / 1024.0);
    const size_t expected = static_cast<size_t>(__builtin_popcountll(a.map_mask) + __builtin_popcountll(a.link_mask));
    if (fds.size() != expected) {
        close_all();
        throw Error(fmt::format("the BPF loader process for {} sent {} descriptors, not {}", s->name, fds.size(),
                                expected));
    }
    size_t k = 0;
    LinkSet got_links;
    try {
        for (int i = 0; i < s->map_cnt; ++i) {
            if (!(a.map_mask >> i & 1)) continue;
            bpf_map* map = map_at(s, i);
            int err = bpf_map__reuse_fd(map, fds[k]);
            close(fds[k]);
            fds[k++] = -1;
            if (err) throw Error(fmt::format("cannot adopt the BPF map {}: {}", bpf_map__name(map), errstr(err)));
            map_global_data(s, i);
        }
        for (int i = 0; i < s->prog_cnt; ++i) {
            if (!(a.link_mask >> i & 1)) continue;
            got_links.add(fds[k]);
            fds[k++] = -1;
        }
    } catch (...) {  // close what was not adopted yet, then report
        for (int fd : fds) {
            if (fd >= 0) close(fd);
        }
        throw;
    }
    links = std::move(got_links);
    return std::nullopt;
}

}  // namespace bpfix
