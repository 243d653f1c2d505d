#!/usr/bin/env bash
# bpfix live-mode benchmark (root): received packet rate on a flooded veth with
# nothing attached, with bpfix-exporter live, softflowd, pmacctd + nfprobe and
# tcpdump; monitoring rate, CPU and peak RSS of each tool. ~5 minutes.
#   bench/live/run.sh [BUILD_DIR] [live_bench.py options, e.g. --runs 5 --json out.json]
# Environment: LIVE_RUNS (3), LIVE_SECONDS (8, per flood), LIVE_FLOWS (100),
# LIVE_PAYLOAD (18: 60-byte frames), LIVE_TX_CPU (0), LIVE_TOOL_CPU (1), LIVE_SINK (drop:
# the destination socket is never read, every packet a kernel drop; read: a
# receiver on the tool CPU keeps up),
# LIVE_TOOLS (baseline,tcfloor,bpfix,softflowd,pmacctd,tcpdump; tcfloor: clsact
# with a count-only BPF program, the floor of any TC meter; also tcxfloor: the
# same program through a TCX link, as bpfix attaches on 6.6+; dropfloor: a
# kfree_skb tracer that only counts, the floor of any drop tracer), LIVE_KEEP=1 keeps logs,
# LIVE_DIAGNOSE (1: after the rounds, one flood per configuration under perf on
# the sender CPU, and bpfix's BPF run-time statistics; 0: skip; ~70 s).
# Makes two network namespaces (bpfixlive<PID>tx/rx) and removes them on exit,
# failure or signal. Needs: cc, iproute2, python3, softflowd, pmacct, tcpdump,
# bpftool, linux-perf (optional: sender-CPU profile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(cd "$here/../.." && pwd)/build}
shift $(( $# > 0 ? 1 : 0 ))
[[ -d $build ]] && build=$(cd "$build" && pwd)

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: needs root (network namespaces, eBPF)" >&2
  exit 2
fi
missing=()
for b in cc ip tc bpftool /usr/bin/python3 softflowd softflowctl pmacctd tcpdump; do
  command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if ((${#missing[@]})); then
  echo "run.sh: missing ${missing[*]}; as root:" >&2
  echo "  apt-get install --no-install-recommends build-essential iproute2 bpftool python3 softflowd pmacct tcpdump" >&2
  exit 2
fi

tag=bpfixlive$$
helpers=$(mktemp -d /tmp/bpfix-live-bin.XXXXXX)
child=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  # the Python side removes its namespaces itself; this is the backstop
  # (e.g. after it was killed with SIGKILL)
  for ns in "${tag}tx" "${tag}rx"; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  if [[ ${LIVE_KEEP:-0} == 1 ]]; then echo "run.sh: kept $helpers" >&2; else rm -rf "$helpers"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

cc -O2 -Wall -o "$helpers/flood" "$here/flood.c"
cc -O2 -Wall -o "$helpers/reap_run" "$here/reap_run.c"
cc -O2 -Wall -o "$helpers/floor_run" "$here/floor_run.c" -lbpf
floor=()
if [[ -f $build/bpf/tc_floor.bpf.o ]]; then
  floor=(--floor-obj "$build/bpf/tc_floor.bpf.o")
else
  echo "run.sh: no $build/bpf/tc_floor.bpf.o (build first); no TC floor row" >&2
fi
[[ -f $build/bpf/drop_floor.bpf.o ]] && floor+=(--drop-floor-obj "$build/bpf/drop_floor.bpf.o")

args=(--build "$build" --helpers "$helpers" --work-parent "$helpers" --tag "$tag"
      --runs "${LIVE_RUNS:-3}" --seconds "${LIVE_SECONDS:-8}" --flows "${LIVE_FLOWS:-100}"
      --payload "${LIVE_PAYLOAD:-18}" --sink "${LIVE_SINK:-drop}" --tx-cpu "${LIVE_TX_CPU:-0}" --tool-cpu "${LIVE_TOOL_CPU:-1}"
      --tools "${LIVE_TOOLS:-baseline,tcfloor,bpfix,softflowd,pmacctd,tcpdump}" "${floor[@]}")
[[ ${LIVE_KEEP:-0} == 1 ]] && args+=(--keep)
if [[ ${LIVE_DIAGNOSE:-1} == 1 ]]; then
  if command -v perf >/dev/null 2>&1; then args+=(--diagnose)
  else echo "run.sh: no perf (apt-get install linux-perf): no sender-CPU profile" >&2; fi
fi
# in the background so that a signal to this script is handled at once
/usr/bin/python3 "$here/live_bench.py" "${args[@]}" "$@" &
child=$!
wait "$child"
