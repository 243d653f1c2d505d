#pragma once

#include <cstdint>
#include <string>

namespace bpfix {

// An IPv4 or IPv6 network: "10.0.0.0/8", "2001:db8::/32", or a single
// address. IPv4 sits in the first 4 bytes, as in bpfix_flow_key.
struct Cidr {
    uint8_t addr[16] = {};  // already masked
    uint8_t mask[16] = {};
    uint8_t version = 0;    // 4 or 6

    // Whether `a` (4 or 16 bytes, by `ver`) is inside.
    bool contains(const uint8_t* a, uint8_t ver) const;
};

// Throws bpfix::Error with a message that quotes `text` (callers add where
// it came from).
Cidr parse_cidr(const std::string& text);

}  // namespace bpfix
