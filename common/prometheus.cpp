#include "prometheus.h"

#include <fmt/format.h>

namespace bpfix {

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::sample(std::string_view name, std::string_view labels, uint64_t value) {
    if (labels.empty()) {
        out_ += fmt::format("{} {}\n", name, value);
    } else {
        out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
}

void PrometheusText::one(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
}

std::string PrometheusText::escape(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

}  // namespace bpfix
