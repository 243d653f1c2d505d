#!/usr/bin/env bash
# bpfix pcap benchmark: bpfix-exporter vs softflowd vs nfpcapd on one synthetic
# capture (>= 1M packets, >= 100k flows; generated once and cached).
#   bench/run.sh [BUILD_DIR] [bench.py options, e.g. --runs 5 --json out.json]
# Environment: BENCH_RUNS (3), BENCH_CPU (1, or "none"), BENCH_PACKETS (1000000),
# BENCH_FLOWS (100000), BENCH_WORK (/tmp/bpfix-bench, pcap cache), BENCH_REGEN=1.
# Without BUILD_DIR/bin/bpfix-exporter the bpfix rows are reported as missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(cd "$here/.." && pwd)/build}
shift $(( $# > 0 ? 1 : 0 ))

missing=()
for b in /usr/bin/python3 softflowd nfpcapd nfdump; do
  command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if ((${#missing[@]})); then
  echo "run.sh: missing ${missing[*]}; run scripts/install-deps as root" >&2
  exit 2
fi
exec /usr/bin/python3 "$here/bench.py" --build "$build" "$@"
