#!/usr/bin/env bash
# Interop: nfcapd (nfdump 1.7) must store every flow bpfix exports over UDP,
# and nfdump must report the pcap's totals.
#
# Usage: nfdump_udp.sh BUILD_DIR
#
# Generates the interop pcap, starts nfcapd on UDP 127.0.0.1:47720, exports
# with BUILD_DIR/bin/bpfix-exporter to udp://127.0.0.1:47720, stops nfcapd
# (SIGTERM flushes its file) and checks `nfdump -R` with nfdump_check.py.
# INTEROP_EXPORTER=softflowd runs the harness against softflowd (lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$INTEROP_DIR/../../scripts/lib/nfcapd.sh"

(($# == 1)) || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
port=47720
need nfcapd nfdump ss timeout
interop_init
work= # set by make_tmpdir
make_tmpdir work

make_interop_pcap "$work/in.pcap" "$work/totals.json" "$work/records.jsonl"

nfcapd_start "$work/flows" "$port" || die "cannot start nfcapd"
track_pid "$NFCAPD_PID"
run_exporter "$build" "$work/in.pcap" "udp://127.0.0.1:$port" "$work/exporter.log"
nfcapd_stop "$port" || die "nfcapd did not stop cleanly: $(cat "$work/flows.log")"

check_exporter_summary "$work/exporter.log" "$work/totals.json"

args=(--nfcapd-log "$work/flows.log")
# softflowd's sequence numbers count bidirectional flows, not records.
if [[ ${INTEROP_EXPORTER:-bpfix} == softflowd ]]; then
  args+=(--allow-sequence-errors)
else
  args+=(--records "$work/records.jsonl")
fi
"$PY" "$INTEROP_DIR/nfdump_check.py" "$work/flows" "$work/totals.json" "${args[@]}" ||
  { [[ -n ${INTEROP_KEEP:-} ]] || echo "(rerun with INTEROP_KEEP=1 to keep $work)" >&2; exit 1; }
echo "PASS: nfcapd/nfdump received the UDP export"
