#include "log.h"

#include <glib.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "error.h"

namespace bpfix {
namespace {

void glib_to_spdlog(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
    const char* d = domain ? domain : "glib";
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        spdlog::error("{}: {}", d, message);
    } else if (level & G_LOG_LEVEL_WARNING) {
        spdlog::warn("{}: {}", d, message);
    } else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) {
        spdlog::info("{}: {}", d, message);
    } else {
        spdlog::debug("{}: {}", d, message);
    }
}

}  // namespace

void init_logging(std::string_view program, std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    // from_str maps unknown names to "off"; only accept "off" when asked for.
    if (lvl == spdlog::level::off && level != "off") {
        throw Error("unknown log level '" + std::string(level) +
                    "': use trace, debug, info, warn, error, critical or off");
    }
    auto logger = spdlog::stderr_color_mt(std::string(program));
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %^%l%$: %v");
    spdlog::set_level(lvl);
    g_log_set_default_handler(glib_to_spdlog, nullptr);
}

}  // namespace bpfix
