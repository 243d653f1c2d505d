#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace bpfix {

// What one exporter (its address, whatever its ports and connections) sent
// in one observation domain, for the life of the process: sessions add to
// it as they decode, so a counter never goes back when a session ends or
// a UDP exporter comes back from a new port.
struct ExporterCounters {
    std::atomic<uint64_t> messages{0};     // decoded
    std::atomic<uint64_t> records{0};      // data records decoded (options records included)
    std::atomic<uint64_t> bytes{0};        // IPFIX message bytes received
    std::atomic<uint64_t> malformed{0};    // messages that could not be decoded in full
    std::atomic<uint64_t> lost_records{0};  // sequence gaps: sent, never arrived
    std::atomic<uint64_t> unknown_template_sets{0};     // data sets of a template the session did not have
    std::atomic<uint64_t> unknown_template_records{0};  // their records, told by the sequence numbers
    std::atomic<uint64_t> out_of_order{0};         // late messages
    std::atomic<uint64_t> sequence_resets{0};      // the exporter's numbering started anew
    std::atomic<uint64_t> implausible_sequence{0};  // jumps no later message confirmed (not counted as loss)
};

// The same, summed: for the log and the exit summary.
struct CounterSums {
    uint64_t messages = 0, records = 0, bytes = 0, malformed = 0, lost_records = 0, unknown_template_sets = 0,
             unknown_template_records = 0, out_of_order = 0, sequence_resets = 0, implausible_sequence = 0;
    void add(const ExporterCounters& c);
};

// Counters per (exporter, domain), bounded: once `max_series` pairs are
// known, new pairs share one ("other", "other") row, so a flood of
// addresses or domains cannot grow memory or /metrics without bound.
// Rows are never removed: a reference stays valid for the table's life.
class CounterTable {
public:
    explicit CounterTable(size_t max_series) : max_series_(max_series) {}
    ExporterCounters& get(const std::string& exporter, uint32_t domain);
    // Every row: exporter, domain ("other" for the overflow row), counters.
    void visit(const std::function<void(const std::string&, const std::string&, const ExporterCounters&)>& f) const;
    CounterSums sums() const;
    // (exporter, domain) pairs counted in the overflow row.
    uint64_t overflowed() const { return overflowed_; }

private:
    size_t max_series_;
    mutable std::mutex mu_;
    std::map<std::pair<std::string, uint32_t>, std::unique_ptr<ExporterCounters>> rows_;
    std::unique_ptr<ExporterCounters> other_;
    std::atomic<uint64_t> overflowed_{0};
};

}  // namespace bpfix
