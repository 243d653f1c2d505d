// What start-up refuses beyond the configuration's own rules, checked
// against the host as it is now: --check-config runs the same checks (so
// systemd's ExecStartPre and ExecReload say what the start would say), and
// so does the start itself.
#pragma once

#include "exporter_config.h"

namespace bpfix {

// Throws bpfix::Error naming the problem and what to do: nothing to meter;
// an interface named exactly that does not exist (it may appear before the
// start: patterns wait for it); a pcap file that cannot be read; an sctp://
// collector on a kernel without SCTP; a file: collector in a directory that
// does not exist or cannot be written.
void check_startable(const ExporterConfig& cfg);

}  // namespace bpfix
