// Where the collector listens: the [listen] urls, each served by the
// sockets systemd passed for it (bpfix-collector.socket) or else by
// sockets the collector binds itself. A passed socket no URL names is
// served as it is: the socket unit then says where to listen.
#pragma once

#include <asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "collector_url.h"
#include "socket_activation.h"

namespace bpfix {

struct Listener {
    CollectorUrl::Kind kind = CollectorUrl::Kind::udp;
    std::string text;  // the URL as configured, or the passed socket's
    asio::ip::address address;
    uint16_t port = 0;
    // Passed sockets (for UDP several may share the port with
    // SO_REUSEPORT: one decode thread each); empty: bind one's own.
    std::vector<int> fds;
};

// Matches `urls` with `inherited`. A URL and a passed socket match when
// they have the same transport, port and address (0.0.0.0 and [::] both
// mean every address). Errors, naming both sides: a URL and a passed
// socket on the same transport and port but other addresses (the bind
// would fail, or one of them would never be read); a passed socket that
// is not a UDP socket or a listening TCP/SCTP socket.
// With no URL and no passed socket: kDefaultListen (IPFIX's port, RFC
// 7011, on loopback: exporters on other hosts need [listen] urls).
std::vector<Listener> plan_listeners(const std::vector<std::string>& urls, const std::vector<InheritedSocket>& inherited);

inline const std::vector<std::string> kDefaultListen = {"udp://127.0.0.1:4739", "tcp://127.0.0.1:4739"};

}  // namespace bpfix
