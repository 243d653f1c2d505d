// The TCP and SCTP transports against a real loopback listener: templates
// first on every connection, per-connection sequence numbers, reconnect
// after the collector comes back, and a bounded queue whose drops are
// counted. On a kernel without SCTP the SCTP transport must refuse with
// an error naming the module (the VM tier runs the SCTP delivery).
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <thread>

#include "collector_url.h"
#include "error.h"
#include "sctp.h"
#include "info_model.h"
#include "ipfix_decoder.h"
#include "ipfix_encoder.h"
#include "transport.h"

using namespace bpfix;

namespace {

// Reads whole IPFIX messages from one accepted connection until EOF.
template <typename Socket>
std::vector<std::vector<uint8_t>> read_messages(Socket& s) {
    std::vector<std::vector<uint8_t>> out;
    for (;;) {
        std::vector<uint8_t> m(4);
        asio::error_code ec;
        asio::read(s, asio::buffer(m), ec);
        if (ec) break;
        uint16_t len = static_cast<uint16_t>(m[2] << 8 | m[3]);
        m.resize(len);
        asio::read(s, asio::buffer(m.data() + 4, len - 4), ec);
        if (ec) break;
        out.push_back(std::move(m));
    }
    return out;
}

FlowRecord record() {
    FlowRecord r{};
    r.ipVersion = 4;
    r.packetDeltaCount = 1;
    r.octetDeltaCount = 40;
    r.flowEndReason = 4;
    return r;
}

}  // namespace

namespace {

template <typename Protocol>
void delivers_templates_first(const std::string& scheme) {
    asio::io_context server_io;
    typename Protocol::acceptor acceptor(server_io,
                                         typename Protocol::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    uint16_t port = acceptor.local_endpoint().port();
    std::vector<std::vector<uint8_t>> got;
    std::thread server([&] {
        typename Protocol::socket s(server_io);
        acceptor.accept(s);
        got = read_messages(s);
    });

    InfoModel model;
    asio::io_context io;
    std::unique_ptr<IpfixEncoder> enc;
    auto url = parse_collector_url(scheme + "://127.0.0.1:" + std::to_string(port));
    auto t = make_transport(url, {}, io, [&]() -> const std::vector<IpfixMessage>& { return enc->template_messages(); });
    enc = std::make_unique<IpfixEncoder>(model, 3, t->max_message_size(), [&](IpfixMessage&& m) { t->send(std::move(m)); });
    for (int i = 0; i < 5000; ++i) enc->add_flow(record());
    enc->flush();
    EXPECT_TRUE(t->finish(io, std::chrono::seconds(5)));
    server.join();
    EXPECT_EQ(t->records_not_sent(), 0u);

    InfoModel rx;
    uint64_t n = 0;
    IpfixDecoder dec(rx, [&](const DecodedRecord&) { ++n; });
    ASSERT_FALSE(got.empty());
    uint32_t expect_seq = 0;
    for (const auto& m : got) {
        uint32_t seq = static_cast<uint32_t>(m[8]) << 24 | static_cast<uint32_t>(m[9]) << 16 |
                       static_cast<uint32_t>(m[10]) << 8 | m[11];
        EXPECT_EQ(seq, expect_seq);
        uint64_t before = n;
        ASSERT_EQ(dec.decode_message(m), "");
        expect_seq += static_cast<uint32_t>(n - before);
    }
    // and the RFC 5610 type records, once: they go with the templates
    EXPECT_EQ(n, 5000u + model.enterprise_elements().size());
}

}  // namespace

TEST(TcpTransport, DeliversTemplatesFirstAndConsistentSequenceNumbers) {
    delivers_templates_first<asio::ip::tcp>("tcp");
}

TEST(SctpTransport, DeliversTemplatesFirstOrNamesTheMissingModule) {
    if (sctp_unavailable().empty()) {
        delivers_templates_first<sctp>("sctp");
        return;
    }
    asio::io_context io;
    try {
        make_transport(parse_collector_url("sctp://127.0.0.1:4739"), {}, io,
                       []() -> const std::vector<IpfixMessage>& {
                           static const std::vector<IpfixMessage> none;
                           return none;
                       });
        ADD_FAILURE() << "an SCTP transport was made on a kernel without SCTP";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("modprobe sctp"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("sctp://127.0.0.1:4739"), std::string::npos) << e.what();
    }
}

TEST(TcpTransport, DeadCollectorIsRetriedAndLossIsCounted) {
    // Find a port nobody listens on.
    asio::io_context tmp;
    asio::ip::tcp::acceptor probe(tmp, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    uint16_t port = probe.local_endpoint().port();
    probe.close();

    InfoModel model;
    asio::io_context io;
    TransportOptions opts;
    opts.queue_bytes = 65536;
    opts.reconnect_min = std::chrono::milliseconds(20);
    std::unique_ptr<IpfixEncoder> enc;
    auto t = make_transport(parse_collector_url("tcp://127.0.0.1:" + std::to_string(port)), opts, io,
                            [&]() -> const std::vector<IpfixMessage>& { return enc->template_messages(); });
    enc = std::make_unique<IpfixEncoder>(model, 1, t->max_message_size(), [&](IpfixMessage&& m) { t->send(std::move(m)); });
    io.run_for(std::chrono::milliseconds(200));  // a few refused attempts
    EXPECT_TRUE(t->ready());                     // away: the caller may go on
    for (int i = 0; i < 20000; ++i) enc->add_flow(record());
    enc->flush();
    EXPECT_FALSE(t->finish(io, std::chrono::milliseconds(100)));
    // Every record accounted for: the flows, and the type records that go
    // with the templates (RFC 5610), which reached no collector either.
    uint64_t type_records = 0;
    for (const auto& m : enc->template_messages()) type_records += m.data_records;
    EXPECT_GT(type_records, 0u);
    EXPECT_EQ(t->records_not_sent(), 20000u + type_records);
    EXPECT_EQ(t->messages_sent(), 0u);
}
