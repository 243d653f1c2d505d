// Builds frames byte by byte for parser and meter tests, so each test shows
// exactly which header bytes it feeds.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace bpfix::test {

class Frame {
public:
    Frame& eth(uint16_t type) {
        bytes(std::vector<uint8_t>(12, 0x02));
        return be16(type);
    }
    Frame& vlan(uint16_t tpid_after, uint16_t vid) {
        // Caller wrote the TPID as the ethertype; this adds TCI + next type.
        be16(vid);
        return be16(tpid_after);
    }
    Frame& ipv4(uint8_t proto, std::initializer_list<uint8_t> src, std::initializer_list<uint8_t> dst,
                uint16_t total_len, uint16_t frag = 0, uint16_t id = 1, uint8_t ihl_words = 5, uint8_t tos = 0) {
        b(static_cast<uint8_t>(0x40 | ihl_words)).b(tos).be16(total_len).be16(id).be16(frag).b(64).b(proto).be16(0);
        bytes(src).bytes(dst);
        for (int i = 5; i < ihl_words; ++i) be16(0x0101).be16(0x0101);  // NOP options
        return *this;
    }
    Frame& ipv6(uint8_t next, uint8_t last_src, uint8_t last_dst, uint16_t payload_len) {
        be16(0x6000).be16(0).be16(payload_len).b(next).b(64);
        for (int i = 0; i < 15; ++i) b(i == 0 ? 0x20 : 0);
        b(last_src);
        for (int i = 0; i < 15; ++i) b(i == 0 ? 0x20 : 0);
        return b(last_dst);
    }
    Frame& tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
        be16(sport).be16(dport).be16(0).be16(0).be16(0).be16(0);
        return b(0x50).b(flags).be16(1024).be16(0).be16(0);
    }
    Frame& udp(uint16_t sport, uint16_t dport, uint16_t len) { return be16(sport).be16(dport).be16(len).be16(0); }
    Frame& icmp(uint8_t type, uint8_t code) { return b(type).b(code).be16(0).be16(0).be16(0); }
    Frame& zeros(size_t n) {
        data_.insert(data_.end(), n, 0);
        return *this;
    }
    Frame& b(uint8_t v) {
        data_.push_back(v);
        return *this;
    }
    Frame& be16(uint16_t v) { return b(static_cast<uint8_t>(v >> 8)).b(static_cast<uint8_t>(v)); }
    Frame& be32(uint32_t v) { return be16(static_cast<uint16_t>(v >> 16)).be16(static_cast<uint16_t>(v)); }
    Frame& bytes(std::initializer_list<uint8_t> v) {
        data_.insert(data_.end(), v);
        return *this;
    }
    Frame& bytes(const std::vector<uint8_t>& v) {
        data_.insert(data_.end(), v.begin(), v.end());
        return *this;
    }
    const std::vector<uint8_t>& data() const { return data_; }
    size_t size() const { return data_.size(); }

private:
    std::vector<uint8_t> data_;
};

}  // namespace bpfix::test
