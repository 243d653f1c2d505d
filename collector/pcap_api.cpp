#include "pcap_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "error.h"
#include "pcap_query.h"

namespace bpfix {

HttpServer::StreamHandler pcap_api(std::string data_dir, uint64_t max_memory) {
    return [data_dir, max_memory](const HttpServer::Request& req) -> std::variant<HttpServer::Response, HttpServer::Writer> {
        PcapQuery q;
        try {
            auto params = parse_query_string(req.query);
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
            q.max_bytes = max_memory;
        } catch (const QueryError& e) {
            return HttpServer::Response{e.status(), "text/plain", std::string(e.what()) + "\n"};
        } catch (const Error& e) {
            return HttpServer::Response{400, "text/plain", std::string(e.what()) + "\n"};
        }
        // The transfer reads files and may stream for long. write_pcap_range
        // checks the query (a 4xx) before its first byte.
        std::string who = req.peer;
        return HttpServer::Writer([data_dir, q, who](int fd) {
            bool sent_header = false;
            try {
                uint64_t n = write_pcap_range(data_dir, q, [&](std::string_view chunk) {
                    if (!sent_header) {
                        static const char head[] =
                            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.tcpdump.pcap\r\n"
                            "Content-Disposition: attachment; filename=\"bpfix.pcap\"\r\nConnection: close\r\n\r\n";
                        if (!http_send_all(fd, head, sizeof head - 1)) throw Error("client gone");
                        sent_header = true;
                    }
                    if (!http_send_all(fd, chunk.data(), chunk.size())) throw Error("client gone");
                });
                spdlog::info("api: {} packets to {} ({})", n, who, q.filter.empty() ? "no filter" : q.filter);
            } catch (const QueryError& e) {
                if (!sent_header) {
                    std::string resp = http_response(e.status(), "text/plain", std::string(e.what()) + "\n");
                    http_send_all(fd, resp.data(), resp.size());
                }
                spdlog::warn("api: pcap query from {}: {}", who, e.for_operator());
            } catch (const Error& e) {
                spdlog::warn("api: pcap transfer to {} ended: {}", who, e.what());
            }
        });
    };
}

}  // namespace bpfix
