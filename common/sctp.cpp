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

bool sctp_pr_supported(int fd) {
    sctp_assoc_value v{};
    socklen_t len = sizeof v;
    return getsockopt(fd, IPPROTO_SCTP, SCTP_PR_SUPPORTED, &v, &len) == 0 && v.assoc_value != 0;
}

bool sctp_set_lifetime(int fd, uint32_t lifetime_ms) {
    sctp_default_prinfo p{};
    p.pr_policy = lifetime_ms ? SCTP_PR_SCTP_TTL : SCTP_PR_SCTP_NONE;
    p.pr_value = lifetime_ms;
    return setsockopt(fd, IPPROTO_SCTP, SCTP_DEFAULT_PRINFO, &p, sizeof p) == 0;
}

int64_t sctp_abandoned(int fd) {
    sctp_prstatus st{};
    st.sprstat_policy = SCTP_PR_SCTP_TTL;
    socklen_t len = sizeof st;
    if (getsockopt(fd, IPPROTO_SCTP, SCTP_PR_ASSOC_STATUS, &st, &len) != 0) return -1;
    return static_cast<int64_t>(st.sprstat_abandoned_unsent + st.sprstat_abandoned_sent);
}

}  // namespace bpfix
