#include "service_notify.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "error.h"

namespace bpfix {

namespace {

// The address NOTIFY_SOCKET names: a path, or '@' for Linux's abstract
// namespace (what systemd itself uses).
socklen_t notify_address(const std::string& name, sockaddr_un& sa) {
    sa = {};
    sa.sun_family = AF_UNIX;
    if (name.size() >= sizeof(sa.sun_path)) {
        throw Error(fmt::format("NOTIFY_SOCKET '{}' is longer than a unix socket path may be ({} bytes)", name,
                                sizeof(sa.sun_path) - 1));
    }
    std::memcpy(sa.sun_path, name.data(), name.size());
    if (name[0] == '@') sa.sun_path[0] = '\0';
    // A path counts its terminating NUL; an abstract name is exactly its bytes.
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1));
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    if (!sock || !*sock) return;
    socket_ = sock;
    if (socket_[0] != '/' && socket_[0] != '@') {
        throw Error(fmt::format("NOTIFY_SOCKET '{}' is neither an absolute path nor an abstract name (@NAME); "
                                "unset it, or start the daemon from its systemd unit",
                                socket_));
    }
    sockaddr_un sa;
    notify_address(socket_, sa);  // checks the length once, at start
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw Error(fmt::format("notify socket: {}", std::strerror(errno)));
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    bool ours = !pid || !*pid || std::strtoll(pid, nullptr, 10) == ::getpid();
    if (usec && *usec && ours) {
        char* end = nullptr;
        long long us = std::strtoll(usec, &end, 10);
        if (*end || us <= 0) {
            throw Error(fmt::format("WATCHDOG_USEC '{}' is not a positive number of microseconds", usec));
        }
        watchdog_period_ = std::chrono::microseconds(us / 2);
    }
}

ServiceNotifier::~ServiceNotifier() {
    stop_watchdog();
    if (fd_ >= 0) ::close(fd_);
}

void ServiceNotifier::notify(std::string_view state) {
    if (fd_ < 0) return;
    sockaddr_un sa;
    socklen_t len = notify_address(socket_, sa);
    if (::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len) < 0) {
        if (!warned_) {
            warned_ = true;
            spdlog::warn("systemd notification to {} failed: {} (readiness and watchdog pings are not seen)",
                         socket_, std::strerror(errno));
        }
        return;
    }
    warned_ = false;
}

void ServiceNotifier::ready(std::string_view status) {
    notify(status.empty() ? std::string("READY=1") : fmt::format("READY=1\nSTATUS={}", status));
}

void ServiceNotifier::status(std::string_view status) { notify(fmt::format("STATUS={}", status)); }

void ServiceNotifier::stopping() { notify("STOPPING=1\nSTATUS=stopping"); }

void ServiceNotifier::reloading() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t us = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
    notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration", us));
}

void ServiceNotifier::start_watchdog(asio::io_context& io, std::function<std::string()> status) {
    if (fd_ < 0 || watchdog_period_.count() == 0) return;
    status_ = std::move(status);
    timer_ = std::make_unique<asio::steady_timer>(io);
    ping();
}

void ServiceNotifier::stop_watchdog() {
    if (timer_) timer_->cancel();
    timer_.reset();
}

void ServiceNotifier::ping() {
    std::string msg = "WATCHDOG=1";
    if (status_) {
        std::string s = status_();
        if (!s.empty()) msg += "\nSTATUS=" + s;
    }
    notify(msg);
    timer_->expires_after(watchdog_period_);
    timer_->async_wait([this](const asio::error_code& ec) {
        if (!ec && timer_) ping();
    });
}

void DaemonSignals::serve(std::function<void()> reload, std::function<void(int)> stop) {
    reload_ = std::move(reload);
    stop_ = std::move(stop);
    wait();
}

void DaemonSignals::wait() {
    set_.async_wait([this](const asio::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            reload_();
            wait();
            return;
        }
        stop_(sig);
    });
}

void warn_restart_only(const std::vector<std::string>& keys, std::string_view daemon) {
    for (const auto& key : keys) {
        spdlog::warn("reload: {} changed; it applies at the next start (restart the {}), the running value stays",
                     key, daemon);
    }
}

}  // namespace bpfix
