#include "sctp.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bpfix {

std::string sctp_unavailable() {
    // Opening the socket also makes the kernel load the module when it can.
    int fd = ::socket(AF_INET6, SOCK_STREAM, IPPROTO_SCTP);
    if (fd < 0 && errno == EAFNOSUPPORT) fd = ::socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (fd >= 0) {
        ::close(fd);
        return {};
    }
    int err = errno;
    if (err == EPROTONOSUPPORT || err == ESOCKTNOSUPPORT) {
        return fmt::format("this kernel has no SCTP ({}): load the sctp module (modprobe sctp; check that "
                           "/etc/modprobe.d does not blacklist it) or use tcp://",
                           std::strerror(err));
    }
    return fmt::format("cannot open an SCTP socket: {}", std::strerror(err));
}

}  // namespace bpfix
