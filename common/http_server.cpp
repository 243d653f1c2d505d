#include "http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "error.h"

namespace bpfix {

const char* http_reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Payload Too Large";
        case 503: return "Service Unavailable";
        default: return "Internal Server Error";
    }
}

std::string http_response(int status, const std::string& type, const std::string& body) {
    return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                       status, http_reason(status), type, body.size(), body);
}

bool http_send_all(int fd, const char* p, size_t n) {
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
    // `open` is shared: a connection can outlive the server (its handler
    // waits in the event loop until the loop is destroyed).
    Conn(asio::ip::tcp::socket s, std::shared_ptr<size_t> open)
        : sock(std::move(s)), timer(sock.get_executor()), open(std::move(open)) {
        ++*this->open;
    }
    ~Conn() { --*open; }
    asio::ip::tcp::socket sock;
    asio::steady_timer timer;  // the request header's deadline
    std::shared_ptr<size_t> open;
    std::string in, out;
};

HttpServer::HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& ep, Limits limits)
    : limits_(limits), acceptor_(io), pause_(io) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    accept();
}

HttpServer::~HttpServer() {
    asio::error_code ec;
    acceptor_.close(ec);
    std::lock_guard lock(mu_);
    for (auto& t : streams_) {
        if (!t->done) ::shutdown(t->fd, SHUT_RDWR);  // a blocked send returns
    }
    for (auto& t : streams_) t->thread.join();
}

std::string HttpServer::where() const {
    auto local = acceptor_.local_endpoint();
    return local.address().is_v6() ? fmt::format("[{}]:{}", local.address().to_string(), local.port())
                                   : fmt::format("{}:{}", local.address().to_string(), local.port());
}

void HttpServer::handle(const std::string& path, Handler h) {
    routes_[path] = [h = std::move(h)](const Request& r) -> std::variant<Response, Writer> { return h(r); };
    is_stream_[path] = false;
}

void HttpServer::handle_stream(const std::string& path, StreamHandler h) {
    routes_[path] = std::move(h);
    is_stream_[path] = true;
}

void HttpServer::accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
        if (ec == asio::error::operation_aborted) return;
        reap();
        if (ec) {
            // Out of descriptors: retrying at once would spin.
            if (accept_errors_++ % 100 == 0) {
                spdlog::warn("http {}: accept failed: {}; accepting again in 100 ms", where(), ec.message());
            }
            pause_.expires_after(std::chrono::milliseconds(100));
            pause_.async_wait([this](const asio::error_code& e) {
                if (!e) accept();
            });
            return;
        }
        if (*open_ >= limits_.max_connections) {
            ++refused_;  // closed as `sock` goes
        } else {
            auto c = std::make_shared<Conn>(std::move(sock), open_);
            c->timer.expires_after(limits_.header_timeout);
            c->timer.async_wait([this, w = std::weak_ptr<Conn>(c)](const asio::error_code& e) {
                auto conn = w.lock();
                if (e || !conn) return;
                ++timed_out_;
                asio::error_code ignored;
                conn->sock.close(ignored);
            });
            read(c);
        }
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
                respond(c, {400, "text/plain", "request header too long\n"});
            }
            return;
        }
        // "GET /path?query HTTP/1.1"
        size_t sp1 = c->in.find(' '), sp2 = sp1 == std::string::npos ? sp1 : c->in.find(' ', sp1 + 1);
        size_t eol = c->in.find_first_of("\r\n");
        if (sp1 == std::string::npos || sp2 == std::string::npos || sp2 > eol) {
            respond(c, {400, "text/plain", "not an HTTP request\n"});
            return;
        }
        std::string method = c->in.substr(0, sp1), target = c->in.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t q = target.find('?');
        asio::error_code e2;
        auto remote = c->sock.remote_endpoint(e2);
        Request req{target.substr(0, q), q == std::string::npos ? "" : target.substr(q + 1),
                    e2 ? "?" : remote.address().to_string()};
        c->timer.cancel();
        auto route = routes_.find(req.path);
        if (method != "GET") {
            respond(c, {405, "text/plain", "only GET is served\n"});
        } else if (route == routes_.end()) {
            std::string known;
            for (const auto& [path, h] : routes_) known += (known.empty() ? "" : ", ") + path;
            respond(c, {404, "text/plain", fmt::format("not found: try {}\n", known)});
        } else if (is_stream_[req.path] && active_streams() >= limits_.max_streams) {
            ++busy_;
            respond(c, {503, "text/plain",
                        fmt::format("{} transfers already running (at most {} at once); try again later\n",
                                    active_streams(), limits_.max_streams)});
        } else {
            auto answer = route->second(req);
            if (auto* r = std::get_if<Response>(&answer)) {
                respond(c, *r);
            } else {
                stream(c, std::move(std::get<Writer>(answer)));
            }
        }
    });
}

void HttpServer::respond(std::shared_ptr<Conn> c, const Response& r) {
    c->timer.cancel();
    c->out = http_response(r.status, r.type, r.body);
    asio::async_write(c->sock, asio::buffer(c->out), [c](const asio::error_code&, size_t) {
        asio::error_code ignored;
        c->sock.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    });
}

void HttpServer::stream(std::shared_ptr<Conn> c, Writer w) {
    asio::error_code ec;
    c->sock.non_blocking(false, ec);
    auto t = std::make_unique<Stream>();
    t->fd = c->sock.release(ec);
    Stream* tp = t.get();
    t->thread = std::thread([tp, w = std::move(w)] {
        w(tp->fd);
        ::shutdown(tp->fd, SHUT_WR);
        ::close(tp->fd);
        tp->done = true;
    });
    std::lock_guard lock(mu_);
    streams_.push_back(std::move(t));
}

size_t HttpServer::active_streams() {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& t : streams_) n += t->done ? 0 : 1;
    return n;
}

void HttpServer::reap() {
    std::lock_guard lock(mu_);
    for (auto it = streams_.begin(); it != streams_.end();) {
        if ((*it)->done) {
            (*it)->thread.join();
            it = streams_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace bpfix
