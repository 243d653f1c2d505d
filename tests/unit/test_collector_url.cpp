#include <gtest/gtest.h>

#include "collector_url.h"
#include "error.h"

using namespace bpfix;

TEST(CollectorUrl, ParsesEachForm) {
    auto t = parse_collector_url("tcp://collector.example:4739");
    EXPECT_EQ(t.kind, CollectorUrl::Kind::tcp);
    EXPECT_EQ(t.host, "collector.example");
    EXPECT_EQ(t.port, 4739);
    auto u = parse_collector_url("udp://[::1]:2055");
    EXPECT_EQ(u.kind, CollectorUrl::Kind::udp);
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.str(), "udp://[::1]:2055");
    auto s = parse_collector_url("sctp://[2001:db8::1]:4739");
    EXPECT_EQ(s.kind, CollectorUrl::Kind::sctp);
    EXPECT_EQ(s.host, "2001:db8::1");
    EXPECT_EQ(s.str(), "sctp://[2001:db8::1]:4739");
    EXPECT_EQ(parse_listen_url("sctp://0.0.0.0:0").kind, CollectorUrl::Kind::sctp);
    auto f = parse_collector_url("file:/tmp/x.ipfix");
    EXPECT_EQ(f.kind, CollectorUrl::Kind::file);
    EXPECT_EQ(f.path, "/tmp/x.ipfix");
}

TEST(CollectorUrl, RejectsWithReason) {
    for (const char* bad : {"tcp://host", "udp://:4739", "http://x:1", "tcp://h:0", "tcp://h:70000", "udp://::1:5",
                            "file:", "sctp://h", "sctp:/h:4739"}) {
        try {
            parse_collector_url(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
}
