// systemd's service notification protocol (sd_notify(3), Type=notify):
// "KEY=VALUE" lines sent as one datagram to the unix socket named by
// $NOTIFY_SOCKET. Both daemons say READY=1 once they serve, STATUS= as
// they run, STOPPING=1 on a signal, RELOADING=1 around a reload, and ping
// WATCHDOG=1 from their event loop when the unit sets WatchdogSec (so a
// hung loop stops the pings and systemd restarts the service). Without
// $NOTIFY_SOCKET (started by hand) every call does nothing.
#pragma once

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bpfix {

class ServiceNotifier {
public:
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. A socket path
    // that cannot be used is an error (a unit mistake worth stopping for).
    ServiceNotifier();
    ~ServiceNotifier();
    ServiceNotifier(const ServiceNotifier&) = delete;
    ServiceNotifier& operator=(const ServiceNotifier&) = delete;

    bool enabled() const { return fd_ >= 0; }
    // Sends `state` as is ("READY=1\nSTATUS=..."). Failures are logged once
    // (the service keeps running; systemd will time it out if it mattered).
    void notify(std::string_view state);
    void ready(std::string_view status);
    void status(std::string_view status);
    void stopping();
    // RELOADING=1 with MONOTONIC_USEC (systemd 253 checks it; 252 ignores
    // it), then ready() when the new configuration is in force.
    void reloading();

    // Half of WATCHDOG_USEC, or zero when the unit has no watchdog (or it
    // is meant for another process, WATCHDOG_PID).
    std::chrono::microseconds watchdog_period() const { return watchdog_period_; }
    // Pings WATCHDOG=1 every period from `io`: the loop that must stay
    // alive. `status` (may be empty) gives a STATUS= line sent with each
    // ping. Cancelled by stop_watchdog() or the destructor.
    void start_watchdog(asio::io_context& io, std::function<std::string()> status = {});
    void stop_watchdog();

private:
    void ping();

    int fd_ = -1;
    std::string socket_;
    std::chrono::microseconds watchdog_period_{0};
    std::unique_ptr<asio::steady_timer> timer_;
    std::function<std::string()> status_;
    bool warned_ = false;
};

// The signals systemd (and an admin) send both daemons: SIGINT and SIGTERM
// stop, SIGHUP reloads. Taken from construction on: one that arrives
// before serve() is queued, not the default action (which would kill the
// process with its tc filters or open files in place).
class DaemonSignals {
public:
    explicit DaemonSignals(asio::io_context& io) : set_(io, SIGINT, SIGTERM, SIGHUP) {}
    // From `io`'s loop: `reload` on every SIGHUP, `stop(signal)` on the
    // first SIGINT or SIGTERM (after it no more are served).
    void serve(std::function<void()> reload, std::function<void(int)> stop);

private:
    void wait();

    asio::signal_set set_;
    std::function<void()> reload_;
    std::function<void(int)> stop_;
};

// A reload's warning for keys that changed but apply at the next start
// (`daemon`: "exporter", "collector"); their running values stay.
void warn_restart_only(const std::vector<std::string>& keys, std::string_view daemon);

}  // namespace bpfix
