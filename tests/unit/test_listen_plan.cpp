// Where the collector listens: [listen] urls matched with the sockets
// systemd passes (plan_listeners), and the LISTEN_* variables read once.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "error.h"
#include "listen_plan.h"
#include "socket_activation.h"

using namespace bpfix;

namespace {

InheritedSocket passed(int fd, InheritedSocket::Kind kind, const char* addr, uint16_t port, bool listening = true) {
    InheritedSocket s;
    s.fd = fd;
    s.kind = kind;
    s.listening = kind == InheritedSocket::Kind::udp ? false : listening;
    if (std::string(addr).find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&s.local);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        s.local_len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&s.local);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        s.local_len = sizeof *a;
    }
    return s;
}

std::string refusal(const std::vector<std::string>& urls, const std::vector<InheritedSocket>& in) {
    try {
        plan_listeners(urls, in);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(ListenPlan, UrlsAloneBindTheirOwn) {
    auto l = plan_listeners({"udp://127.0.0.1:0", "tcp://[::1]:4739"}, {});
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].kind, CollectorUrl::Kind::udp);
    EXPECT_TRUE(l[0].fds.empty());
    EXPECT_EQ(l[1].port, 4739);
    EXPECT_EQ(l[1].text, "tcp://[::1]:4739");
}

TEST(ListenPlan, PassedSocketsServeTheirUrls) {
    // Two UDP sockets on one port (ReusePort=yes) and a TCP one; 0.0.0.0 in
    // the url and [::] from systemd both mean every address.
    auto l = plan_listeners({"udp://0.0.0.0:4739", "tcp://[::]:4739"},
                            {passed(3, InheritedSocket::Kind::udp, "::", 4739),
                             passed(4, InheritedSocket::Kind::udp, "::", 4739),
                             passed(5, InheritedSocket::Kind::tcp, "::", 4739)});
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].fds, (std::vector<int>{3, 4}));
    EXPECT_EQ(l[1].fds, (std::vector<int>{5}));
}

TEST(ListenPlan, PassedSocketsWithoutUrlsAreServed) {
    auto l = plan_listeners({}, {passed(3, InheritedSocket::Kind::udp, "::", 4739),
                                 passed(4, InheritedSocket::Kind::udp, "::", 4739),
                                 passed(5, InheritedSocket::Kind::tcp, "127.0.0.1", 4740)});
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].text, "udp://[::]:4739");
    EXPECT_EQ(l[0].fds, (std::vector<int>{3, 4}));
    EXPECT_EQ(l[1].text, "tcp://127.0.0.1:4740");
    EXPECT_EQ(l[1].address.to_string(), "127.0.0.1");
}

TEST(ListenPlan, Refusals) {
    std::string why = refusal({"tcp://127.0.0.1:4739"}, {passed(3, InheritedSocket::Kind::tcp, "::", 4739)});
    EXPECT_NE(why.find("tcp://127.0.0.1:4739"), std::string::npos) << why;
    EXPECT_NE(why.find("tcp://[::]:4739"), std::string::npos) << why;
    // Another transport on the same port is no conflict.
    EXPECT_EQ(refusal({"tcp://127.0.0.1:4739"}, {passed(3, InheritedSocket::Kind::udp, "::", 4739)}), "");
    why = refusal({}, {passed(3, InheritedSocket::Kind::tcp, "::", 4739, false)});
    EXPECT_NE(why.find("Accept=no"), std::string::npos) << why;
    why = refusal({}, {passed(3, InheritedSocket::Kind::other, "::", 0)});
    EXPECT_NE(why.find("descriptor 3"), std::string::npos) << why;
}

// Nothing configured and nothing passed: IPFIX's port on loopback, both
// transports (the shipped collector.toml names no url).
TEST(ListenPlan, NothingConfiguredListensOnTheIpfixPortOnLoopback) {
    auto l = plan_listeners({}, {});
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].kind, CollectorUrl::Kind::udp);
    EXPECT_EQ(l[1].kind, CollectorUrl::Kind::tcp);
    for (const auto& x : l) {
        EXPECT_EQ(x.address.to_string(), "127.0.0.1");
        EXPECT_EQ(x.port, 4739);
        EXPECT_TRUE(x.fds.empty());
    }
}

TEST(SocketActivation, VariablesForAnotherProcessAreDroppedUnused) {
    ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    EXPECT_TRUE(take_inherited_sockets().empty());
    EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
    EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
    EXPECT_TRUE(take_inherited_sockets().empty());  // nothing set
}

TEST(SocketActivation, MalformedVariablesAreNamed) {
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "two", 1);
    try {
        take_inherited_sockets();
        FAIL() << "LISTEN_FDS=two accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("LISTEN_FDS"), std::string::npos) << e.what();
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
}
