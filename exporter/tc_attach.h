// Hooking a pair of TC programs (ingress, egress) to interfaces: TCX links
// on kernels that have them, classic tc (clsact + cls_bpf) elsewhere.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bpfix {

// How the programs are hooked to an interface: TCX links (kernel 6.6+:
// no qdisc, cheaper per packet, detached by the kernel when the process
// dies), classic tc (clsact qdisc + cls_bpf filter, any kernel), or TCX
// where the kernel has it and classic tc elsewhere.
enum class AttachMode { kAuto, kTcx, kTc };

// Routes libbpf's messages to our logger (once per process is enough;
// calling again is harmless).
void route_libbpf_logs();

// One pair of programs and where it sits among other TC programs. Our tc
// filters carry a fixed handle and priority so a later run can find and
// remove leftovers of a crashed one, and never touch other tools' filters.
struct TcPrograms {
    std::string what;                   // "flow meter", for messages
    int ingress_fd = -1, egress_fd = -1;
    std::string ingress_name, egress_name;  // program names: how a leftover is recognised
    uint32_t handle = 0, priority = 0;  // classic tc; a lower priority runs earlier
    bool first = false;                 // TCX: before every other program of the hook
};

class TcAttacher {
public:
    TcAttacher(TcPrograms progs, AttachMode mode);
    ~TcAttacher();  // detaches everything it attached
    TcAttacher(const TcAttacher&) = delete;
    TcAttacher& operator=(const TcAttacher&) = delete;

    // Whether the programs are attached as TCX links (known after the
    // first attach).
    bool using_tcx() const { return mode_ == AttachMode::kTcx; }
    // Attaches to both directions of `ifindex`. Throws bpfix::Error naming
    // the interface when the kernel refuses.
    void attach(int ifindex, const std::string& name);
    // Detaches from `ifindex` (an interface that vanished needs nothing).
    void detach(int ifindex);
    void detach_all();
    bool attached(int ifindex) const { return attached_.count(ifindex) != 0; }
    std::vector<int> attached_interfaces() const;

    // Removes a filter of these programs left on `ifindex` by a run that
    // died; sets *unsure when one was taken as ours only by its handle and
    // priority (its program could not be read without CAP_SYS_ADMIN).
    bool remove_leftover(int ifindex, bool* unsure = nullptr) const;

private:
    struct Attachment {
        std::string name;
        int links[2] = {-1, -1};  // TCX links (ingress, egress); -1 under classic tc
    };
    bool attach_tcx(int ifindex, const std::string& name);
    void attach_tc(int ifindex, const std::string& name);
    TcPrograms progs_;
    AttachMode mode_;
    std::map<int, Attachment> attached_;
};

}  // namespace bpfix
