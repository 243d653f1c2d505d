#include "exporter_counters.h"

namespace bpfix {

void CounterSums::add(const ExporterCounters& c) {
    messages += c.messages;
    records += c.records;
    bytes += c.bytes;
    malformed += c.malformed;
    lost_records += c.lost_records;
    unknown_template_sets += c.unknown_template_sets;
    unknown_template_records += c.unknown_template_records;
    out_of_order += c.out_of_order;
    sequence_resets += c.sequence_resets;
    implausible_sequence += c.implausible_sequence;
}

ExporterCounters& CounterTable::get(const std::string& exporter, uint32_t domain) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(exporter, domain);
    if (auto it = rows_.find(key); it != rows_.end()) return *it->second;
    if (rows_.size() < max_series_) return *rows_.emplace(key, std::make_unique<ExporterCounters>()).first->second;
    ++overflowed_;
    if (!other_) other_ = std::make_unique<ExporterCounters>();
    return *other_;
}

void CounterTable::visit(
    const std::function<void(const std::string&, const std::string&, const ExporterCounters&)>& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, c] : rows_) f(key.first, std::to_string(key.second), *c);
    if (other_) f("other", "other", *other_);
}

CounterSums CounterTable::sums() const {
    CounterSums s;
    visit([&s](const std::string&, const std::string&, const ExporterCounters& c) { s.add(c); });
    return s;
}

}  // namespace bpfix
