#pragma once

#include "exporter_config.h"

namespace bpfix {

// Live mode: meters the selected interfaces with the eBPF datapath until
// SIGINT/SIGTERM, then ends every flow (forced end), detaches and prints a
// summary. Returns the exit code; throws bpfix::Error for start-up errors.
int run_live_export(const ExporterConfig& cfg);

}  // namespace bpfix
