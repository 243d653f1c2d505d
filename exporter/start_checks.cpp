#include "start_checks.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "collector_url.h"
#include "error.h"
#include "interface_selector.h"
#include "sctp.h"

namespace bpfix {

void check_startable(const ExporterConfig& cfg) {
    if (cfg.interfaces.empty() && cfg.pcap_file.empty()) {
        throw Error("nothing to meter: give --interface NAME (live) or --pcap FILE, or set [live] interfaces "
                    "or [pcap] file in the config");
    }
    if (!cfg.interfaces.empty()) {
        InterfaceSelector(cfg.interfaces, cfg.exclude).require_exact_names();
    } else if (::access(cfg.pcap_file.c_str(), R_OK) != 0) {
        throw Error(fmt::format("cannot read the capture {}: {}", cfg.pcap_file, std::strerror(errno)));
    }
    const CollectorUrl url = parse_collector_url(cfg.collector);
    if (url.kind == CollectorUrl::Kind::sctp) {
        if (std::string why = sctp_unavailable(); !why.empty()) {
            throw Error(fmt::format("collector {}: {}", url.str(), why));
        }
    }
    if (url.kind == CollectorUrl::Kind::file) {
        const size_t slash = url.path.rfind('/');
        const std::string dir = slash == std::string::npos ? std::string(".")
                                : slash == 0                ? std::string("/")
                                                            : url.path.substr(0, slash);
        if (::access(dir.c_str(), W_OK | X_OK) != 0) {
            throw Error(fmt::format("collector {}: cannot write in the directory {}: {}; create it or name another",
                                    url.str(), dir, std::strerror(errno)));
        }
    }
}

}  // namespace bpfix
