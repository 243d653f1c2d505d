#include "allow_list.h"

#include <algorithm>

namespace bpfix {

asio::ip::address plain_address(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

AllowList::AllowList(const std::vector<std::string>& cidrs) {
    for (const auto& c : cidrs) nets_.push_back(parse_cidr(c));
}

bool AllowList::allows(const asio::ip::address& addr) const {
    if (nets_.empty()) return true;
    asio::ip::address a = plain_address(addr);
    uint8_t bytes[16] = {};
    uint8_t ver = 4;
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), bytes);
    } else {
        auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), bytes);
        ver = 6;
    }
    return std::any_of(nets_.begin(), nets_.end(), [&](const Cidr& c) { return c.contains(bytes, ver); });
}

}  // namespace bpfix
