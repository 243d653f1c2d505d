#pragma once

#include <string>
#include <vector>

#include "exporter_config.h"

namespace bpfix {

// What SIGHUP changes in a running live exporter: the difference between
// the configuration in effect and the one just read. Interfaces are
// re-selected (only the ones that changed are attached or detached), the
// collector gets a new transport session, [[live.filter]] rules switch in
// the kernel, flow timeouts and the log level apply to what is open now.
// Settings that size or load kernel programs (maps, sampling, enrichments,
// capture) or bind sockets (metrics) apply at the next start only.
struct ReloadPlan {
    bool interfaces = false;      // [live] interfaces, exclude
    bool collector = false;       // [export], [transport]
    bool filters = false;         // [[live.filter]]
    bool flows = false;           // [flows]
    bool drain_interval = false;  // [live] drain_interval
    bool log_level = false;       // [log] level
    // Keys that changed but keep their running value until a restart.
    std::vector<std::string> restart_only;

    bool changes_anything() const {
        return interfaces || collector || filters || flows || drain_interval || log_level;
    }
    // "interfaces, collector", for the log; "nothing" when empty.
    std::string summary() const;
};

// Compares two validated configurations. Throws bpfix::Error (the running
// configuration stays) when `next` cannot replace `running` at all: no
// live interfaces to meter.
ReloadPlan plan_reload(const ExporterConfig& running, const ExporterConfig& next);

// Copies what a reload applies from `next` into `running`; restart-only
// settings keep their running values.
void adopt_reloadable(ExporterConfig& running, const ExporterConfig& next);

}  // namespace bpfix
