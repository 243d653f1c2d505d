#include "collector_url.h"

#include <fmt/format.h>

#include <charconv>

#include "error.h"

namespace bpfix {

namespace {
constexpr const char* kForms = "use tcp://HOST:PORT, udp://HOST:PORT or file:PATH";
}

std::string CollectorUrl::str() const {
    switch (kind) {
        case Kind::file: return "file:" + path;
        case Kind::tcp:
        case Kind::udp: {
            std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
            return fmt::format("{}://{}:{}", kind == Kind::tcp ? "tcp" : "udp", h, port);
        }
    }
    return {};
}

namespace {

// HOST:PORT or [V6ADDR]:PORT after the scheme, for `what` ("collector" or
// "listen URL"); port 0 only when `allow_any_port`.
void parse_host_port(const std::string& text, const std::string& rest, const char* what, const char* forms,
                     bool allow_any_port, CollectorUrl& url) {
    std::string port;
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
            throw Error(fmt::format("{} '{}': write an IPv6 address as [ADDR]:PORT", what, text));
        }
        url.host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        if (colon == std::string::npos) {
            throw Error(fmt::format("{} '{}' has no port: {}", what, text, forms));
        }
        url.host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (url.host.find(':') != std::string::npos) {
            throw Error(fmt::format("{} '{}': write an IPv6 address as [ADDR]:PORT", what, text));
        }
    }
    if (url.host.empty()) {
        throw Error(fmt::format("{} '{}' has no host: {}", what, text, forms));
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    unsigned lowest = allow_any_port ? 0 : 1;
    if (ec != std::errc() || ptr != port.data() + port.size() || value < lowest || value > 65535) {
        throw Error(fmt::format("{} '{}': port '{}' is not a number from {} to 65535", what, text, port, lowest));
    }
    url.port = static_cast<uint16_t>(value);
}

}  // namespace

CollectorUrl parse_collector_url(const std::string& text) {
    CollectorUrl url;
    if (text.rfind("file:", 0) == 0) {
        url.kind = CollectorUrl::Kind::file;
        url.path = text.substr(5);
        if (url.path.rfind("//", 0) == 0) {
            url.path = url.path.substr(2);
        }
        if (url.path.empty()) {
            throw Error(fmt::format("collector '{}' has no file path: {}", text, kForms));
        }
        return url;
    }
    std::string rest;
    if (text.rfind("tcp://", 0) == 0) {
        url.kind = CollectorUrl::Kind::tcp;
        rest = text.substr(6);
    } else if (text.rfind("udp://", 0) == 0) {
        url.kind = CollectorUrl::Kind::udp;
        rest = text.substr(6);
    } else if (text.rfind("sctp://", 0) == 0) {
        throw Error(fmt::format("collector '{}': SCTP export is not available yet; {}", text, kForms));
    } else {
        throw Error(fmt::format("collector '{}' has an unknown scheme: {}", text, kForms));
    }
    parse_host_port(text, rest, "collector", kForms, false, url);
    return url;
}

CollectorUrl parse_listen_url(const std::string& text) {
    constexpr const char* forms = "use udp://ADDR:PORT or tcp://ADDR:PORT ([::] or 0.0.0.0 for every address, port 0 "
                                  "for any free one)";
    CollectorUrl url;
    std::string rest;
    if (text.rfind("tcp://", 0) == 0) {
        url.kind = CollectorUrl::Kind::tcp;
    } else if (text.rfind("udp://", 0) == 0) {
        url.kind = CollectorUrl::Kind::udp;
    } else if (text.rfind("sctp://", 0) == 0) {
        throw Error(fmt::format("listen URL '{}': SCTP is not available yet; {}", text, forms));
    } else {
        throw Error(fmt::format("listen URL '{}' has an unknown scheme: {}", text, forms));
    }
    parse_host_port(text, text.substr(6), "listen URL", forms, true, url);
    return url;
}

}  // namespace bpfix
