#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <functional>

namespace bpfix {

// Tells when interfaces appear, disappear or change (rtnetlink RTMGRP_LINK
// on the io_context), so the exporter attaches to new VM taps at once
// instead of waiting for a poll.
class LinkMonitor {
public:
    // Throws bpfix::Error when the netlink socket cannot be opened.
    LinkMonitor(asio::io_context& io, std::function<void()> on_change);

private:
    void wait();

    asio::posix::stream_descriptor sock_;
    std::function<void()> on_change_;
    char buf_[16384];
};

}  // namespace bpfix
