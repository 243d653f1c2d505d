#include "transport.h"

namespace bpfix {

std::unique_ptr<Transport> make_file_transport(const std::string& path);
std::unique_ptr<Transport> make_udp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                              asio::io_context& io);
std::unique_ptr<Transport> make_tcp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                              asio::io_context& io, Transport::TemplateSource templates);
std::unique_ptr<Transport> make_sctp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                               asio::io_context& io, Transport::TemplateSource templates);

std::unique_ptr<Transport> make_transport(const CollectorUrl& url, const TransportOptions& opts,
                                          asio::io_context& io, Transport::TemplateSource templates) {
    switch (url.kind) {
        case CollectorUrl::Kind::file: return make_file_transport(url.path);
        case CollectorUrl::Kind::udp: return make_udp_transport(url, opts, io);
        case CollectorUrl::Kind::tcp: return make_tcp_transport(url, opts, io, std::move(templates));
        case CollectorUrl::Kind::sctp: return make_sctp_transport(url, opts, io, std::move(templates));
    }
    return nullptr;
}

void set_sequence_number(std::vector<uint8_t>& message, uint32_t seq) {
    if (message.size() < 16) return;
    message[8] = static_cast<uint8_t>(seq >> 24);
    message[9] = static_cast<uint8_t>(seq >> 16);
    message[10] = static_cast<uint8_t>(seq >> 8);
    message[11] = static_cast<uint8_t>(seq);
}

}  // namespace bpfix
