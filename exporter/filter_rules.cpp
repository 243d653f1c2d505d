#include "filter_rules.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "cidr.h"
#include "error.h"

namespace bpfix {

namespace {

thread_local std::string table = "live.filter";  // for the messages below

[[noreturn]] void fail(size_t n, const std::string& field, const std::string& what) {
    throw Error(fmt::format("{} rule {}: {}: {}", table, n, field, what));
}

// Returns the version; the rule number and field go into the error.
uint8_t parse_cidr(size_t n, const std::string& field, const std::string& text, uint8_t addr[16], uint8_t mask[16]) {
    try {
        Cidr c = bpfix::parse_cidr(text);
        memcpy(addr, c.addr, 16);
        memcpy(mask, c.mask, 16);
        return c.version;
    } catch (const Error& e) {
        fail(n, field, e.what());
    }
}

void parse_range(size_t n, const std::string& field, const std::string& text, uint16_t& lo, uint16_t& hi) {
    auto num = [&](const std::string& s) {
        unsigned v = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || ptr != s.data() + s.size() || v > 65535) {
            fail(n, field, "'" + text + "' is not a port or a range like 1000-2000");
        }
        return static_cast<uint16_t>(v);
    };
    auto dash = text.find('-');
    lo = num(dash == std::string::npos ? text : text.substr(0, dash));
    hi = dash == std::string::npos ? lo : num(text.substr(dash + 1));
    if (lo > hi) fail(n, field, "'" + text + "' is an empty range");
}

uint8_t parse_protocol(size_t n, const std::string& text) {
    if (text == "tcp") return BPFIX_PROTO_TCP;
    if (text == "udp") return BPFIX_PROTO_UDP;
    if (text == "icmp") return BPFIX_PROTO_ICMP;
    if (text == "icmpv6") return BPFIX_PROTO_ICMPV6;
    if (text == "sctp") return BPFIX_PROTO_SCTP;
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || v == 0 || v > 255) {
        fail(n, "protocol", "'" + text + "' is not tcp, udp, icmp, icmpv6, sctp or a number 1..255");
    }
    return static_cast<uint8_t>(v);
}

}  // namespace

CompiledFilter compile_filter(const std::vector<FilterRuleText>& rules, const std::string& where) {
    if (rules.size() > BPFIX_MAX_FILTER_RULES) {
        throw Error(fmt::format("{}: {} rules, at most {} are supported", where, rules.size(),
                                BPFIX_MAX_FILTER_RULES));
    }
    table = where;
    CompiledFilter out;
    bool any_accept = false;
    for (size_t i = 0; i < rules.size(); ++i) {
        const FilterRuleText& t = rules[i];
        size_t n = i + 1;
        bpfix_filter_rule r{};
        if (t.action == "accept") {
            r.action = BPFIX_FILTER_ACCEPT;
            any_accept = true;
        } else if (t.action == "reject") {
            r.action = BPFIX_FILTER_REJECT;
        } else {
            fail(n, "action", "'" + t.action + "' is neither \"accept\" nor \"reject\"");
        }
        if (!t.protocol.empty()) r.protocol = parse_protocol(n, t.protocol);
        if (!t.peer.empty() && (!t.src.empty() || !t.dst.empty())) {
            fail(n, "peer", "use either peer or src/dst in one rule");
        }
        uint8_t versions[2] = {0, 0};
        if (!t.peer.empty()) {
            versions[0] = parse_cidr(n, "peer", t.peer, r.src_addr, r.src_mask);
            r.flags |= BPFIX_FILTER_F_PEER;
        }
        if (!t.src.empty()) versions[0] = parse_cidr(n, "src", t.src, r.src_addr, r.src_mask);
        if (!t.dst.empty()) versions[1] = parse_cidr(n, "dst", t.dst, r.dst_addr, r.dst_mask);
        if (versions[0] && versions[1] && versions[0] != versions[1]) {
            fail(n, "dst", "src and dst are of different IP versions");
        }
        r.ip_version = versions[0] ? versions[0] : versions[1];
        r.sport_hi = r.dport_hi = 65535;
        if (!t.port.empty()) {
            if (!t.src_port.empty() || !t.dst_port.empty()) {
                fail(n, "port", "use either port or src_port/dst_port in one rule");
            }
            parse_range(n, "port", t.port, r.sport_lo, r.sport_hi);
            r.flags |= BPFIX_FILTER_F_EITHER_PORT;
        }
        if (!t.src_port.empty()) parse_range(n, "src_port", t.src_port, r.sport_lo, r.sport_hi);
        if (!t.dst_port.empty()) parse_range(n, "dst_port", t.dst_port, r.dport_lo, r.dport_hi);
        if (t.direction == "ingress") {
            r.directions = 1 << BPFIX_DIR_INGRESS;
        } else if (t.direction == "egress") {
            r.directions = 1 << BPFIX_DIR_EGRESS;
        } else if (!t.direction.empty() && t.direction != "both") {
            fail(n, "direction", "'" + t.direction + "' is not ingress, egress or both");
        }
        out.rules.push_back(r);
    }
    out.default_action = any_accept ? BPFIX_FILTER_REJECT : BPFIX_FILTER_ACCEPT;
    return out;
}

void install_filter(int map_fd, volatile bpfix_filter_set* sets, volatile uint32_t* bank_in_use,
                    const CompiledFilter& filter, const std::string& where) {
    if (!sets || !bank_in_use) {
        throw Error(fmt::format("cannot set {}: the program's global variables are not mapped (a kernel without "
                                "mmapable BPF arrays)",
                                where));
    }
    const uint32_t next = (__atomic_load_n(bank_in_use, __ATOMIC_ACQUIRE) & 1) ^ 1;
    for (uint32_t i = 0; i < filter.rules.size(); ++i) {
        uint32_t key = next * BPFIX_MAX_FILTER_RULES + i;
        if (bpf_map_update_elem(map_fd, &key, &filter.rules[i], BPF_ANY) != 0) {
            throw Error(fmt::format("cannot load {} rule {} into the kernel: {}", where, i + 1, std::strerror(errno)));
        }
    }
    sets[next].count = static_cast<uint32_t>(filter.rules.size());
    sets[next].default_action = filter.default_action;
    // Programs read the bank once per packet, then its set and rules.
    __atomic_store_n(bank_in_use, next, __ATOMIC_RELEASE);
}

}  // namespace bpfix
