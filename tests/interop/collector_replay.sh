#!/usr/bin/env bash
# Interop: `bpfix-collector replay` re-sends stored flow records, complete,
# to another collector: ours over TCP and nfcapd (nfdump 1.7) over UDP.
#
# Usage: collector_replay.sh BUILD_DIR
#
# The interop pcap goes through bpfix-exporter --pcap over TCP into
# bpfix-collector A (127.0.0.1:47750, formats jsonl and ipfix), which is then
# stopped. `replay` sends A's ipfix files (the time range of the export) to
# bpfix-collector B over TCP (47751, jsonl) and to nfcapd over UDP (47752,
# at --speed 50). B's records must equal A's, field by field (all but the
# renumbered templateId); nfdump must report the pcap's totals and every
# uniflow (nfdump_check.py, as for a direct export); neither receiver may
# count a lost record or a sequence error. A replay with an empty range or
# a dead collector exits non-zero with a reason.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$INTEROP_DIR/../../scripts/lib/nfcapd.sh"

(($# == 1)) || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
coll=$build/bin/bpfix-collector
need nfcapd nfdump ss timeout
interop_init
work= # set by make_tmpdir
make_tmpdir work
make_interop_pcap "$work/in.pcap" "$work/totals.json" "$work/records.jsonl"

start_collector() { # NAME URL PORT FORMATS
  "$coll" --listen "$2" --output-dir "$work/$1" --format "$4" --metrics off 2>"$work/$1.log" &
  track_pid $!
  eval "pid_$1=$!"
  if [[ $2 == tcp://* ]]; then
    wait_until 10 tcp_listening "$3" || die "collector $1 did not listen: $(cat "$work/$1.log")"
  else
    wait_until 10 udp_bound "$3" || die "collector $1 did not bind: $(cat "$work/$1.log")"
  fi
}
stop_collector() { # NAME
  local pid_var=pid_$1
  kill -TERM "${!pid_var}"
  wait "${!pid_var}" || die "collector $1 exited $?: $(tail -5 "$work/$1.log")"
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

mkdir -p "$work/a" "$work/b"
start_collector a tcp://127.0.0.1:47750 47750 jsonl,ipfix
t0=$(date +%s)
run_exporter "$build" "$work/in.pcap" tcp://127.0.0.1:47750 "$work/exporter.log"
t1=$(($(date +%s) + 1))
stop_collector a
from=$(iso $((t0 - 1))) to=$(iso "$t1")

start_collector b tcp://127.0.0.1:47751 47751 jsonl
"$coll" replay --data-dir "$work/a" --from "$from" --to "$to" --to-collector tcp://127.0.0.1:47751 \
  2>"$work/replay-b.log" || die "replay to collector B failed: $(cat "$work/replay-b.log")"
stop_collector b

nfcapd_start "$work/flows" 47752 || die "cannot start nfcapd"
track_pid "$NFCAPD_PID"
"$coll" replay --data-dir "$work/a" --from "$from" --to "$to" --to-collector udp://127.0.0.1:47752 --speed 50 \
  2>"$work/replay-n.log" || die "replay to nfcapd failed: $(cat "$work/replay-n.log")"
nfcapd_stop 47752 || die "nfcapd did not stop cleanly: $(cat "$work/flows.log")"

"$PY" - "$work" <<'PYEOF' || exit 1
import glob, json, re, sys
work = sys.argv[1]
def records(d):
    out = []
    for path in sorted(glob.glob(f"{work}/{d}/flows-*.jsonl")):
        for line in open(path):
            r = json.loads(line)
            r.pop("templateId", None)
            out.append(json.dumps(r, sort_keys=True))
    return sorted(out)
a, b = records("a"), records("b")
flows = sum(1 for r in a if "packetDeltaCount" in r)
fail = []
if not a or flows < 60:
    fail.append(f"collector A stored {len(a)} records ({flows} flows)")
if a != b:
    fail.append(f"collector B: {len(b)} records, A {len(a)}; first difference: "
                f"{next((x, y) for x, y in zip(a + [''], b + ['']) if x != y)}")
for name in ("b",):
    log = open(f"{work}/{name}.log").read()
    m = re.search(r"bpfix-collector: summary: (.*)", log)
    got = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
    bad = {k: got.get(k) for k in ("lost_in_transit", "unknown_template_sets", "out_of_order", "malformed")
           if got.get(k) != "0"}
    if not m or bad:
        fail.append(f"collector {name}: {bad if m else log[-300:]}")
for f in fail:
    print("FAIL " + f)
if not fail:
    print(f"replay: collector B holds A's {len(a)} records ({flows} flows)")
sys.exit(1 if fail else 0)
PYEOF

"$PY" "$INTEROP_DIR/nfdump_check.py" "$work/flows" "$work/totals.json" --nfcapd-log "$work/flows.log" \
  --records "$work/records.jsonl" || die "nfcapd's records after the replay differ from the pcap's"

# Bad requests: a clear reason, a non-zero exit.
out=$("$coll" replay --data-dir "$work/a" --from "$to" --to "$from" --to-collector udp://127.0.0.1:47752 2>&1) &&
  die "replay of an empty range exited 0"
grep -q "empty time range" <<<"$out" || die "empty range: $out"
out=$(timeout 60 "$coll" replay --data-dir "$work/a" --from "$from" --to "$to" \
  --to-collector tcp://127.0.0.1:47753 2>&1) && die "replay to a dead collector exited 0"
grep -q "Connection refused" <<<"$out" && grep -q "could not be delivered" <<<"$out" ||
  die "dead collector: $out"
echo "PASS: replayed records reached bpfix-collector (TCP) and nfcapd (UDP) complete"
