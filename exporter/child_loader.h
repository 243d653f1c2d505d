#pragma once
// Loads and attaches an opened BPF skeleton in a short-lived child process
// and adopts its maps and links in this one.
//
// To load a tracing program (tp_btf, fentry) libbpf parses the whole
// kernel BTF: two copies of its 5+ MiB at once, the exporter's peak memory
// by far. The child does that parse, loads and attaches, hands the map and
// link descriptors back over a socket (SCM_RIGHTS) and exits; this process
// never holds the kernel's BTF (peak RSS with every enricher: see
// docs/benchmarks.md). The child is forked before any thread starts (the
// exporter builds its tracers first thing), so it may log and allocate.
//
// After a successful call the skeleton's maps are usable as after
// X__load() (bpf_map__fd, mmapped .bss/.data/.rodata), its programs are
// not: they live in the kernel behind the links, which stay attached as
// long as the returned LinkSet lives.
#include <optional>
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

struct ChildLoadFailure {
    enum Step { kLoad, kAttach } step;
    int err;  // negative errno, like libbpf
};

// bpf_object__load_skeleton and bpf_object__attach_skeleton of `s` (opened,
// tunables set) in a child; nullopt and `links` filled on success, else the
// step that failed and its error. Throws bpfix::Error when the child
// cannot be started or dies without an answer.
std::optional<ChildLoadFailure> load_and_attach_in_child(bpf_object_skeleton* s, LinkSet& links);

}  // namespace bpfix
