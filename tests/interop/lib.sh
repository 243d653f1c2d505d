# shellcheck shell=bash
# Shared helpers for the interop tests (sourced, not executed).
#
# The tests run bpfix-exporter from BUILD_DIR/bin. To check the harness itself
# against a reference exporter, set INTEROP_EXPORTER=softflowd: softflowd
# (`-r FILE -v 10`) is then the exporter. Its flow rules differ from
# docs/flow-semantics.md (bidirectional tracking, its own timeouts), so only the
# transport/decoding machinery is meaningfully checked that way; the generated
# pcap (without its VLAN-tagged flows) gives the same totals with both.

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's python, which has python3-scapy

# Everything a test starts or creates is registered here and undone on exit.
_cleanup_pids=()
_cleanup_dirs=()

interop_cleanup() {
  local pid
  for pid in "${_cleanup_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  local d
  for d in "${_cleanup_dirs[@]}"; do
    if [[ -n ${INTEROP_KEEP:-} ]]; then
      echo "interop: kept $d" >&2
    else
      rm -rf -- "$d"
    fi
  done
}

# Installs the exit trap; call once at the top of a test.
interop_init() {
  trap interop_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

track_pid() { _cleanup_pids+=("$1"); }

# make_tmpdir VAR: creates a temp dir removed on exit (kept if INTEROP_KEEP=1).
make_tmpdir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/bpfix-interop.XXXXXX")
  _cleanup_dirs+=("$d")
  printf -v "$1" '%s' "$d"
}

die() {
  echo "FAIL: $*" >&2
  exit 1
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/install-deps)"
  done
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s; fails after SECONDS.
wait_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# udp_bound PORT: true when something listens on UDP 127.0.0.1:PORT.
udp_bound() { ss -Hunl "sport = :$1" | grep -q .; }
tcp_listening() { ss -Htnl "sport = :$1" | grep -q .; }

# udp_recvq_empty PORT: true when the UDP socket on PORT has nothing unread.
udp_recvq_empty() { [[ $(ss -Hunl "sport = :$1" | awk '{s += $2} END {print s + 0}') == 0 ]]; }

# --- loopback capture with dumpcap ----------------------------------------
# capture_start FILE FILTER PROBE_PORT: starts dumpcap on lo with
# "(FILTER) or udp port PROBE_PORT" and returns once a probe datagram sent to
# PROBE_PORT shows up in FILE, i.e. the capture is really running.
CAPTURE_PID=
CAPTURE_FILE=
CAPTURE_PROBE=
capture_start() {
  CAPTURE_FILE=$1
  CAPTURE_PROBE=$3
  dumpcap -q -i lo -f "($2) or udp port $CAPTURE_PROBE" -w "$CAPTURE_FILE" 2>"$CAPTURE_FILE.log" &
  CAPTURE_PID=$!
  track_pid "$CAPTURE_PID"
  _capture_probe_until_seen start || die "capture did not start: $(cat "$CAPTURE_FILE.log")"
}

_probe_count() {
  tshark -r "$CAPTURE_FILE" -Y "udp.dstport == $CAPTURE_PROBE && frame contains \"$1\"" 2>/dev/null | wc -l
}

_capture_probe_until_seen() {
  local tag="bpfix-probe-$1"
  for _ in $(seq 1 100); do
    kill -0 "$CAPTURE_PID" 2>/dev/null || return 1
    echo "$tag" >"/dev/udp/127.0.0.1/$CAPTURE_PROBE" 2>/dev/null || true
    sleep 0.1
    [[ -s $CAPTURE_FILE ]] && (($(_probe_count "$tag") > 0)) && return 0
  done
  return 1
}

# capture_stop: sends an end probe and waits until it is in the file (so every
# packet sent before it is there too: loopback keeps the order), stops dumpcap
# and fails if the kernel or dumpcap dropped anything.
capture_stop() {
  _capture_probe_until_seen end || die "end probe never reached the capture: $(cat "$CAPTURE_FILE.log")"
  kill -INT "$CAPTURE_PID"
  wait "$CAPTURE_PID" || die "dumpcap failed: $(cat "$CAPTURE_FILE.log")"
  local drops
  drops=$(sed -n 's#.*received/dropped on interface.*: [0-9]*/\([0-9]*\) .*#\1#p' "$CAPTURE_FILE.log")
  [[ ${drops:-0} == 0 ]] || die "capture dropped $drops packets: $(cat "$CAPTURE_FILE.log")"
}

# make_interop_pcap OUT.pcap TOTALS.json RECORDS.jsonl: writes the interop
# pcap and what bpfix should export for it (pcap_totals.py).
make_interop_pcap() {
  local opts=()
  # softflowd does not parse QinQ frames: leave the VLAN-tagged flows out.
  [[ ${INTEROP_EXPORTER:-bpfix} == softflowd ]] && opts+=(--no-vlans)
  "$PY" "$INTEROP_DIR/make_pcap.py" "$1" "${opts[@]}" 2>/dev/null
  "$PY" "$INTEROP_DIR/pcap_totals.py" "$1" --records "$3" >"$2"
}

# --- exporter ---------------------------------------------------------------
# run_exporter BUILD_DIR PCAP URL LOG: exports PCAP to URL with bpfix (or
# softflowd, see above); stderr goes to LOG. Fails on a non-zero exit.
run_exporter() {
  local build=$1 pcap=$2 url=$3 log=$4
  if [[ ${INTEROP_EXPORTER:-bpfix} == softflowd ]]; then
    local proto=${url%%://*} hostport=${url#*://} sfdir
    [[ $proto == udp || $proto == tcp ]] || die "softflowd cannot export to $url"
    sfdir=$(dirname "$log")
    # -c none: with a control socket softflowd 1.1.0 can block in accept()
    # instead of exiting at the end of the pcap.
    timeout 30 softflowd -r "$pcap" -v 10 -A milli -6 -d -P "$proto" -n "$hostport" \
      -p "$sfdir/softflowd.pid" -c none >"$log" 2>&1 ||
      die "softflowd failed ($?): $(tail -5 "$log")"
    return 0
  fi
  local exe=$build/bin/bpfix-exporter
  [[ -x $exe ]] || die "$exe not found (build first: scripts/build)"
  local rc=0
  timeout 30 "$exe" --pcap "$pcap" --collector "$url" 2>"$log" || rc=$?
  ((rc == 0)) || die "bpfix-exporter exited $rc: $(tail -5 "$log")"
}

# check_exporter_summary LOG TOTALS_JSON: compares the exporter's last stderr
# line (the summary) with the pcap's totals. No-op for softflowd.
check_exporter_summary() {
  [[ ${INTEROP_EXPORTER:-bpfix} == softflowd ]] && return 0
  "$PY" "$INTEROP_DIR/check_summary.py" "$1" "$2"
}
