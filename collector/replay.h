// `bpfix-collector replay`: the flow records stored in the ipfix format
// (DIR/flows-TIME.ipfix), re-sent as IPFIX to another collector: every
// file's templates first, then the messages exported within the time
// range, as they were received (observation domains and records as sent;
// sequence numbers counted anew per domain), at the original pace scaled
// by a factor, or as fast as the transport takes them.
#pragma once

#include <cstdint>
#include <string>

namespace bpfix {

struct ReplayOptions {
    std::string data_dir;
    int64_t from_ns = 0, to_ns = 0;  // [from, to), by each message's export time
    std::string url;                 // tcp://, sctp:// or udp://HOST:PORT
    double speed = 0;                // > 0: original pace x speed; 0: as fast as possible
    uint32_t pen = 0;                // for decoding our enterprise elements
    uint32_t mtu = 0;                // UDP: 0 is the route's MTU
};

// Returns the exit code (0: everything sent; 1: messages left unsent).
// Throws bpfix::Error (QueryError for bad parameters) naming the problem.
int run_replay(const ReplayOptions& opt);

}  // namespace bpfix
