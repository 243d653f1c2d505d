#include "kernel_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"
#include "kernel_loader_run.h"

namespace bpfix {

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

// The loader program's context (skel_internal.h): a header, then one
// descriptor per map and per program of the object, in the object's order.
struct LoaderCtx {
    uint32_t sz, flags, log_level, log_size;
    uint64_t log_buf;
};
struct MapDesc {
    int map_fd;  // out
    uint32_t max_entries;
    alignas(8) uint64_t initial_value;
};
struct ProgDesc {
    int prog_fd;  // out
};

const bpf_map_skeleton& map_skel(const bpf_object_skeleton* s, int i) {
    return *reinterpret_cast<const bpf_map_skeleton*>(reinterpret_cast<const char*>(s->maps) +
                                                      static_cast<size_t>(i) * static_cast<size_t>(s->map_skel_sz));
}

// Puts the kernel's array map behind the address where libbpf keeps the
// skeleton's copy of .bss/.data/.rodata, as X__load() does.
void map_global_data(const bpf_map_skeleton& m) {
    if (!m.mmaped || !*m.mmaped) return;
    bpf_map* map = *m.map;
    const uint32_t flags = bpf_map__map_flags(map);
    if (!(flags & BPF_F_MMAPABLE)) {
        *m.mmaped = nullptr;  // as libbpf does where arrays cannot be mapped
        return;
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t size = (static_cast<size_t>(bpf_map__value_size(map)) + 7) / 8 * 8 * bpf_map__max_entries(map);
    size = (size + page - 1) / page * page;
    const int prot = (flags & BPF_F_RDONLY_PROG) ? PROT_READ : PROT_READ | PROT_WRITE;
    if (mmap(*m.mmaped, size, prot, MAP_SHARED | MAP_FIXED, bpf_map__fd(map), 0) == MAP_FAILED) {
        throw Error(fmt::format("cannot map the BPF map {} into memory: {}", bpf_map__name(map), errstr(errno)));
    }
}

struct Fds {
    std::vector<int> fds;
    ~Fds() {
        for (int fd : fds) {
            if (fd >= 0) close(fd);
        }
    }
};

// nullopt: the kernel cannot run the loader (or libbpf cannot write one for
// this object); `why` says what.
std::optional<LoadOutcome> in_kernel(bpf_object_skeleton* s, LinkSet& links, std::string& why) {
    bpf_object* obj = *s->obj;
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, obj) {
        if (bpf_program__autoload(p) && bpf_program__type(p) != BPF_PROG_TYPE_TRACING) {
            why = fmt::format("{} is not a tracing program (libbpf attaches it)", bpf_program__name(p));
            return std::nullopt;
        }
    }
    gen_loader_opts gen{};
    gen.sz = sizeof gen;
    if (int err = bpf_object__gen_loader(obj, &gen)) {
        why = "libbpf cannot write a loader program: " + errstr(err);
        return std::nullopt;
    }
    if (int err = bpf_object__load(obj)) {
        why = "libbpf cannot write the loader program: " + errstr(err);
        return std::nullopt;
    }
    size_t nmaps = 0, nprogs = 0;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, obj) ++nmaps;
    bpf_object__for_each_program(p, obj) ++nprogs;

    const size_t size = sizeof(LoaderCtx) + nmaps * sizeof(MapDesc) + nprogs * sizeof(ProgDesc);
    std::vector<uint64_t> buf((size + 7) / 8);
    auto* ctx = reinterpret_cast<LoaderCtx*>(buf.data());
    auto* maps = reinterpret_cast<MapDesc*>(ctx + 1);
    auto* progs = reinterpret_cast<ProgDesc*>(maps + nmaps);
    ctx->sz = static_cast<uint32_t>(size);
    for (size_t i = 0; i < nmaps; ++i) maps[i].map_fd = -1;
    for (size_t i = 0; i < nprogs; ++i) progs[i].prog_fd = -1;
    const char* step = nullptr;
    int err = bpfix_run_loader(ctx, gen.data, gen.data_sz, gen.insns, gen.insns_sz, &step);
    Fds made;  // everything the loader made, closed on the way out
    for (size_t i = 0; i < nmaps; ++i) made.fds.push_back(maps[i].map_fd);
    for (size_t i = 0; i < nprogs; ++i) made.fds.push_back(progs[i].prog_fd);
    if (err != 0) {
        if (step && std::strcmp(step, "failed to execute loader prog") == 0) {
            // The loader ran: the kernel refused a map or a program.
            return LoadOutcome{LoadOutcome::kLoadRefused, err, true, step};
        }
        why = fmt::format("the kernel cannot run a loader program ({}: {})", step ? step : "?", errstr(err));
        return std::nullopt;
    }

    size_t i = 0;
    bpf_object__for_each_map(m, obj) {
        int& fd = made.fds[i++];
        if (fd < 0) continue;  // not created (autocreate off)
        int e = bpf_map__reuse_fd(m, fd);
        if (e) throw Error(fmt::format("cannot adopt the BPF map {}: {}", bpf_map__name(m), errstr(e)));
    }
    for (int k = 0; k < s->map_cnt; ++k) map_global_data(map_skel(s, k));
    LinkSet attached;
    bpf_object__for_each_program(p, obj) {
        const int fd = made.fds[i++];
        if (fd < 0) continue;  // not loaded (autoload off)
        // tp_btf, fentry and fexit attach at the target the kernel resolved.
        int link = bpf_raw_tracepoint_open(nullptr, fd);
        if (link < 0) return LoadOutcome{LoadOutcome::kAttachRefused, -errno, true, bpf_program__name(p)};
        attached.add(link);
    }
    links = std::move(attached);
    return LoadOutcome{};
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

LoadOutcome load_and_attach(bpf_object_skeleton* s, const std::function<bpf_object_skeleton*()>& reopen,
                            LinkSet& links) {
    std::string why;
    if (auto done = in_kernel(s, links, why)) return *done;
    spdlog::debug("{}: loading with libbpf in this process (it parses the kernel's BTF): {}", s->name, why);
    bpf_object_skeleton* again = reopen();
    LoadOutcome out;
    out.in_kernel = false;
    out.detail = why;
    if (int err = bpf_object__load_skeleton(again)) {
        out.status = LoadOutcome::kLoadRefused;
        out.err = err;
    } else if (int err2 = bpf_object__attach_skeleton(again)) {
        out.status = LoadOutcome::kAttachRefused;
        out.err = err2;
    }
    return out;
}

}  // namespace bpfix
