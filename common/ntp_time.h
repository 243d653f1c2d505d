// IPFIX dateTimeMicroseconds and dateTimeNanoseconds are NTP timestamps
// (RFC 7011 section 6.1.9): seconds since 1900 in the high 32 bits, a
// binary fraction of a second in the low 32.
#pragma once

#include <cstdint>

namespace bpfix {

inline constexpr uint64_t kNtpUnixOffset = 2208988800ULL;  // seconds from 1900 to 1970

// UNIX time in ns to NTP, the fraction rounded up so that converting back
// (a floor) gives the same ns.
inline uint64_t ntp_time_ns(uint64_t unix_ns) {
    uint64_t secs = unix_ns / 1'000'000'000ULL + kNtpUnixOffset;
    uint64_t ns = unix_ns % 1'000'000'000ULL;
    uint64_t frac = ((ns << 32) + 999'999'999ULL) / 1'000'000'000ULL;
    return secs << 32 | frac;
}

inline uint64_t unix_ns_from_ntp(uint64_t ntp) {
    uint64_t secs = (ntp >> 32) - kNtpUnixOffset;
    uint64_t ns = ((ntp & 0xffffffffULL) * 1'000'000'000ULL) >> 32;
    return secs * 1'000'000'000ULL + ns;
}

}  // namespace bpfix
