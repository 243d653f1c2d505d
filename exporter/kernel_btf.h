#pragma once
// Names looked up in the kernel's BTF (/sys/kernel/btf/vmlinux) by reading
// it in small blocks, never holding it whole. libbpf's
// btf__load_vmlinux_btf() keeps two copies of the 5+ MiB file while it
// parses; the exporter asked it four times at start-up for a handful of
// names (kernel features, drop reasons, tracepoint and function probes), and
// that parse was the exporter's peak memory. Each lookup here reads the file
// again (a few milliseconds) and holds 64 KiB.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bpfix {

class KernelBtf {
public:
    static constexpr const char* kVmlinux = "/sys/kernel/btf/vmlinux";

    // Opens a raw BTF file and checks its header; Error naming the file
    // when it cannot be read or is not BTF.
    explicit KernelBtf(std::string path = kVmlinux);
    ~KernelBtf();
    KernelBtf(const KernelBtf&) = delete;
    KernelBtf& operator=(const KernelBtf&) = delete;

    // Whether the kernel's BTF file exists (kernels built without
    // CONFIG_DEBUG_INFO_BTF have none).
    static bool available(const std::string& path = kVmlinux);

    struct Type {
        uint32_t id = 0;
        uint32_t kind = 0;  // BTF_KIND_*
        uint16_t vlen = 0;  // members, enumerators, parameters
        uint32_t type = 0;  // referenced type (typedef, pointer, func, ...)
    };
    // The first type of this kind with this name.
    std::optional<Type> find(std::string_view name, uint32_t kind) const;
    // The type with this id.
    std::optional<Type> type(uint32_t id) const;

    struct Enumerator {
        std::string name;
        int64_t value = 0;
    };
    // The enumerators of the enum (32- or 64-bit) with this name; nullopt
    // when there is no such enum.
    std::optional<std::vector<Enumerator>> enumerators(std::string_view enum_name) const;

private:
    struct Scan;
    uint32_t string_offset(std::string_view name) const;  // UINT32_MAX when absent
    std::string string_at(uint32_t offset) const;
    // Walks the types in id order; stop(type, extra bytes) returns true to end.
    template <typename F>
    void walk(F stop) const;

    std::string path_;
    int fd_ = -1;
    uint32_t types_at_ = 0, types_len_ = 0, strings_at_ = 0, strings_len_ = 0;
};

}  // namespace bpfix
