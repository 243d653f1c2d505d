// Reading the pcap store back: the packets of a time range, of one exporter
// or all, that match a pcap-filter expression, as one time-ordered pcap
// stream (the HTTP API's /api/v1/pcap and `bpfix-collector pcap`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "error.h"

namespace bpfix {

// A request that cannot be served, with the HTTP status that says why
// (400 bad parameters, 404 nothing stored for that exporter, 413 too much).
// what(): what any client may read (GET /api/v1/pcap answers with it);
// detail(): what only the operator sees (the log, the command line): paths
// of the data directory and the exporters that have packets.
class QueryError : public Error {
public:
    QueryError(int status, const std::string& what, std::string detail = {})
        : Error(what), status_(status), detail_(std::move(detail)) {}
    int status() const { return status_; }
    const std::string& detail() const { return detail_; }
    std::string for_operator() const { return detail_.empty() ? what() : std::string(what()) + " (" + detail_ + ")"; }

private:
    int status_;
    std::string detail_;
};

// "2026-12-01T04:30:00Z", with optional fraction and a Z or +HH:MM offset,
// as UNIX ns. Throws QueryError (400) quoting the text.
int64_t parse_rfc3339(const std::string& text);

struct PcapQuery {
    int64_t from_ns = 0, to_ns = 0;  // [from, to)
    std::string exporter;            // an exporter's address; empty: all
    std::string filter;              // pcap-filter expression; empty: all
    bool nanoseconds = true;         // the stream's timestamp precision
    uint64_t max_bytes = 1ULL << 30;  // matching packet bytes held for sorting, at most
};

// Writes one pcap stream (global header first, then the packets in time
// order) through `out`, in chunks; returns the packets written. Throws
// QueryError before writing anything when the query is bad (time range,
// filter, unknown exporter) or too large.
uint64_t write_pcap_range(const std::string& data_dir, const PcapQuery& q,
                          const std::function<void(std::string_view)>& out);

// The command line's form: writes to `path` ("-": stdout) through a
// temporary file renamed at the end, so a failed query leaves no broken
// file. Returns the exit code; throws QueryError.
int write_pcap_file(const std::string& data_dir, const PcapQuery& q, const std::string& path);

}  // namespace bpfix
