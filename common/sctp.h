#pragma once
// SCTP (RFC 9260) for asio: one-to-one style sockets (SOCK_STREAM,
// IPPROTO_SCTP, RFC 6458 section 4), which asio drives exactly like TCP
// sockets. Each send is one SCTP message; a reader that asks for fewer
// bytes than a message holds gets the rest on the next read, so IPFIX
// messages framed by their length field read the same way as over TCP.
// clang-format off: the kernel's header needs these first
#include <netinet/in.h>
#include <sys/socket.h>
#include <cstdint>
#include <linux/sctp.h>
// clang-format on

#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/detail/socket_option.hpp>
#include <asio/ip/basic_endpoint.hpp>
#include <asio/ip/tcp.hpp>
#include <string>

namespace bpfix {

class sctp {
public:
    using endpoint = asio::ip::basic_endpoint<sctp>;
    using socket = asio::basic_stream_socket<sctp>;
    using acceptor = asio::basic_socket_acceptor<sctp>;
    // Sends each message at once instead of bundling small ones (Nagle).
    using no_delay = asio::detail::socket_option::boolean<IPPROTO_SCTP, SCTP_NODELAY>;

    static sctp v4() { return sctp(AF_INET); }
    static sctp v6() { return sctp(AF_INET6); }
    int type() const { return SOCK_STREAM; }
    int protocol() const { return IPPROTO_SCTP; }
    int family() const { return family_; }
    friend bool operator==(const sctp& a, const sctp& b) { return a.family_ == b.family_; }
    friend bool operator!=(const sctp& a, const sctp& b) { return a.family_ != b.family_; }

private:
    explicit sctp(int family) : family_(family) {}
    int family_;
};

// The names of the stream transports, for logs and URLs: one place for the
// exporter's transport and the collector's listener.
template <typename Protocol>
struct StreamName;
template <>
struct StreamName<sctp> {
    static constexpr const char* label = "SCTP";
    static constexpr const char* scheme = "sctp";
};

// Empty when this kernel opens SCTP sockets; otherwise what is wrong and
// what to do (the `sctp` module is not loaded, or SCTP is blocked).
std::string sctp_unavailable();

// Partially reliable delivery (PR-SCTP, RFC 3758) on a connected
// one-to-one socket `fd`:
// - whether both ends agreed to it when the association was set up
//   (Linux offers it unless net.sctp.prsctp_enable is 0);
bool sctp_pr_supported(int fd);
// - messages sent from now on are given up (abandoned) when not delivered
//   within `lifetime_ms`; 0: fully reliable. False when refused.
bool sctp_set_lifetime(int fd, uint32_t lifetime_ms);
// - messages abandoned so far on this association, sent or not; -1 when
//   the association is gone.
int64_t sctp_abandoned(int fd);

template <>
struct StreamName<asio::ip::tcp> {
    static constexpr const char* label = "TCP";
    static constexpr const char* scheme = "tcp";
};

}  // namespace bpfix
