#include "listen_plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "allow_list.h"
#include "error.h"

namespace bpfix {
namespace {

CollectorUrl::Kind kind_of(InheritedSocket::Kind k) {
    switch (k) {
        case InheritedSocket::Kind::udp: return CollectorUrl::Kind::udp;
        case InheritedSocket::Kind::tcp: return CollectorUrl::Kind::tcp;
        case InheritedSocket::Kind::sctp: return CollectorUrl::Kind::sctp;
        default: return CollectorUrl::Kind::file;
    }
}

bool same_address(const asio::ip::address& a, const asio::ip::address& b) {
    if (a.is_unspecified() && b.is_unspecified()) return true;
    return plain_address(a) == plain_address(b);
}

}  // namespace

std::vector<Listener> plan_listeners(const std::vector<std::string>& urls, const std::vector<InheritedSocket>& inherited) {
    std::vector<Listener> out;
    std::vector<bool> used(inherited.size(), false);
    for (size_t i = 0; i < inherited.size(); ++i) {
        const InheritedSocket& s = inherited[i];
        if (s.kind == InheritedSocket::Kind::other) {
            throw Error(fmt::format("systemd passed {}: the collector takes UDP sockets and listening TCP or SCTP "
                                    "sockets (ListenDatagram=, ListenStream=, ListenSequentialPacket= with "
                                    "SocketProtocol=sctp); fix the socket unit",
                                    s.url()));
        }
        if (s.kind != InheritedSocket::Kind::udp && !s.listening) {
            throw Error(fmt::format("systemd passed {} as a connection, not a listening socket: the socket unit "
                                    "must have Accept=no",
                                    s.url()));
        }
    }
    for (const auto& text : urls) {
        CollectorUrl url = parse_listen_url(text);
        Listener l{url.kind, text, resolve_address(url.host), url.port, {}};
        for (size_t i = 0; i < inherited.size(); ++i) {
            const InheritedSocket& s = inherited[i];
            if (kind_of(s.kind) != url.kind || s.port() != url.port || url.port == 0) continue;
            const auto addr = asio::ip::make_address(s.address());
            if (!same_address(addr, l.address)) {
                throw Error(fmt::format("[listen] url {} and the socket systemd passed, {}{}, share the port but "
                                        "not the address: make the socket unit's Listen line name the same address, "
                                        "or drop the url and let the socket unit say where to listen",
                                        text, s.url(), s.name.empty() ? "" : fmt::format(" ({})", s.name)));
            }
            if (used[i]) continue;
            used[i] = true;
            l.fds.push_back(s.fd);
        }
        out.push_back(std::move(l));
    }
    for (size_t i = 0; i < inherited.size(); ++i) {
        if (used[i]) continue;
        const InheritedSocket& s = inherited[i];
        const auto addr = asio::ip::make_address(s.address());
        // UDP sockets on one port (several ListenDatagram= lines with
        // ReusePort=yes) serve one listener.
        auto same = std::find_if(out.begin(), out.end(), [&](const Listener& l) {
            return !l.fds.empty() && l.kind == kind_of(s.kind) && l.kind == CollectorUrl::Kind::udp &&
                   l.port == s.port() && same_address(l.address, addr);
        });
        if (same != out.end()) {
            same->fds.push_back(s.fd);
            continue;
        }
        out.push_back(Listener{kind_of(s.kind), s.url(), addr, s.port(), {s.fd}});
    }
    if (out.empty()) {
        spdlog::info("no [listen] urls, --listen or sockets from bpfix-collector.socket: listening on {} (IPFIX's "
                     "port on loopback; set [listen] urls for exporters on other hosts)",
                     fmt::join(kDefaultListen, " and "));
        return plan_listeners(kDefaultListen, {});
    }
    return out;
}

}  // namespace bpfix
