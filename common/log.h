#pragma once

#include <string_view>

namespace bpfix {

// Sets up spdlog on stderr at the given level ("trace".."critical", "off")
// and routes glib's (libfixbuf's) log output into it. Throws bpfix::Error on
// an unknown level name.
void init_logging(std::string_view program, std::string_view level);
// Throws bpfix::Error on an unknown level name.
void check_log_level(std::string_view level);
// Changes the level (a reload); throws bpfix::Error on an unknown name.
void set_log_level(std::string_view level);

}  // namespace bpfix
