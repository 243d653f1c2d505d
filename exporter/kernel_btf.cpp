#include "kernel_btf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/btf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace bpfix {

namespace {

constexpr uint16_t kMagic = 0xeB9F;
constexpr size_t kBlock = 64 * 1024;

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

// Bytes that follow a type's 12-byte header, by kind (include/uapi/linux/btf.h).
bool extra_bytes(uint32_t kind, uint16_t vlen, size_t& out) {
    switch (kind) {
    case BTF_KIND_INT:
    case BTF_KIND_VAR:
    case BTF_KIND_DECL_TAG:
        out = 4;
        return true;
    case BTF_KIND_ARRAY:
        out = sizeof(btf_array);
        return true;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
        out = size_t{vlen} * sizeof(btf_member);
        return true;
    case BTF_KIND_ENUM:
        out = size_t{vlen} * sizeof(btf_enum);
        return true;
    case BTF_KIND_ENUM64:
        out = size_t{vlen} * sizeof(btf_enum64);
        return true;
    case BTF_KIND_FUNC_PROTO:
        out = size_t{vlen} * sizeof(btf_param);
        return true;
    case BTF_KIND_DATASEC:
        out = size_t{vlen} * sizeof(btf_var_secinfo);
        return true;
    case BTF_KIND_PTR:
    case BTF_KIND_FWD:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_FUNC:
    case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG:
        out = 0;
        return true;
    default:
        return false;
    }
}

}  // namespace

// Sequential reads of [at, at + len) of the file in blocks.
struct KernelBtf::Scan {
    Scan(const KernelBtf& b, uint32_t at, uint32_t len) : btf(b), pos(at), end(at + len) { buf.resize(kBlock); }

    // Fills `out` with the next n bytes; false at the end of the range.
    bool read(void* out, size_t n) {
        auto* o = static_cast<char*>(out);
        while (n > 0) {
            if (head == tail && !refill()) return false;
            size_t k = std::min(n, tail - head);
            std::memcpy(o, buf.data() + head, k);
            o += k;
            head += k;
            n -= k;
        }
        return true;
    }
    bool skip(size_t n) {
        size_t k = std::min(n, tail - head);
        head += k;
        n -= k;
        if (n == 0) return true;
        if (n > end - pos) return false;
        pos += static_cast<uint32_t>(n);
        return true;
    }
    // The next byte, or -1 at the end of the range.
    int next() {
        if (head == tail && !refill()) return -1;
        return static_cast<unsigned char>(buf[head++]);
    }

private:
    bool refill() {
        if (pos >= end) return false;
        size_t want = std::min<size_t>(kBlock, end - pos);
        ssize_t got = pread(btf.fd_, buf.data(), want, pos);
        if (got < 0) throw Error(fmt::format("{}: read failed: {}", btf.path_, errstr(errno)));
        if (got == 0) throw Error(fmt::format("{}: ends before its header says (at byte {})", btf.path_, pos));
        pos += static_cast<uint32_t>(got);
        head = 0;
        tail = static_cast<size_t>(got);
        return true;
    }

    const KernelBtf& btf;
    uint32_t pos, end;
    std::vector<char> buf;
    size_t head = 0, tail = 0;
};

bool KernelBtf::available(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

KernelBtf::KernelBtf(std::string path) : path_(std::move(path)) {
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        throw Error(fmt::format("cannot read the kernel's BTF ({}): {}; it needs a kernel built with "
                                "CONFIG_DEBUG_INFO_BTF",
                                path_, errstr(errno)));
    }
    btf_header h{};
    ssize_t got = pread(fd_, &h, sizeof h, 0);
    if (got != static_cast<ssize_t>(sizeof h) || h.magic != kMagic || h.hdr_len < sizeof h) {
        close(fd_);
        throw Error(fmt::format("{}: not a BTF file of this byte order (magic {:#x})", path_, h.magic));
    }
    types_at_ = h.hdr_len + h.type_off;
    types_len_ = h.type_len;
    strings_at_ = h.hdr_len + h.str_off;
    strings_len_ = h.str_len;
}

KernelBtf::~KernelBtf() {
    if (fd_ >= 0) close(fd_);
}

uint32_t KernelBtf::string_offset(std::string_view name) const {
    Scan s(*this, strings_at_, strings_len_);
    uint32_t at = 0, start = 0;
    size_t matched = 0;
    bool ok = true;  // the string so far equals name's prefix
    for (int c; (c = s.next()) >= 0; ++at) {
        if (c == 0) {
            if (ok && matched == name.size()) return start;
            start = at + 1;
            matched = 0;
            ok = true;
        } else if (ok) {
            ok = matched < name.size() && name[matched] == static_cast<char>(c);
            ++matched;
        }
    }
    return UINT32_MAX;
}

std::string KernelBtf::string_at(uint32_t offset) const {
    if (offset >= strings_len_) throw Error(fmt::format("{}: string offset {} is out of range", path_, offset));
    Scan s(*this, strings_at_ + offset, strings_len_ - offset);
    std::string out;
    for (int c; (c = s.next()) > 0;) out.push_back(static_cast<char>(c));
    return out;
}

template <typename F>
void KernelBtf::walk(F stop) const {
    Scan s(*this, types_at_, types_len_);
    btf_type t{};
    std::vector<char> extra;
    for (uint32_t id = 1; s.read(&t, sizeof t); ++id) {
        const uint32_t kind = BTF_INFO_KIND(t.info);
        const uint16_t vlen = static_cast<uint16_t>(BTF_INFO_VLEN(t.info));
        size_t n = 0;
        if (!extra_bytes(kind, vlen, n)) {
            throw Error(fmt::format("{}: type {} has kind {}, unknown to this exporter (built for BTF up to "
                                    "ENUM64)",
                                    path_, id, kind));
        }
        Type found{id, kind, vlen, t.type};
        if (stop(found, t.name_off, s, n)) return;
    }
}

std::optional<KernelBtf::Type> KernelBtf::find(std::string_view name, uint32_t kind) const {
    const uint32_t off = string_offset(name);
    if (off == UINT32_MAX) return std::nullopt;
    std::optional<Type> out;
    walk([&](const Type& t, uint32_t name_off, Scan& s, size_t extra) {
        if (name_off == off && t.kind == kind) {
            out = t;
            return true;
        }
        if (!s.skip(extra)) throw Error(fmt::format("{}: type {} runs past the type section", path_, t.id));
        return false;
    });
    return out;
}

std::optional<KernelBtf::Type> KernelBtf::type(uint32_t id) const {
    std::optional<Type> out;
    walk([&](const Type& t, uint32_t, Scan& s, size_t extra) {
        if (t.id == id) {
            out = t;
            return true;
        }
        if (!s.skip(extra)) throw Error(fmt::format("{}: type {} runs past the type section", path_, t.id));
        return false;
    });
    return out;
}

std::optional<std::vector<KernelBtf::Enumerator>> KernelBtf::enumerators(std::string_view enum_name) const {
    const uint32_t off = string_offset(enum_name);
    if (off == UINT32_MAX) return std::nullopt;
    std::optional<std::vector<Enumerator>> out;
    std::vector<std::pair<uint32_t, int64_t>> raw;  // (name offset, value)
    walk([&](const Type& t, uint32_t name_off, Scan& s, size_t extra) {
        const bool is_enum = t.kind == BTF_KIND_ENUM || t.kind == BTF_KIND_ENUM64;
        if (!(is_enum && name_off == off)) {
            if (!s.skip(extra)) throw Error(fmt::format("{}: type {} runs past the type section", path_, t.id));
            return false;
        }
        for (uint16_t i = 0; i < t.vlen; ++i) {
            bool ok;
            if (t.kind == BTF_KIND_ENUM) {
                btf_enum e{};
                ok = s.read(&e, sizeof e);
                raw.emplace_back(e.name_off, e.val);
            } else {
                btf_enum64 e{};
                ok = s.read(&e, sizeof e);
                raw.emplace_back(e.name_off, static_cast<int64_t>(uint64_t{e.val_hi32} << 32 | e.val_lo32));
            }
            if (!ok) throw Error(fmt::format("{}: enum {} runs past the type section", path_, enum_name));
        }
        out.emplace();
        return true;
    });
    if (out) {
        out->reserve(raw.size());
        for (const auto& [name_off, value] : raw) out->push_back({string_at(name_off), value});
    }
    return out;
}

}  // namespace bpfix
