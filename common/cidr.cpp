#include "cidr.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

#include "error.h"

namespace bpfix {

bool Cidr::contains(const uint8_t* a, uint8_t ver) const {
    if (ver != version) return false;
    int n = ver == 4 ? 4 : 16;
    for (int i = 0; i < n; ++i) {
        if ((a[i] & mask[i]) != addr[i]) return false;
    }
    return true;
}

Cidr parse_cidr(const std::string& text) {
    Cidr c;
    std::string a = text;
    int prefix = -1;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        a = text.substr(0, slash);
        std::string p = text.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (ec != std::errc() || ptr != p.data() + p.size()) {
            throw Error(fmt::format("'{}' has a bad prefix length", text));
        }
    }
    int bits;
    if (inet_pton(AF_INET, a.c_str(), c.addr) == 1) {
        c.version = 4;
        bits = 32;
    } else if (inet_pton(AF_INET6, a.c_str(), c.addr) == 1) {
        c.version = 6;
        bits = 128;
    } else {
        throw Error(fmt::format("'{}' is not an IPv4 or IPv6 address or CIDR", text));
    }
    if (prefix < 0) prefix = bits;
    if (prefix > bits) throw Error(fmt::format("prefix /{} is longer than {} bits", prefix, bits));
    for (int i = 0; i < prefix; ++i) c.mask[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
    for (int i = 0; i < 16; ++i) c.addr[i] &= c.mask[i];
    return c;
}

}  // namespace bpfix
