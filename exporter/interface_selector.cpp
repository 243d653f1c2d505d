#include "interface_selector.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <net/if.h>

#include "error.h"

namespace bpfix {

InterfaceSelector::Pattern InterfaceSelector::compile(const std::string& text) {
    Pattern p;
    p.text = text;
    if (text.rfind("re:", 0) == 0) {
        p.is_regex = true;
        try {
            p.re = std::regex(text.substr(3), std::regex::extended);
        } catch (const std::regex_error& e) {
            throw Error(fmt::format("interface pattern '{}' is not a valid regular expression: {}", text, e.what()));
        }
    }
    return p;
}

bool InterfaceSelector::match(const Pattern& p, const std::string& name) {
    if (p.is_regex) return std::regex_search(name, p.re);
    return fnmatch(p.text.c_str(), name.c_str(), 0) == 0;
}

InterfaceSelector::InterfaceSelector(const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
    if (include.empty()) {
        throw Error("no interfaces to meter: give --interface NAME|GLOB|re:REGEX (or [live] interfaces)");
    }
    for (const auto& s : include) {
        if (s.empty()) throw Error("an empty interface name was given");
        include_.push_back(compile(s));
        if (s.rfind("re:", 0) != 0 && s.find_first_of("*?[") == std::string::npos) {
            if (s.size() >= IFNAMSIZ) {
                throw Error(fmt::format("interface name '{}' is longer than {} characters", s, IFNAMSIZ - 1));
            }
            exact_.push_back(s);
        }
    }
    for (const auto& s : exclude) exclude_.push_back(compile(s));
}

bool InterfaceSelector::matches(const std::string& name) const {
    for (const auto& e : exclude_) {
        if (match(e, name)) return false;
    }
    for (const auto& i : include_) {
        if (match(i, name)) return true;
    }
    return false;
}

std::map<int, std::string> InterfaceSelector::list_interfaces() {
    std::map<int, std::string> out;
    struct if_nameindex* list = if_nameindex();
    if (!list) return out;
    for (auto* p = list; p->if_index != 0 && p->if_name; ++p) {
        out[static_cast<int>(p->if_index)] = p->if_name;
    }
    if_freenameindex(list);
    return out;
}

std::map<int, std::string> InterfaceSelector::select(const std::map<int, std::string>& all) const {
    std::map<int, std::string> out;
    for (const auto& [idx, name] : all) {
        if (matches(name)) out[idx] = name;
    }
    return out;
}

// Interfaces named exactly (no pattern) must exist when the
// configuration is taken, at start or on reload.
void InterfaceSelector::require_exact_names() const {
    auto present = list_interfaces();
    for (const auto& name : exact_) {
        bool found = false;
        for (const auto& [idx, n] : present) found = found || n == name;
        if (!found) {
            throw Error(fmt::format("interface '{}' does not exist; check `ip link` (or use a pattern such as "
                                    "'{}*' to meter it when it appears)",
                                    name, name));
        }
    }
}

}  // namespace bpfix
