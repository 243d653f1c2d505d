#pragma once

#include <map>
#include <regex>
#include <string>
#include <vector>

namespace bpfix {

// Chooses interfaces by name, glob (`tap*`, fnmatch) or regular expression
// (`re:^tap[0-9]+$`), minus exclusions in the same forms (default: `lo`).
class InterfaceSelector {
public:
    InterfaceSelector(const std::vector<std::string>& include, const std::vector<std::string>& exclude);

    bool matches(const std::string& name) const;
    // Exact names (no wildcard, no `re:`): they must exist at start.
    const std::vector<std::string>& exact_names() const { return exact_; }
    // Throws naming the first exact name that is not an interface now.
    void require_exact_names() const;

    // The host's interfaces now, ifindex -> name.
    static std::map<int, std::string> list_interfaces();
    // The selected subset of `all`.
    std::map<int, std::string> select(const std::map<int, std::string>& all) const;

private:
    struct Pattern {
        std::string text;
        bool is_regex = false;
        std::regex re;
    };
    static Pattern compile(const std::string& text);
    static bool match(const Pattern& p, const std::string& name);

    std::vector<Pattern> include_, exclude_;
    std::vector<std::string> exact_;
};

}  // namespace bpfix
