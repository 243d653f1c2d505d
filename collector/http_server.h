// The collector's small HTTP endpoint (loopback by default, [metrics]
// listen): GET /metrics (Prometheus text) and GET /api/v1/pcap (the pcap
// store's packets of a time range, exporter and pcap-filter, as one pcap
// stream). One request per connection.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace bpfix {

// The parameters of a query string ("a=1&b=x%20y"), percent-decoded, '+'
// as a space. Throws bpfix::Error on a broken escape.
std::map<std::string, std::string> parse_query_string(const std::string& qs);

class HttpServer {
public:
    using Render = std::function<std::string()>;
    // `data_dir`: where the pcap store is (the collector's output dir).
    HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& ep, Render metrics, std::string data_dir);
    // Ends the pcap transfers still running (their clients see the stream
    // cut) and waits for their threads.
    ~HttpServer();
    asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

private:
    struct Conn;
    struct Transfer {
        std::thread thread;
        int fd = -1;
        std::atomic<bool> done{false};
    };
    void accept();
    void read(std::shared_ptr<Conn> c);
    void respond(std::shared_ptr<Conn> c, int status, const std::string& type, std::string body);
    void serve_pcap(std::shared_ptr<Conn> c, const std::string& query);
    void reap();

    asio::ip::tcp::acceptor acceptor_;
    Render metrics_;
    std::string data_dir_;
    std::mutex mu_;
    std::list<std::unique_ptr<Transfer>> transfers_;
};

}  // namespace bpfix
