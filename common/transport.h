#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector_url.h"
#include "ipfix_encoder.h"

namespace bpfix {

struct TransportOptions {
    uint32_t mtu = 0;                       // UDP: messages fit this MTU; 0: the route's MTU
    size_t queue_bytes = 64 * 1024 * 1024;  // TCP: bound on what is held while the collector is away
    std::chrono::milliseconds reconnect_min{500};
    std::chrono::milliseconds reconnect_max{30000};
    // SCTP: data messages not delivered within this time are abandoned
    // (PR-SCTP, RFC 3758); templates always go fully reliably. 0: off.
    std::chrono::milliseconds sctp_lifetime{0};
    bool operator==(const TransportOptions&) const = default;
};

// Sends IPFIX messages to a collector, a file, ... Sockets and files are
// ours (asio, POSIX); libfixbuf only encodes. A transport never blocks its
// caller and never loses a message silently: what it cannot send is counted
// in records_not_sent().
class Transport {
public:
    using TemplateSource = std::function<const std::vector<IpfixMessage>&()>;

    virtual ~Transport() = default;
    virtual void send(IpfixMessage&& msg) = 0;
    // False while the caller should hold back (connecting, or a full send
    // queue on a live connection). Callers that can wait (pcap mode) do.
    virtual bool ready() const { return true; }
    // Runs the io_context until everything queued is sent or `timeout`
    // passes, then closes. Returns false when something was left unsent.
    virtual bool finish(asio::io_context& io, std::chrono::milliseconds timeout) = 0;
    // Largest IPFIX message this transport carries.
    virtual uint16_t max_message_size() const = 0;
    // Connectionless transports need templates re-sent on a timer.
    virtual bool needs_template_refresh() const { return false; }

    // Connection-oriented transports: whether a connection is up now, and
    // the bytes waiting for it (the bounded queue).
    virtual bool connected() const { return true; }
    virtual size_t queued_bytes() const { return 0; }

    uint64_t messages_sent() const { return messages_sent_; }
    uint64_t records_not_sent() const { return records_not_sent_; }
    // Connections made so far (the first one included).
    uint64_t connects() const { return connects_; }
    const std::string& name() const { return name_; }

protected:
    std::string name_;
    uint64_t messages_sent_ = 0;
    uint64_t records_not_sent_ = 0;
    uint64_t connects_ = 0;
};

// `templates` returns the encoder's current template messages; a transport
// that opens a new connection sends them before anything else.
std::unique_ptr<Transport> make_transport(const CollectorUrl& url, const TransportOptions& opts,
                                          asio::io_context& io, Transport::TemplateSource templates);

// Writes `seq` into an IPFIX message header's sequence-number field.
void set_sequence_number(std::vector<uint8_t>& message, uint32_t seq);

}  // namespace bpfix
