#include "pcap_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/read.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <deque>

#include "error.h"
#include "pcap_format.h"

namespace bpfix {

asio::ip::tcp::endpoint capture_listen_endpoint(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return Error(fmt::format("capture.listen (--capture-listen) '{}': {}; give PORT (on 127.0.0.1), "
                                 "ADDR:PORT or [IPv6]:PORT",
                                 text, why));
    };
    std::string host = "127.0.0.1", port = text;
    if (!text.empty() && text[0] == '[') {
        auto close = text.find("]:");
        if (close == std::string::npos) throw bad("no ']:PORT' after the IPv6 address");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string::npos) throw bad("put an IPv6 address in brackets");
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
        throw bad("'" + port + "' is not a port number");
    }
    asio::error_code aec;
    asio::ip::address addr = asio::ip::make_address(host, aec);
    if (aec) throw bad("'" + host + "' is not an IP address");
    return {addr, static_cast<uint16_t>(p)};
}

struct PcapServer::Client {
    explicit Client(asio::ip::tcp::socket s) : sock(std::move(s)) {}
    asio::ip::tcp::socket sock;
    std::string peer;
    std::deque<std::string> queue;  // the front one is being written
    size_t queued = 0;              // bytes in queue
    bool writing = false;
    uint64_t sent = 0, dropped = 0;
    char sink[256];                 // what a client sends (ignored), to notice it closing
};

PcapServer::PcapServer(asio::io_context& io, const CaptureConfig& cfg, OnClients on_clients)
    : io_(io), cfg_(cfg), allow_(cfg.allow), on_clients_(std::move(on_clients)), acceptor_(io) {
    asio::ip::tcp::endpoint ep = capture_listen_endpoint(cfg.listen);
    asio::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        throw Error(fmt::format("capture: cannot listen on {} ({}): {}; choose another capture.listen", cfg.listen,
                                ep.address().to_string(), ec.message()));
    }
    header_ = pcap_global_header(cfg.snaplen, cfg.nanoseconds);
    spdlog::info("capture: live PCAP server on {}:{} (tshark -i TCP@{}:{})", ep.address().to_string(),
                 local_endpoint().port(), ep.address().to_string(), local_endpoint().port());
    accept();
}

PcapServer::~PcapServer() { close(); }

asio::ip::tcp::endpoint PcapServer::local_endpoint() const {
    asio::error_code ec;
    return acceptor_.local_endpoint(ec);
}

size_t PcapServer::queued_bytes() const {
    size_t n = 0;
    for (const auto& c : clients_) n += c->queued;
    return n;
}

void PcapServer::close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    acceptor_.close(ec);
    while (!clients_.empty()) remove(clients_.front(), "the exporter is stopping");
}

void PcapServer::accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
        if (closed_ || ec == asio::error::operation_aborted) return;
        if (!ec) {
            asio::error_code e2;
            auto remote = sock.remote_endpoint(e2);
            std::string peer = e2 ? "unknown" : fmt::format("{}:{}", plain_address(remote.address()).to_string(),
                                                             remote.port());
            if (e2 || !allow_.allows(remote.address())) {
                spdlog::warn("capture: refused client {}: not in capture.allow", peer);
            } else if (clients_.size() >= cfg_.max_clients) {
                spdlog::warn("capture: refused client {}: {} clients already (capture.max_clients)", peer,
                             clients_.size());
            } else {
                auto c = std::make_shared<Client>(std::move(sock));
                c->peer = peer;
                c->sock.set_option(asio::ip::tcp::no_delay(true), e2);
                c->queue.push_back(header_);
                c->queued = header_.size();
                clients_.push_back(c);
                spdlog::info("capture: client {} connected ({} now)", peer, clients_.size());
                watch_close(c);
                write(c);
                if (on_clients_) on_clients_(clients_.size());
            }
        } else {
            spdlog::warn("capture: accept failed: {}", ec.message());
        }
        accept();
    });
}

void PcapServer::watch_close(const std::shared_ptr<Client>& c) {
    c->sock.async_read_some(asio::buffer(c->sink), [this, c](const asio::error_code& ec, size_t) {
        if (ec) {
            if (ec != asio::error::operation_aborted) remove(c, ec == asio::error::eof ? "closed" : ec.message());
            return;
        }
        watch_close(c);
    });
}

void PcapServer::publish(const CapturedPacket& p) {
    if (clients_.empty()) return;
    record_.clear();
    append_pcap_record(record_, p.ts_ns, cfg_.nanoseconds, p.orig_len, p.data);
    for (const auto& c : clients_) {
        if (c->queued + record_.size() > cfg_.client_queue_bytes) {
            if (c->dropped++ == 0) {
                spdlog::warn("capture: client {} reads too slowly; dropping its packets while its queue is full "
                             "({} bytes, capture.client_queue_bytes)",
                             c->peer, cfg_.client_queue_bytes);
            }
            ++dropped_;
            continue;
        }
        // Small records share one buffer: fewer writes, same bytes.
        if (c->queue.size() > 1 && c->queue.back().size() + record_.size() <= 65536) {
            c->queue.back() += record_;
        } else {
            c->queue.push_back(record_);
        }
        c->queued += record_.size();
        ++c->sent;
        ++sent_;
        write(c);
    }
}

void PcapServer::write(const std::shared_ptr<Client>& c) {
    if (c->writing || c->queue.empty() || !c->sock.is_open()) return;
    c->writing = true;
    asio::async_write(c->sock, asio::buffer(c->queue.front()), [this, c](const asio::error_code& ec, size_t n) {
        c->writing = false;
        if (ec) {
            if (ec != asio::error::operation_aborted) remove(c, ec.message());
            return;
        }
        c->queued -= n;
        c->queue.pop_front();
        write(c);
    });
}

void PcapServer::remove(const std::shared_ptr<Client>& c, const std::string& why) {
    auto it = std::find(clients_.begin(), clients_.end(), c);
    if (it == clients_.end()) return;
    clients_.erase(it);
    asio::error_code ec;
    c->sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    c->sock.close(ec);
    spdlog::info("capture: client {} gone ({}): {} packets queued to it, {} dropped as it read too slowly; {} "
                 "clients left",
                 c->peer, why, c->sent, c->dropped, clients_.size());
    if (on_clients_ && !closed_) on_clients_(clients_.size());
}

}  // namespace bpfix
