#include "collector_url.h"

#include <fmt/format.h>

#include <charconv>

#include "error.h"

namespace bpfix {

namespace {
constexpr const char* kForms = "use sctp://HOST:PORT, tcp://HOST:PORT, udp://HOST:PORT or file:PATH";

const char* scheme(CollectorUrl::Kind kind) {
    switch (kind) {
        case CollectorUrl::Kind::tcp: return "tcp";
        case CollectorUrl::Kind::udp: return "udp";
        case CollectorUrl::Kind::sctp: return "sctp";
        case CollectorUrl::Kind::file: return "file";
    }
    return "";
}

// The scheme at the start of `text` and the length of "SCHEME://"; false
// when there is none of ours.
bool split_scheme(const std::string& text, CollectorUrl::Kind& kind, size_t& skip) {
    for (auto k : {CollectorUrl::Kind::tcp, CollectorUrl::Kind::udp, CollectorUrl::Kind::sctp}) {
        std::string prefix = std::string(scheme(k)) + "://";
        if (text.rfind(prefix, 0) == 0) {
            kind = k;
            skip = prefix.size();
            return true;
        }
    }
    return false;
}
}

std::string CollectorUrl::str() const {
    switch (kind) {
        case Kind::file: return "file:" + path;
        case Kind::tcp:
        case Kind::udp:
        case Kind::sctp: {
            std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
            return fmt::format("{}://{}:{}", scheme(kind), h, port);
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
    size_t skip = 0;
    if (!split_scheme(text, url.kind, skip)) {
        throw Error(fmt::format("collector '{}' has an unknown scheme: {}", text, kForms));
    }
    parse_host_port(text, text.substr(skip), "collector", kForms, false, url);
    return url;
}

CollectorUrl parse_listen_url(const std::string& text) {
    constexpr const char* forms = "use udp://ADDR:PORT, tcp://ADDR:PORT or sctp://ADDR:PORT ([::] or 0.0.0.0 for "
                                  "every address, port 0 for any free one)";
    CollectorUrl url;
    size_t skip = 0;
    if (!split_scheme(text, url.kind, skip)) {
        throw Error(fmt::format("listen URL '{}' has an unknown scheme: {}", text, forms));
    }
    parse_host_port(text, text.substr(skip), "listen URL", forms, true, url);
    return url;
}

asio::ip::address resolve_address(const std::string& host) {
    if (host.empty() || host == "*") return asio::ip::address_v6::any();
    asio::error_code ec;
    auto a = asio::ip::make_address(host, ec);
    if (ec) {
        throw Error(fmt::format("listen address '{}' is not an IP address (use 0.0.0.0, [::] or a local "
                                "address)",
                                host));
    }
    return a;
}

}  // namespace bpfix
