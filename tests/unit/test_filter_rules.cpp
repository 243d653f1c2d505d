#include <gtest/gtest.h>

#include "error.h"
#include "filter_rules.h"

using namespace bpfix;

TEST(FilterRules, CompilesCidrsPortsAndDefaults) {
    FilterRuleText dns{"reject", "udp", "", "", "", "53", "", "", ""};
    FilterRuleText lan{"accept", "", "10.1.0.0/16", "", "", "", "", "1000-2000", "ingress"};
    auto f = compile_filter({dns, lan});
    ASSERT_EQ(f.rules.size(), 2u);
    EXPECT_EQ(f.default_action, static_cast<uint32_t>(BPFIX_FILTER_REJECT));  // an accept rule: allow list
    const auto& r0 = f.rules[0];
    EXPECT_EQ(r0.action, BPFIX_FILTER_REJECT);
    EXPECT_EQ(r0.protocol, BPFIX_PROTO_UDP);
    EXPECT_TRUE(r0.flags & BPFIX_FILTER_F_EITHER_PORT);
    EXPECT_EQ(r0.sport_lo, 53);
    EXPECT_EQ(r0.sport_hi, 53);
    EXPECT_EQ(r0.dport_lo, 0);
    EXPECT_EQ(r0.dport_hi, 65535);
    const auto& r1 = f.rules[1];
    EXPECT_EQ(r1.ip_version, 4);
    EXPECT_EQ(r1.src_addr[0], 10);
    EXPECT_EQ(r1.src_addr[1], 1);
    EXPECT_EQ(r1.src_mask[1], 0xff);
    EXPECT_EQ(r1.src_mask[2], 0x00);
    EXPECT_EQ(r1.dport_lo, 1000);
    EXPECT_EQ(r1.dport_hi, 2000);
    EXPECT_EQ(r1.directions, 1 << BPFIX_DIR_INGRESS);

    EXPECT_EQ(compile_filter({dns}).default_action, static_cast<uint32_t>(BPFIX_FILTER_ACCEPT));
    EXPECT_EQ(compile_filter({}).rules.size(), 0u);
}

TEST(FilterRules, MasksHostBitsAndIpv6Prefixes) {
    auto f = compile_filter({{"reject", "", "", "", "2001:db8:ff::1/33", "", "", "", ""}});
    const auto& r = f.rules[0];
    EXPECT_EQ(r.ip_version, 6);
    EXPECT_TRUE(r.flags & BPFIX_FILTER_F_PEER);
    EXPECT_EQ(r.src_mask[3], 0xff);
    EXPECT_EQ(r.src_mask[4], 0x80);
    // 2001:0db8:00ff::1 -> bytes 4..5 are 00 ff; /33 keeps only byte 4's top bit.
    EXPECT_EQ(r.src_addr[3], 0xb8);
    EXPECT_EQ(r.src_addr[5], 0x00);  // host bits cleared
    EXPECT_EQ(r.src_addr[15], 0x00);
}

TEST(FilterRules, ErrorsNameRuleAndField) {
    auto err = [](FilterRuleText t) {
        try {
            compile_filter({t});
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(err({"drop", "", "", "", "", "", "", "", ""}).find("rule 1: action"), std::string::npos);
    EXPECT_NE(err({"accept", "bogus", "", "", "", "", "", "", ""}).find("protocol"), std::string::npos);
    EXPECT_NE(err({"accept", "", "10.0.0.0/40", "", "", "", "", "", ""}).find("src"), std::string::npos);
    EXPECT_NE(err({"accept", "", "10.0.0.1", "::1", "", "", "", "", ""}).find("different IP versions"),
              std::string::npos);
    EXPECT_NE(err({"accept", "", "1.2.3.4", "", "1.2.3.4", "", "", "", ""}).find("peer"), std::string::npos);
    EXPECT_NE(err({"accept", "", "", "", "", "9-3", "", "", ""}).find("port"), std::string::npos);
    EXPECT_NE(err({"accept", "", "", "", "", "", "", "", "sideways"}).find("direction"), std::string::npos);
    std::vector<FilterRuleText> many(BPFIX_MAX_FILTER_RULES + 1, FilterRuleText{"accept", "", "", "", "", "", "", "", ""});
    EXPECT_THROW(compile_filter(many), Error);
}
