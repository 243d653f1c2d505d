// The systemd notification protocol against a real unix datagram socket
// standing in for the service manager: path and abstract addresses,
// watchdog pings at half of WATCHDOG_USEC, WATCHDOG_PID for another
// process, and the refusal of a NOTIFY_SOCKET that cannot be an address.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "error.h"
#include "service_notify.h"

using namespace bpfix;

namespace {

// The manager's end; `name` is a path or "@abstract".
class Manager {
public:
    explicit Manager(const std::string& name) : name_(name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, name.data(), name.size());
        if (name[0] == '@') sa.sun_path[0] = '\0';
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1));
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) ADD_FAILURE() << std::strerror(errno);
        ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
    }
    ~Manager() {
        ::close(fd_);
        if (name_[0] == '/') std::filesystem::remove(name_);
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
    }
    std::vector<std::string> received() {
        std::vector<std::string> out;
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) out.emplace_back(buf, static_cast<size_t>(n));
        return out;
    }

private:
    std::string name_;
    int fd_ = -1;
};

std::string temp_socket_path() {
    return (std::filesystem::temp_directory_path() / ("bpfix-notify-" + std::to_string(::getpid()))).string();
}

}  // namespace

TEST(ServiceNotify, SendsReadyStatusAndStoppingToAPathSocket) {
    Manager m(temp_socket_path());
    ServiceNotifier n;
    ASSERT_TRUE(n.enabled());
    EXPECT_EQ(n.watchdog_period().count(), 0);
    n.ready("listening on tcp://127.0.0.1:4739");
    n.status("3 sessions");
    n.stopping();
    auto got = m.received();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], "READY=1\nSTATUS=listening on tcp://127.0.0.1:4739");
    EXPECT_EQ(got[1], "STATUS=3 sessions");
    EXPECT_EQ(got[2], "STOPPING=1\nSTATUS=stopping");
}

TEST(ServiceNotify, ReachesAnAbstractSocketAndMarksReloads) {
    Manager m("@bpfix-notify-test-" + std::to_string(::getpid()));
    ServiceNotifier n;
    n.reloading();
    n.ready("");
    auto got = m.received();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << got[0];
    EXPECT_EQ(got[1], "READY=1");
}

TEST(ServiceNotify, PingsTheWatchdogAtHalfTheTimeoutFromTheLoop) {
    Manager m(temp_socket_path());
    ::setenv("WATCHDOG_USEC", "100000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    ServiceNotifier n;
    EXPECT_EQ(n.watchdog_period(), std::chrono::microseconds(50000));
    asio::io_context io;
    int calls = 0;
    n.start_watchdog(io, [&] { return "flows " + std::to_string(++calls); });
    io.run_for(std::chrono::milliseconds(230));
    auto got = m.received();
    // At 0, 50, 100, 150 and 200 ms; a loaded machine may lose the last.
    ASSERT_GE(got.size(), 4u);
    ASSERT_LE(got.size(), 5u);
    EXPECT_EQ(got[0], "WATCHDOG=1\nSTATUS=flows 1");
    EXPECT_EQ(got[3], "WATCHDOG=1\nSTATUS=flows 4");
    // No loop, no pings: that is the point of the watchdog.
    n.stop_watchdog();
    io.restart();
    io.run_for(std::chrono::milliseconds(120));
    EXPECT_TRUE(m.received().empty());
}

TEST(ServiceNotify, LeavesAWatchdogMeantForAnotherProcessAlone) {
    Manager m(temp_socket_path());
    ::setenv("WATCHDOG_USEC", "100000", 1);
    ::setenv("WATCHDOG_PID", "1", 1);
    ServiceNotifier n;
    EXPECT_EQ(n.watchdog_period().count(), 0);
    asio::io_context io;
    n.start_watchdog(io);
    io.run_for(std::chrono::milliseconds(60));
    EXPECT_TRUE(m.received().empty());
}

TEST(ServiceNotify, RefusesWhatCannotBeASocketAddress) {
    ::setenv("NOTIFY_SOCKET", "run/systemd/notify", 1);
    try {
        ServiceNotifier n;
        ADD_FAILURE() << "a relative NOTIFY_SOCKET was taken";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("NOTIFY_SOCKET 'run/systemd/notify'"), std::string::npos) << e.what();
    }
    ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);
    EXPECT_THROW(ServiceNotifier{}, Error);
    ::setenv("NOTIFY_SOCKET", "/run/notify", 1);
    ::setenv("WATCHDOG_USEC", "soon", 1);
    EXPECT_THROW(ServiceNotifier{}, Error);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ServiceNotifier off;  // started by hand: nothing to tell
    EXPECT_FALSE(off.enabled());
    off.ready("x");
}
