#pragma once

#include <string>

namespace bpfix {

// Checks a configuration file's text before the TOML parser sees it, for
// shapes that would crash or stall it (toml11 recurses once per nesting
// level and per part of a dotted key, and copies a whole line for every
// value on it): at most kMaxTomlBytes, arrays and inline tables nested at
// most kMaxTomlDepth deep, keys of at most kMaxTomlKeyParts dotted parts.
// Throws bpfix::Error naming `path`, the line and the limit. Returns the
// text to parse: the same, except that a line longer than kLongTomlLine
// gets a line break after each comma of its arrays (TOML allows them
// there), so that its parse time grows with its length, not its square;
// `broke_line` is then the first such line (0: none), for error messages.
constexpr size_t kMaxTomlBytes = 4 << 20;
constexpr size_t kMaxTomlDepth = 64;
constexpr size_t kMaxTomlKeyParts = 64;
constexpr size_t kLongTomlLine = 4096;
std::string screen_toml(const std::string& text, const std::string& path, size_t& broke_line);

}  // namespace bpfix
