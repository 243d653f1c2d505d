#pragma once
// Loads an opened BPF skeleton of tracing programs (tp_btf, fentry) without
// parsing the kernel's BTF in user space, and attaches them.
//
// libbpf loads such a program by parsing the whole kernel BTF to resolve
// CO-RE relocations and the attach target: two copies of its 5+ MiB at
// once, the exporter's peak memory by far. Here libbpf only writes a loader
// program (its gen_loader, what light skeletons use) and the kernel runs
// it: the kernel resolves relocations and targets against the BTF it
// already holds, creates the maps and loads the programs (kernels 5.17 and
// later; older ones and any kernel that cannot run loader programs get
// libbpf's usual load, through `reopen`).
//
// After a load through the kernel the skeleton's maps are usable as after
// X__load() (bpf_map__fd, mmapped .bss/.data/.rodata); its programs are
// not (bpf_program__fd is -1): they live behind the links, which stay
// attached as long as the LinkSet lives.
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct bpf_object_skeleton;

namespace bpfix {

// Descriptors of attached BPF links; closing them detaches the programs.
class LinkSet {
public:
    LinkSet() = default;
    ~LinkSet();
    LinkSet(LinkSet&& o) noexcept : fds_(std::move(o.fds_)) { o.fds_.clear(); }
    LinkSet& operator=(LinkSet&& o) noexcept;
    LinkSet(const LinkSet&) = delete;
    LinkSet& operator=(const LinkSet&) = delete;

    void add(int fd) { fds_.push_back(fd); }
    size_t size() const { return fds_.size(); }

private:
    std::vector<int> fds_;
};

struct LoadOutcome {
    enum Status { kAttached, kLoadRefused, kAttachRefused } status = kAttached;
    int err = 0;            // negative errno, like libbpf, when not attached
    bool in_kernel = true;  // loaded by a loader program (else by libbpf here)
    std::string detail;     // why libbpf loaded it here, or the step the kernel's loader failed at
};

// Loads and attaches `s` (opened, tunables set). Tries the kernel's loader
// first; when the kernel cannot run it, calls `reopen` (which opens the
// skeleton again with the same tunables: the first attempt used it up) and
// loads and attaches that with libbpf. Throws bpfix::Error only when a
// loaded map cannot be adopted.
LoadOutcome load_and_attach(bpf_object_skeleton* s, const std::function<bpf_object_skeleton*()>& reopen,
                            LinkSet& links);

}  // namespace bpfix
