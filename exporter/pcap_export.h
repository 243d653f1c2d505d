#pragma once

#include "exporter_config.h"

namespace bpfix {

// Runs pcap mode: meters cfg.pcap_file and exports IPFIX to cfg.collector.
// Prints the summary line and returns the process exit code (0: everything
// exported; 1: some records could not be delivered). Throws bpfix::Error
// for start-up errors (unreadable file, bad collector).
int run_pcap_export(const ExporterConfig& cfg);

}  // namespace bpfix
