// Prometheus text exposition format (version 0.0.4), as both daemons serve
// it on /metrics: a HELP and a TYPE line per family, then its samples.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bpfix {

class PrometheusText {
public:
    // Starts a family: `type` is "counter" or "gauge".
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample of the current family; `labels` as written between the
    // braces (a="x",b="y"), empty for none.
    void sample(std::string_view name, std::string_view labels, uint64_t value);
    // A family of one unlabelled sample.
    void one(std::string_view name, std::string_view type, std::string_view help, uint64_t value);
    const std::string& text() const { return out_; }

    // A label value with \, " and newlines escaped.
    static std::string escape(std::string_view value);

private:
    std::string out_;
};

}  // namespace bpfix
