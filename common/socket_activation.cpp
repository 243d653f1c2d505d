#include "socket_activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "error.h"

namespace bpfix {
namespace {

// SD_LISTEN_FDS_START: the first passed descriptor.
constexpr int kFirstFd = 3;

long number_of(const char* var, const char* text) {
    long v = 0;
    const char* end = text + std::strlen(text);
    auto [p, ec] = std::from_chars(text, end, v);
    if (ec != std::errc() || p != end || v < 0) {
        throw Error(fmt::format("${}='{}' is not a number (set by systemd for socket activation; something "
                                "else set it wrong)",
                                var, text));
    }
    return v;
}

std::vector<std::string> split_names(const char* text) {
    std::vector<std::string> out;
    if (!text) return out;
    std::string s(text);
    size_t at = 0;
    for (;;) {
        size_t colon = s.find(':', at);
        out.push_back(s.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
        if (colon == std::string::npos) break;
        at = colon + 1;
    }
    return out;
}

int int_option(int fd, int level, int name) {
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

}  // namespace

std::vector<InheritedSocket> take_inherited_sockets() {
    const char* pid_text = std::getenv("LISTEN_PID");
    const char* fds_text = std::getenv("LISTEN_FDS");
    std::vector<InheritedSocket> out;
    if (!pid_text || !fds_text) return out;
    const long pid = number_of("LISTEN_PID", pid_text);
    const long n = number_of("LISTEN_FDS", fds_text);
    std::vector<std::string> names = split_names(std::getenv("LISTEN_FDNAMES"));
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (pid != static_cast<long>(::getpid())) return out;  // meant for the process that started us
    if (n > 4096) throw Error(fmt::format("$LISTEN_FDS={} is more sockets than a collector listens on", n));
    for (int i = 0; i < static_cast<int>(n); ++i) {
        InheritedSocket s;
        s.fd = kFirstFd + i;
        int flags = ::fcntl(s.fd, F_GETFD);
        if (flags < 0) {
            throw Error(fmt::format("$LISTEN_FDS={} but descriptor {} is not open (the socket unit's sockets did not "
                                    "arrive)",
                                    n, s.fd));
        }
        ::fcntl(s.fd, F_SETFD, flags | FD_CLOEXEC);
        if (static_cast<size_t>(i) < names.size()) s.name = names[static_cast<size_t>(i)];
        s.local_len = sizeof s.local;
        if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&s.local), &s.local_len) != 0) s.local_len = 0;
        const int type = int_option(s.fd, SOL_SOCKET, SO_TYPE);
        const int proto = int_option(s.fd, SOL_SOCKET, SO_PROTOCOL);
        const bool inet = s.local_len && (s.local.ss_family == AF_INET || s.local.ss_family == AF_INET6);
        if (inet && type == SOCK_DGRAM && proto == IPPROTO_UDP) {
            s.kind = InheritedSocket::Kind::udp;
        } else if (inet && type == SOCK_STREAM && proto == IPPROTO_TCP) {
            s.kind = InheritedSocket::Kind::tcp;
        } else if (inet && (type == SOCK_STREAM || type == SOCK_SEQPACKET) && proto == IPPROTO_SCTP) {
            s.kind = InheritedSocket::Kind::sctp;
        }
        s.listening = int_option(s.fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
        out.push_back(std::move(s));
    }
    return out;
}

uint16_t InheritedSocket::port() const {
    if (local.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
    if (local.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    return 0;
}

std::string InheritedSocket::address() const {
    char buf[INET6_ADDRSTRLEN] = "";
    if (local.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&local)->sin_addr, buf, sizeof buf);
    } else if (local.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr, buf, sizeof buf);
    }
    return buf;
}

std::string InheritedSocket::url() const {
    const char* scheme = kind == Kind::udp ? "udp" : kind == Kind::tcp ? "tcp" : kind == Kind::sctp ? "sctp" : nullptr;
    if (!scheme) {
        return fmt::format("descriptor {}{} (not a UDP, TCP or SCTP socket on an IP address)", fd,
                           name.empty() ? "" : fmt::format(" named '{}'", name));
    }
    const std::string a = address();
    return local.ss_family == AF_INET6 ? fmt::format("{}://[{}]:{}", scheme, a, port())
                                       : fmt::format("{}://{}:{}", scheme, a, port());
}

}  // namespace bpfix
