// UDP export: one IPFIX message per datagram, sized to the path MTU;
// templates are re-sent on a timer by the owner (needs_template_refresh).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <asio/ip/udp.hpp>

#include "error.h"
#include "transport.h"

namespace bpfix {
namespace {

class UdpTransport : public Transport {
public:
    UdpTransport(const CollectorUrl& url, const TransportOptions& opts, asio::io_context& io) : socket_(io) {
        name_ = url.str();
        asio::ip::udp::resolver resolver(io);
        asio::error_code ec;
        auto results = resolver.resolve(url.host, std::to_string(url.port), ec);
        if (ec || results.empty()) {
            throw Error(fmt::format("collector {}: cannot resolve '{}': {}", name_, url.host, ec.message()));
        }
        endpoint_ = results.begin()->endpoint();
        socket_.open(endpoint_.protocol(), ec);
        if (!ec) socket_.connect(endpoint_, ec);
        if (ec) {
            throw Error(fmt::format("collector {}: cannot open UDP socket: {}", name_, ec.message()));
        }
        socket_.non_blocking(true);
        bool v6 = endpoint_.address().is_v6();
        size_t overhead = v6 ? 48 : 28;
        uint32_t mtu = opts.mtu;
        if (mtu == 0) {
            // The kernel knows the MTU of the route to a connected peer
            // (1500 on most Ethernet paths, 65536 on loopback).
            int value = 0;
            socklen_t len = sizeof value;
            int rc = v6 ? getsockopt(socket_.native_handle(), IPPROTO_IPV6, IPV6_MTU, &value, &len)
                        : getsockopt(socket_.native_handle(), IPPROTO_IP, IP_MTU, &value, &len);
            mtu = rc == 0 && value >= 576 ? static_cast<uint32_t>(value) : 1500;
            spdlog::debug("collector {}: path MTU {}", name_, mtu);
        }
        if (mtu < 576) {
            throw Error(fmt::format("transport mtu {} is too small (minimum 576)", mtu));
        }
        // libfixbuf messages are at most 65535 bytes; stay a little below.
        max_size_ = static_cast<uint16_t>(std::min<size_t>(mtu - overhead, 65000));
    }

    void send(IpfixMessage&& msg) override {
        asio::error_code ec;
        socket_.send(asio::buffer(msg.bytes), 0, ec);
        if (ec == asio::error::would_block || ec == asio::error::no_buffer_space) {
            // The socket buffer is full: wait for room rather than drop.
            socket_.wait(asio::ip::udp::socket::wait_write, ec);
            if (!ec) socket_.send(asio::buffer(msg.bytes), 0, ec);
        }
        if (ec) {
            records_not_sent_ += msg.data_records;
            if (ec != last_error_) {
                spdlog::warn("collector {}: UDP send failed: {} (messages are counted as not sent; is the "
                             "collector listening?)",
                             name_, ec.message());
                last_error_ = ec;
            }
            return;
        }
        last_error_ = {};
        ++messages_sent_;
    }

    bool finish(asio::io_context&, std::chrono::milliseconds) override {
        asio::error_code ec;
        socket_.close(ec);
        return records_not_sent_ == 0;
    }

    uint16_t max_message_size() const override { return max_size_; }
    bool needs_template_refresh() const override { return true; }

private:
    asio::ip::udp::socket socket_;
    asio::ip::udp::endpoint endpoint_;
    uint16_t max_size_ = 1400;
    asio::error_code last_error_;
};

}  // namespace

std::unique_ptr<Transport> make_udp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                              asio::io_context& io) {
    return std::make_unique<UdpTransport>(url, opts, io);
}

}  // namespace bpfix
