#include "log.h"

#include <glib.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

#include "error.h"

namespace bpfix {
namespace {

// libfixbuf warns once per message about some conditions (a sequence gap
// in every message while an exporter's datagrams are being lost, which the
// collector counts anyway): at most kPerSecond messages a second reach the
// log, then a note of how many were left out.
bool glib_message_logged() {
    constexpr uint64_t kPerSecond = 10;
    static std::mutex mu;
    static int64_t second = 0;
    static uint64_t in_second = 0, left_out = 0;
    std::lock_guard lock(mu);
    int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now != second) {
        if (left_out)
            spdlog::warn("glib: {} more messages left out of the log (at most {} a second)", left_out, kPerSecond);
        second = now;
        in_second = left_out = 0;
    }
    if (++in_second <= kPerSecond) return true;
    ++left_out;
    return false;
}

void glib_to_spdlog(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
    const char* d = domain ? domain : "glib";
    if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) && !spdlog::should_log(spdlog::level::debug) &&
        !glib_message_logged()) {
        return;
    }
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

void check_log_level(std::string_view level) {
    // from_str maps unknown names to "off"; only accept "off" when asked for.
    if (spdlog::level::from_str(std::string(level)) == spdlog::level::off && level != "off") {
        throw Error("unknown log level '" + std::string(level) +
                    "': use trace, debug, info, warn, error, critical or off");
    }
}

void set_log_level(std::string_view level) {
    check_log_level(level);
    spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

void init_logging(std::string_view program, std::string_view level) {
    check_log_level(level);  // before anything changes
    auto logger = spdlog::stderr_color_mt(std::string(program));
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %^%l%$: %v");
    set_log_level(level);
    g_log_set_default_handler(glib_to_spdlog, nullptr);
}

}  // namespace bpfix
