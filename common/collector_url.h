#pragma once

#include <asio/ip/address.hpp>

#include <cstdint>
#include <string>

namespace bpfix {

// Where IPFIX goes: `sctp://HOST:PORT`, `tcp://HOST:PORT`, `udp://HOST:PORT`
// (HOST may be a name, an IPv4 address or a bracketed IPv6 address) or
// `file:PATH`.
struct CollectorUrl {
    enum class Kind { tcp, udp, sctp, file };
    Kind kind = Kind::udp;
    std::string host;
    uint16_t port = 0;
    std::string path;

    std::string str() const;
};

// Throws bpfix::Error saying what is wrong and what a valid URL looks like.
CollectorUrl parse_collector_url(const std::string& text);

// Where a collector listens: `udp://ADDR:PORT`, `tcp://ADDR:PORT` or `sctp://ADDR:PORT`
// (port 0: any free port). Throws bpfix::Error like parse_collector_url.
CollectorUrl parse_listen_url(const std::string& text);
// The address a listen URL's host names: an IP address, or "" / "*" for
// every address (IPv6 any, which takes IPv4 too). Throws bpfix::Error.
asio::ip::address resolve_address(const std::string& host);

}  // namespace bpfix
