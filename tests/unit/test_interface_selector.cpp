#include <gtest/gtest.h>

#include "error.h"
#include "interface_selector.h"

using namespace bpfix;

TEST(InterfaceSelector, NamesGlobsRegexAndExclusions) {
    InterfaceSelector s({"eth0", "tap*", "re:^vnet[0-9]+$"}, {"lo", "tap-mgmt*"});
    EXPECT_TRUE(s.matches("eth0"));
    EXPECT_FALSE(s.matches("eth1"));
    EXPECT_TRUE(s.matches("tap12ab"));
    EXPECT_FALSE(s.matches("tap-mgmt0"));  // excluded
    EXPECT_TRUE(s.matches("vnet3"));
    EXPECT_FALSE(s.matches("vnet3x"));
    ASSERT_EQ(s.exact_names().size(), 1u);
    EXPECT_EQ(s.exact_names()[0], "eth0");

    auto chosen = s.select({{1, "lo"}, {2, "eth0"}, {7, "tap1"}, {8, "tap-mgmt"}, {9, "br0"}});
    EXPECT_EQ(chosen.size(), 2u);
    EXPECT_EQ(chosen.at(2), "eth0");
    EXPECT_EQ(chosen.at(7), "tap1");
}

TEST(InterfaceSelector, ExclusionWinsOverExactName) {
    InterfaceSelector s({"*"}, {"lo"});
    EXPECT_FALSE(s.matches("lo"));
    EXPECT_TRUE(s.matches("eth0"));
}

TEST(InterfaceSelector, BadInputIsAnError) {
    EXPECT_THROW(InterfaceSelector({}, {}), Error);
    EXPECT_THROW(InterfaceSelector({"re:(unclosed"}, {}), Error);
    EXPECT_THROW(InterfaceSelector({"an-interface-name-too-long"}, {}), Error);
    EXPECT_THROW(InterfaceSelector({""}, {}), Error);
}

TEST(InterfaceSelector, ListsThisHostsInterfaces) {
    auto all = InterfaceSelector::list_interfaces();
    bool has_lo = false;
    for (const auto& [idx, name] : all) has_lo = has_lo || name == "lo";
    EXPECT_TRUE(has_lo);
}
