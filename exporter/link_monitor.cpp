#include "link_monitor.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace bpfix {

namespace {

int open_netlink() {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) {
        throw Error(std::string("cannot open a netlink socket to follow interfaces: ") + std::strerror(errno));
    }
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = RTMGRP_LINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        close(fd);
        throw Error(std::string("cannot subscribe to interface changes (netlink): ") + std::strerror(err));
    }
    return fd;
}

}  // namespace

LinkMonitor::LinkMonitor(asio::io_context& io, std::function<void()> on_change)
    : sock_(io, open_netlink()), on_change_(std::move(on_change)) {
    wait();
}

void LinkMonitor::wait() {
    sock_.async_read_some(asio::buffer(buf_), [this](const asio::error_code& ec, size_t) {
        if (ec == asio::error::operation_aborted) return;
        // The message says which link changed; re-listing all of them is
        // simpler and catches renames and lost messages (ENOBUFS) alike.
        on_change_();
        wait();
    });
}

}  // namespace bpfix
