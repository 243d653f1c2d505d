#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <toml.hpp>

#include "error.h"
#include "toml_screen.h"

namespace bpfix {
namespace {

std::string error_of(const std::string& text) {
    size_t broke = 0;
    try {
        screen_toml(text, "x.toml", broke);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(TomlScreen, DeepNestingIsRefusedWithItsLine) {
    std::string deep = "a = 1\nb = " + std::string(100, '[') + std::string(100, ']') + "\n";
    EXPECT_EQ(error_of(deep), "config x.toml: line 2: arrays and inline tables nested more than 64 deep");
    std::string tables = "a = " + std::string(65, '{');
    for (int i = 0; i < 65; ++i) tables += "b=";
    EXPECT_NE(error_of(tables).find("nested more than 64 deep"), std::string::npos);
    std::string ok = "b = " + std::string(64, '[') + std::string(64, ']') + "\n";
    EXPECT_EQ(error_of(ok), "");
}

TEST(TomlScreen, LongDottedKeysAreRefused) {
    std::string key = "a";
    for (int i = 0; i < 100; ++i) key += ".b";
    EXPECT_NE(error_of(key + " = 1\n").find("line 1: a key of more than 64 dotted parts"), std::string::npos);
    EXPECT_NE(error_of("[" + key + "]\n").find("dotted parts"), std::string::npos);
    // dots in values and strings are not key parts
    std::string values = "a = [" ;
    for (int i = 0; i < 100; ++i) values += "1.5, ";
    values += "2.5]\nb = \"" + std::string(100, '.') + "\"\n";
    EXPECT_EQ(error_of(values), "");
}

TEST(TomlScreen, StringsAndCommentsAreOpaque) {
    std::string text = "a = \"[[[[{{{{,,,.\\\"\" # [[[[ ,,,\nb = '''x\n[[[\n''' \nc = [\"a,b\", 'c]']\n";
    size_t broke = 1;
    EXPECT_EQ(screen_toml(text, "x.toml", broke), text);
    EXPECT_EQ(broke, 0u);
}

TEST(TomlScreen, LongArrayLinesParseToTheSameValues) {
    std::string text = "[listen]\nallow = [";
    for (int i = 0; i < 1000; ++i) text += (i ? ", \"10.0." : "\"10.0.") + std::to_string(i % 256) + ".0/24\"";
    text += "]\nurls = [\"udp://127.0.0.1:0\"]\n";
    size_t broke = 0;
    std::string screened = screen_toml(text, "x.toml", broke);
    EXPECT_EQ(broke, 2u);
    std::istringstream a(text), b(screened);
    EXPECT_EQ(toml::parse(a, "a"), toml::parse(b, "b"));
}

TEST(TomlScreen, ShippedConfigsAreUnchanged) {
    for (const char* name : {"/etc/bpfix/exporter.toml", "/etc/bpfix/collector.toml"}) {
        std::ifstream in(std::string(BPFIX_SOURCE_DIR) + name);
        std::stringstream ss;
        ss << in.rdbuf();
        ASSERT_FALSE(ss.str().empty()) << name;
        size_t broke = 0;
        EXPECT_EQ(screen_toml(ss.str(), name, broke), ss.str()) << name;
    }
}

}  // namespace
}  // namespace bpfix
