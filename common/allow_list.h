// Which peers may connect: a list of networks (CIDRs); empty allows all.
// IPv4-mapped IPv6 peers (a dual-stack socket) count as their IPv4 address.
#pragma once

#include <asio/ip/address.hpp>
#include <string>
#include <vector>

#include "cidr.h"

namespace bpfix {

// The address itself, or the IPv4 address inside an IPv4-mapped one.
asio::ip::address plain_address(const asio::ip::address& a);

class AllowList {
public:
    AllowList() = default;
    // Throws bpfix::Error quoting the entry that is not a network.
    explicit AllowList(const std::vector<std::string>& cidrs);
    bool empty() const { return nets_.empty(); }
    bool allows(const asio::ip::address& addr) const;

private:
    std::vector<Cidr> nets_;
};

}  // namespace bpfix
