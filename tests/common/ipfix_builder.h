#pragma once
// Builds IPFIX messages field by field for tests: each case can break
// exactly one thing (offsets let a test corrupt a field afterwards).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bpfix::test {

constexpr uint16_t kVarLen = 65535;

struct FieldSpec {
    uint16_t id;
    uint16_t len;
    uint32_t pen = 0;
};

// Writes an IPFIX message field by field; build() fills in the message
// length. Offsets it reports let a test corrupt one field afterwards.
class MessageBuilder {
public:
    explicit MessageBuilder(uint32_t domain = 1, uint32_t sequence = 0) {
        u16(10).u16(0).u32(1700000000).u32(sequence).u32(domain);
    }

    MessageBuilder& u8(uint8_t v) {
        bytes_.push_back(v);
        return *this;
    }
    MessageBuilder& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
    MessageBuilder& u32(uint32_t v) { return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v)); }
    MessageBuilder& u64(uint64_t v) { return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v)); }
    MessageBuilder& raw(std::string_view s) {
        bytes_.insert(bytes_.end(), s.begin(), s.end());
        return *this;
    }
    // A variable-length value: 1-byte length, or 255 + 2-byte length.
    MessageBuilder& varlen(std::string_view s) {
        if (s.size() < 255) {
            u8(static_cast<uint8_t>(s.size()));
        } else {
            u8(255).u16(static_cast<uint16_t>(s.size()));
        }
        return raw(s);
    }

    MessageBuilder& begin_set(uint16_t set_id) {
        set_start_ = bytes_.size();
        return u16(set_id).u16(0);
    }
    MessageBuilder& end_set() {
        put_u16(set_start_ + 2, static_cast<uint16_t>(bytes_.size() - set_start_));
        return *this;
    }
    MessageBuilder& field(const FieldSpec& f) {
        if (f.pen) {
            return u16(f.id | 0x8000).u16(f.len).u32(f.pen);
        }
        return u16(f.id).u16(f.len);
    }
    MessageBuilder& template_record(uint16_t tid, const std::vector<FieldSpec>& fields) {
        u16(tid).u16(static_cast<uint16_t>(fields.size()));
        for (const auto& f : fields) field(f);
        return *this;
    }
    MessageBuilder& options_template_record(uint16_t tid, uint16_t scope_count, const std::vector<FieldSpec>& fields) {
        u16(tid).u16(static_cast<uint16_t>(fields.size())).u16(scope_count);
        for (const auto& f : fields) field(f);
        return *this;
    }
    MessageBuilder& template_set(uint16_t tid, const std::vector<FieldSpec>& fields) {
        return begin_set(2).template_record(tid, fields).end_set();
    }

    size_t size() const { return bytes_.size(); }
    size_t set_start() const { return set_start_; }
    void put_u16(size_t offset, uint16_t v) {
        bytes_.at(offset) = static_cast<uint8_t>(v >> 8);
        bytes_.at(offset + 1) = static_cast<uint8_t>(v);
    }
    std::vector<uint8_t> build() const {
        std::vector<uint8_t> m = bytes_;
        m[2] = static_cast<uint8_t>(m.size() >> 8);
        m[3] = static_cast<uint8_t>(m.size());
        return m;
    }

private:
    std::vector<uint8_t> bytes_;
    size_t set_start_ = 0;
};

}  // namespace bpfix::test
