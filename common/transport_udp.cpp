// UDP export: one IPFIX message per datagram, sized to the path MTU;
// templates are re-sent on a timer by the owner (needs_template_refresh).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
        size_t overhead = endpoint_.address().is_v6() ? 48 : 28;
        if (opts.mtu < 576 || opts.mtu > 65535) {
            throw Error(fmt::format("transport mtu {} is out of range (576..65535)", opts.mtu));
        }
        max_size_ = static_cast<uint16_t>(opts.mtu - overhead);
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
