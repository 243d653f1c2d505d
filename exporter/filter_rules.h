#pragma once

#include <string>
#include <vector>

#include "bpfix_abi.h"

namespace bpfix {

// One filter rule as written in the config ([[live.filter]] and
// [[capture.filter]] tables); empty
// strings mean "any".
struct FilterRuleText {
    std::string action;  // "accept" | "reject"
    std::string protocol, src, dst, peer, port, src_port, dst_port, direction;
    bool operator==(const FilterRuleText&) const = default;
};

struct CompiledFilter {
    std::vector<bpfix_filter_rule> rules;  // first match wins
    uint32_t default_action = BPFIX_FILTER_ACCEPT;
};

// Turns rules into the datapath's form. The default is reject when any rule
// accepts (an allow list), accept otherwise. Throws bpfix::Error naming the
// rules' table (`where`, "live.filter"), the rule (1-based) and the field.
CompiledFilter compile_filter(const std::vector<FilterRuleText>& rules, const std::string& where = "live.filter");

// Writes the rules into a program's `filter_rules` map (bpf/packet_parse
// .bpf.h; its rule count and default are set before load). Throws
// bpfix::Error naming the rule.
void load_filter_rules(int map_fd, const CompiledFilter& filter, const std::string& where);

}  // namespace bpfix
