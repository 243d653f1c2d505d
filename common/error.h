// One error model: fatal start-up and input errors are thrown as bpfix::Error
// at the edges (config, files, sockets) and caught in main, which prints them
// and exits non-zero. Per-packet problems never throw: they are counted.
#pragma once

#include <stdexcept>
#include <string>

namespace bpfix {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace bpfix
