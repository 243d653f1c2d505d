#pragma once

// Strict TOML reading for both daemons' configs: unknown keys and wrong
// types are errors that name the file and the key.
#include <fmt/format.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#include "error.h"
#include "toml_screen.h"

namespace bpfix {

class TomlReader {
public:
    // Parses `path`; throws bpfix::Error with toml11's line and column.
    explicit TomlReader(std::string path) : path_(std::move(path)) {
        std::ifstream in(path_, std::ios::binary);
        if (!in) throw Error(fmt::format("config {}: cannot open it: {}", path_, std::strerror(errno)));
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        size_t broke = 0;
        std::istringstream screened(screen_toml(text, path_, broke));
        try {
            root_ = toml::parse(screened, path_);
        } catch (const std::exception& e) {
            throw Error(fmt::format("config {}: {}{}", path_, e.what(),
                                    broke ? fmt::format(" (line numbers after line {} count the line breaks added "
                                                        "after the commas of its arrays)",
                                                        broke)
                                          : std::string()));
        }
    }

    const toml::value& root() const { return root_; }

    // The table [name], or an empty one.
    toml::value section(const std::string& name) const {
        if (!root_.contains(name)) return toml::value(toml::table{});
        const auto& v = root_.at(name);
        if (!v.is_table()) fail(name, "must be a table ([" + name + "])");
        return v;
    }

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw Error(fmt::format("config {}: {}: {}", path_, key, what));
    }

    void check_keys(const toml::value& table, const std::string& where, const std::set<std::string>& known) const {
        for (const auto& [k, v] : table.as_table()) {
            if (!known.count(k)) {
                std::string list;
                for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
                fail(where.empty() ? k : where + "." + k, "unknown key (known here: " + list + ")");
            }
        }
    }

    double number(const toml::value& t, const std::string& sect, const std::string& key, double def) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (v.is_floating()) return v.as_floating();
        if (v.is_integer()) return static_cast<double>(v.as_integer());
        fail(sect + "." + key, "must be a number");
    }

    int64_t integer(const toml::value& t, const std::string& sect, const std::string& key, int64_t def, int64_t lo,
                    int64_t hi) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (!v.is_integer()) fail(sect + "." + key, "must be an integer");
        int64_t n = v.as_integer();
        if (n < lo || n > hi) fail(sect + "." + key, fmt::format("{} is out of range {}..{}", n, lo, hi));
        return n;
    }

    bool boolean(const toml::value& t, const std::string& sect, const std::string& key, bool def) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (!v.is_boolean()) fail(sect + "." + key, "must be true or false");
        return v.as_boolean();
    }

    std::string string(const toml::value& t, const std::string& sect, const std::string& key,
                       const std::string& def) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (!v.is_string()) fail(sect + "." + key, "must be a string");
        return v.as_string();
    }

    std::vector<std::string> strings(const toml::value& t, const std::string& sect, const std::string& key,
                                     const std::vector<std::string>& def) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (!v.is_array()) fail(sect + "." + key, "must be an array of strings");
        std::vector<std::string> out;
        for (const auto& e : v.as_array()) {
            if (!e.is_string()) fail(sect + "." + key, "must be an array of strings");
            out.push_back(e.as_string());
        }
        return out;
    }

    std::vector<int64_t> integers(const toml::value& t, const std::string& sect, const std::string& key,
                                  const std::vector<int64_t>& def, int64_t lo, int64_t hi) const {
        if (!t.contains(key)) return def;
        const auto& v = t.at(key);
        if (!v.is_array()) fail(sect + "." + key, "must be an array of integers");
        std::vector<int64_t> out;
        for (const auto& e : v.as_array()) {
            if (!e.is_integer()) fail(sect + "." + key, "must be an array of integers");
            int64_t n = e.as_integer();
            if (n < lo || n > hi) fail(sect + "." + key, fmt::format("{} is out of range {}..{}", n, lo, hi));
            out.push_back(n);
        }
        return out;
    }

private:
    std::string path_;
    toml::value root_;
};


}  // namespace bpfix
