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

// Puts `filter` in effect in a loaded program (bpf/packet_parse.bpf.h): the
// rules go into the bank not in use of its `filter_rules` map and `sets`,
// then `bank_in_use` switches to it, so packets see the old rule set or
// the new one, whole. `sets` and `bank_in_use` are the program's global
// variables, mapped by its skeleton. Throws bpfix::Error naming the rule
// (the rules in effect stay).
void install_filter(int map_fd, volatile bpfix_filter_set* sets, volatile uint32_t* bank_in_use,
                    const CompiledFilter& filter, const std::string& where);

}  // namespace bpfix
