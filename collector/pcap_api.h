// GET /api/v1/pcap?from=...&to=...[&exporter=...][&filter=...][&precision=us]
// on the collector's HTTP endpoint: the pcap store's packets of a time
// range, exporter and pcap-filter, as one pcap stream (docs/collector.md).
#pragma once

#include <cstdint>
#include <string>

#include "http_server.h"

namespace bpfix {

// The route's handler over the pcap store in `data_dir`: a bad query is
// answered at once (4xx); a good one streams from its own thread, holding
// at most `max_memory` bytes of matching packets (more: 413).
HttpServer::StreamHandler pcap_api(std::string data_dir, uint64_t max_memory);

}  // namespace bpfix
