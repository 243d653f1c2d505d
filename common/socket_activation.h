// systemd's socket passing (sd_listen_fds(3)): a .socket unit opens the
// listening sockets and hands them to the service as descriptors 3, 4, ...
// ($LISTEN_FDS of them, for the process $LISTEN_PID names, called
// $LISTEN_FDNAMES). The sockets belong to the socket unit: they stay open
// while the service restarts, so datagrams and connections that arrive in
// between wait in the kernel instead of being refused.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bpfix {

struct InheritedSocket {
    int fd = -1;
    std::string name;  // from LISTEN_FDNAMES ("bpfix-collector.socket" by default)
    enum class Kind { udp, tcp, sctp, other } kind = Kind::other;
    bool listening = false;  // a stream socket that accepts (SO_ACCEPTCONN)
    sockaddr_storage local{};
    socklen_t local_len = 0;
    // "udp://[::]:4739", "tcp://127.0.0.1:4739"; "fd N (what it is)" for
    // one that is none of these.
    std::string url() const;
    uint16_t port() const;
    // The bound address, as text ("::", "127.0.0.1").
    std::string address() const;
};

// The sockets passed to this process, taken once: the variables are
// removed (children do not see them) and the descriptors are marked
// close-on-exec. Empty when started without them, or when LISTEN_PID names
// another process (they were meant for a parent). Malformed variables are
// an error naming them.
std::vector<InheritedSocket> take_inherited_sockets();

}  // namespace bpfix
