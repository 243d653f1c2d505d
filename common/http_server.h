// The small HTTP endpoint both daemons serve (loopback by default):
// GET only, one request per connection, routes by path. A route answers
// from the event loop (metrics, health), or hands back a writer that
// streams a long answer from a thread of its own (the collector's pcap
// API), so the loop is never blocked.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>

namespace bpfix {

// The parameters of a query string ("a=1&b=x%20y"), percent-decoded, '+'
// as a space. Throws bpfix::Error on a broken escape.
std::map<std::string, std::string> parse_query_string(const std::string& qs);

// "HTTP/1.1 200 OK" and friends.
const char* http_reason(int status);
// A whole response with Content-Length and Connection: close.
std::string http_response(int status, const std::string& type, const std::string& body);
// Sends all of it on a blocking socket; false when the peer is gone.
bool http_send_all(int fd, const char* p, size_t n);

class HttpServer {
public:
    struct Request {
        std::string path, query;
        std::string peer;  // the client's address
    };
    struct Response {
        int status = 200;
        std::string type = "text/plain";
        std::string body;
    };
    // Runs on its own thread with the connection's blocking socket: writes
    // the whole response (headers included); the server closes it after.
    using Writer = std::function<void(int fd)>;
    using Handler = std::function<Response(const Request&)>;
    using StreamHandler = std::function<std::variant<Response, Writer>(const Request&)>;

    // What one client, or many, may hold: connections at once (more are
    // closed at once), the time a request's header may take, and streamed
    // answers at once (more get 503).
    struct Limits {
        size_t max_connections = 64;
        std::chrono::seconds header_timeout{10};
        size_t max_streams = 2;
    };
    // Binds and listens at once (asio::system_error when it cannot).
    HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& ep, Limits limits);
    HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& ep) : HttpServer(io, ep, Limits{}) {}
    // Ends the streams still running (their clients see the answer cut)
    // and waits for their threads.
    ~HttpServer();
    void handle(const std::string& path, Handler h);
    void handle_stream(const std::string& path, StreamHandler h);
    asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    // Clients turned away: over max_connections, a header too slow, a
    // stream over max_streams; accept() failures (out of descriptors).
    uint64_t refused() const { return refused_; }
    uint64_t timed_out() const { return timed_out_; }
    uint64_t busy() const { return busy_; }
    uint64_t accept_errors() const { return accept_errors_; }
    // "127.0.0.1:9739", "[::1]:9739"
    std::string where() const;

private:
    struct Conn;
    struct Stream {
        std::thread thread;
        int fd = -1;
        std::atomic<bool> done{false};
    };
    void accept();
    void read(std::shared_ptr<Conn> c);
    void respond(std::shared_ptr<Conn> c, const Response& r);
    void stream(std::shared_ptr<Conn> c, Writer w);
    void reap();
    size_t active_streams();

    Limits limits_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer pause_;  // after an accept() failure
    // connections reading a request (the loop's thread)
    std::shared_ptr<size_t> open_ = std::make_shared<size_t>(0);
    std::atomic<uint64_t> refused_{0}, timed_out_{0}, busy_{0}, accept_errors_{0};
    std::map<std::string, StreamHandler> routes_;
    std::map<std::string, bool> is_stream_;
    std::mutex mu_;
    std::list<std::unique_ptr<Stream>> streams_;
};

}  // namespace bpfix
