#include "toml_screen.h"

#include <fmt/format.h>

#include <vector>

#include "error.h"

namespace bpfix {

std::string screen_toml(const std::string& text, const std::string& path, size_t& broke_line) {
    broke_line = 0;
    if (text.size() > kMaxTomlBytes) {
        throw Error(fmt::format("config {}: {} bytes; a configuration file may hold at most {} MiB", path,
                                text.size(), kMaxTomlBytes >> 20));
    }
    std::string out;
    out.reserve(text.size() + text.size() / 16);
    std::vector<char> open;  // '[' array or header, '{' inline table
    size_t line = 1, line_start = 0, key_parts = 1;
    bool key = true;      // in a key (line start, after '{' or ',' in an inline table)
    bool header = false;  // in a [table] or [[table]] header
    bool long_line = false;
    auto fail = [&](const std::string& what) {
        throw Error(fmt::format("config {}: line {}: {}", path, line, what));
    };
    auto start_line = [&](size_t at) {
        line_start = at;
        size_t end = text.find('\n', at);
        long_line = (end == std::string::npos ? text.size() : end) - at > kLongTomlLine;
    };
    start_line(0);
    for (size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (ch == '#') {  // a comment, to the end of the line
            size_t end = text.find('\n', i);
            end = end == std::string::npos ? text.size() : end;
            out.append(text, i, end - i);
            i = end - 1;
            continue;
        }
        if (ch == '"' || ch == '\'') {  // a string, copied as it is
            bool triple = text.compare(i, 3, std::string(3, ch)) == 0;
            size_t j = i + (triple ? 3 : 1);
            for (;; ++j) {
                if (j >= text.size()) fail("a string is not closed");
                if (ch == '"' && text[j] == '\\') {
                    ++j;
                    continue;
                }
                if (text[j] == '\n') {
                    if (!triple) fail("a string is not closed on its line");
                    ++line;
                }
                if (text[j] == ch && (!triple || text.compare(j, 3, std::string(3, ch)) == 0)) {
                    j += triple ? 3 : 1;
                    // a closing """" or """"" holds quotes of the string
                    while (triple && j < text.size() && text[j] == ch) ++j;
                    break;
                }
            }
            out.append(text, i, j - i);
            i = j - 1;
            continue;
        }
        out += ch;
        switch (ch) {
            case '\n':
                ++line;
                start_line(i + 1);
                if (open.empty()) {
                    key = true;
                    header = false;
                    key_parts = 1;
                }
                break;
            case '[':
            case '{':
                if (ch == '[' && open.empty() && key && text.find_first_not_of(" \t", line_start) >= i) header = true;
                open.push_back(ch);
                if (open.size() > kMaxTomlDepth + (header ? 2 : 0)) {
                    fail(fmt::format("arrays and inline tables nested more than {} deep", kMaxTomlDepth));
                }
                key = ch == '{' || header;
                key_parts = 1;
                break;
            case ']':
            case '}':
                if (!open.empty()) open.pop_back();
                if (header && open.empty()) key = false;
                break;
            case '=':
                key = false;
                break;
            case ',':
                if (!open.empty() && open.back() == '{') {
                    key = true;
                    key_parts = 1;
                } else if (long_line && !open.empty() && open.back() == '[' && !header) {
                    out += '\n';
                    if (!broke_line) broke_line = line;
                }
                break;
            case '.':
                if (key && ++key_parts > kMaxTomlKeyParts) {
                    fail(fmt::format("a key of more than {} dotted parts", kMaxTomlKeyParts));
                }
                break;
            default:
                break;
        }
    }
    return out;
}

}  // namespace bpfix
