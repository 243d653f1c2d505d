#include "http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "allow_list.h"
#include "error.h"
#include "pcap_query.h"

namespace bpfix {

namespace {

const char* reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Payload Too Large";
        default: return "Internal Server Error";
    }
}

bool send_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

}  // namespace

std::map<std::string, std::string> parse_query_string(const std::string& qs) {
    auto decode = [](const std::string& s) {
        std::string out;
        for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '+') {
                out += ' ';
            } else if (s[i] == '%') {
                auto hex = [&](char c) -> int {
                    if (c >= '0' && c <= '9') return c - '0';
                    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                    return -1;
                };
                int h = i + 2 < s.size() ? hex(s[i + 1]) : -1, l = i + 2 < s.size() ? hex(s[i + 2]) : -1;
                if (h < 0 || l < 0) throw Error(fmt::format("broken percent escape in '{}'", s));
                out += static_cast<char>(h * 16 + l);
                i += 2;
            } else {
                out += s[i];
            }
        }
        return out;
    };
    std::map<std::string, std::string> out;
    size_t pos = 0;
    while (pos <= qs.size() && !qs.empty()) {
        size_t amp = qs.find('&', pos);
        std::string part = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        if (!part.empty()) {
            size_t eq = part.find('=');
            out[decode(part.substr(0, eq))] = eq == std::string::npos ? "" : decode(part.substr(eq + 1));
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return out;
}

struct HttpServer::Conn {
    asio::ip::tcp::socket sock;
    std::string in, out;
};

HttpServer::HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& ep, Render metrics, std::string data_dir)
    : acceptor_(io), metrics_(std::move(metrics)), data_dir_(std::move(data_dir)) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    auto local = acceptor_.local_endpoint();
    std::string where = local.address().is_v6() ? fmt::format("[{}]:{}", local.address().to_string(), local.port())
                                                : fmt::format("{}:{}", local.address().to_string(), local.port());
    spdlog::info("metrics on http://{}/metrics, stored packets on http://{}/api/v1/pcap", where, where);
    accept();
}

HttpServer::~HttpServer() {
    asio::error_code ec;
    acceptor_.close(ec);
    std::lock_guard lock(mu_);
    for (auto& t : transfers_) {
        if (!t->done) ::shutdown(t->fd, SHUT_RDWR);  // a blocked send returns
    }
    for (auto& t : transfers_) t->thread.join();
}

void HttpServer::accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) read(std::make_shared<Conn>(Conn{std::move(sock), {}, {}}));
        reap();
        accept();
    });
}

void HttpServer::read(std::shared_ptr<Conn> c) {
    c->in.resize(c->in.size() + 1024);
    size_t have = c->in.size() - 1024;
    c->sock.async_read_some(asio::buffer(c->in.data() + have, 1024), [this, c, have](const asio::error_code& ec,
                                                                                    size_t n) {
        if (ec) return;
        c->in.resize(have + n);
        if (c->in.find("\r\n\r\n") == std::string::npos && c->in.find("\n\n") == std::string::npos) {
            if (c->in.size() < 16384) {
                read(c);
            } else {
                respond(c, 400, "text/plain", "request header too long\n");
            }
            return;
        }
        // "GET /path?query HTTP/1.1"
        size_t sp1 = c->in.find(' '), sp2 = sp1 == std::string::npos ? sp1 : c->in.find(' ', sp1 + 1);
        size_t eol = c->in.find_first_of("\r\n");
        if (sp1 == std::string::npos || sp2 == std::string::npos || sp2 > eol) {
            respond(c, 400, "text/plain", "not an HTTP request\n");
            return;
        }
        std::string method = c->in.substr(0, sp1), target = c->in.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t q = target.find('?');
        std::string path = target.substr(0, q), query = q == std::string::npos ? "" : target.substr(q + 1);
        if (method != "GET") {
            respond(c, 405, "text/plain", "only GET is served\n");
        } else if (path == "/metrics") {
            respond(c, 200, "text/plain; version=0.0.4", metrics_());
        } else if (path == "/api/v1/pcap") {
            serve_pcap(c, query);
        } else {
            respond(c, 404, "text/plain", "not found: try /metrics or /api/v1/pcap?from=...&to=...\n");
        }
    });
}

void HttpServer::respond(std::shared_ptr<Conn> c, int status, const std::string& type, std::string body) {
    c->out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                         status, reason(status), type, body.size(), body);
    asio::async_write(c->sock, asio::buffer(c->out), [c](const asio::error_code&, size_t) {
        asio::error_code ignored;
        c->sock.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    });
}

void HttpServer::serve_pcap(std::shared_ptr<Conn> c, const std::string& query) {
    PcapQuery q;
    try {
        auto params = parse_query_string(query);
        for (const auto& [k, v] : params) {
            if (k != "from" && k != "to" && k != "exporter" && k != "filter" && k != "precision") {
                throw QueryError(400, fmt::format("unknown parameter '{}' (known: from, to, exporter, filter, "
                                                  "precision)",
                                                  k));
            }
        }
        if (!params.count("from") || !params.count("to")) {
            throw QueryError(400, "give from= and to= (RFC 3339 times, e.g. from=2026-12-01T04:30:00Z)");
        }
        q.from_ns = parse_rfc3339(params["from"]);
        q.to_ns = parse_rfc3339(params["to"]);
        q.exporter = params.count("exporter") ? params["exporter"] : "";
        q.filter = params.count("filter") ? params["filter"] : "";
        std::string precision = params.count("precision") ? params["precision"] : "ns";
        if (precision != "ns" && precision != "us") throw QueryError(400, "precision must be ns or us");
        q.nanoseconds = precision == "ns";
    } catch (const QueryError& e) {
        respond(c, e.status(), "text/plain", std::string(e.what()) + "\n");
        return;
    } catch (const Error& e) {
        respond(c, 400, "text/plain", std::string(e.what()) + "\n");
        return;
    }
    // The transfer reads files and may stream for long: a thread of its
    // own, writing to the socket directly, so the event loop stays free.
    // write_pcap_range checks the query (a 4xx) before its first byte.
    asio::error_code ec;
    auto peer = c->sock.remote_endpoint(ec);
    c->sock.non_blocking(false, ec);
    auto t = std::make_unique<Transfer>();
    t->fd = c->sock.release(ec);
    Transfer* tp = t.get();
    std::string dir = data_dir_;
    std::string who = ec ? "?" : plain_address(peer.address()).to_string();
    t->thread = std::thread([tp, q, dir, who] {
        bool sent_header = false;
        uint64_t n = 0;
        try {
            n = write_pcap_range(dir, q, [&](std::string_view chunk) {
                if (!sent_header) {
                    static const char head[] =
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.tcpdump.pcap\r\n"
                        "Content-Disposition: attachment; filename=\"bpfix.pcap\"\r\nConnection: close\r\n\r\n";
                    if (!send_all(tp->fd, head, sizeof head - 1)) throw Error("client gone");
                    sent_header = true;
                }
                if (!send_all(tp->fd, chunk.data(), chunk.size())) throw Error("client gone");
            });
            spdlog::info("api: {} packets to {} ({})", n, who, q.filter.empty() ? "no filter" : q.filter);
        } catch (const QueryError& e) {
            if (!sent_header) {
                std::string body = std::string(e.what()) + "\n";
                std::string resp = fmt::format(
                    "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    e.status(), reason(e.status()), body.size(), body);
                send_all(tp->fd, resp.data(), resp.size());
            }
            spdlog::warn("api: pcap query from {}: {}", who, e.what());
        } catch (const Error& e) {
            spdlog::warn("api: pcap transfer to {} ended: {}", who, e.what());
        }
        ::shutdown(tp->fd, SHUT_WR);
        ::close(tp->fd);
        tp->done = true;
    });
    std::lock_guard lock(mu_);
    transfers_.push_back(std::move(t));
}

void HttpServer::reap() {
    std::lock_guard lock(mu_);
    for (auto it = transfers_.begin(); it != transfers_.end();) {
        if ((*it)->done) {
            (*it)->thread.join();
            it = transfers_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace bpfix
