// The live PCAP server: every TCP client that connects gets a standard pcap
// stream (global header, then one record per captured packet), which
// `tshark -i TCP@HOST:PORT`, `nc HOST PORT | wireshark -k -i -` and Zeek
// read. Each client has a bounded queue: a client that reads too slowly
// loses packets (counted), never stalls the exporter.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "allow_list.h"
#include "exporter_config.h"
#include "packet_capture.h"

namespace bpfix {

// Where the server listens: "PORT" (127.0.0.1), "ADDR:PORT" or
// "[ADDR]:PORT". Throws bpfix::Error saying what a valid one looks like.
asio::ip::tcp::endpoint capture_listen_endpoint(const std::string& text);

class PcapServer {
public:
    // Called with the number of clients whenever it changes.
    using OnClients = std::function<void(size_t clients)>;
    // Listens at once. Throws bpfix::Error naming the address.
    PcapServer(asio::io_context& io, const CaptureConfig& cfg, OnClients on_clients);
    ~PcapServer();
    PcapServer(const PcapServer&) = delete;
    PcapServer& operator=(const PcapServer&) = delete;

    // The bound address (port 0 in the config: the port chosen).
    asio::ip::tcp::endpoint local_endpoint() const;
    // Queues the packet to every client.
    void publish(const CapturedPacket& p);
    size_t clients() const { return clients_.size(); }
    // Packets dropped for slow clients, summed over all clients so far.
    uint64_t dropped() const { return dropped_; }
    uint64_t sent() const { return sent_; }
    // Bytes still queued to clients (to let them drain before close()).
    size_t queued_bytes() const;
    // Closes the listener and every client.
    void close();

private:
    struct Client;
    void accept();
    void write(const std::shared_ptr<Client>& c);
    void watch_close(const std::shared_ptr<Client>& c);
    void remove(const std::shared_ptr<Client>& c, const std::string& why);

    asio::io_context& io_;
    CaptureConfig cfg_;
    AllowList allow_;
    OnClients on_clients_;
    asio::ip::tcp::acceptor acceptor_;
    std::list<std::shared_ptr<Client>> clients_;
    std::string header_;
    std::string record_;  // one packet, formatted once for every client
    uint64_t dropped_ = 0, sent_ = 0;
    bool closed_ = false;
};

}  // namespace bpfix
