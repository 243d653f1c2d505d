#pragma once

#include <functional>
#include <string>

#include "exporter_config.h"

namespace bpfix {

// Live mode: meters the selected interfaces with the eBPF datapath until
// SIGINT/SIGTERM, then ends every flow (forced end), detaches and prints a
// summary. SIGHUP reloads: `reread` returns the validated configuration
// read again from `config_path` (and the command line); see
// config_reload.h for what applies at once. Returns the exit code; throws
// bpfix::Error for start-up errors.
int run_live_export(const ExporterConfig& cfg, const std::function<ExporterConfig()>& reread,
                    const std::string& config_path);

}  // namespace bpfix
