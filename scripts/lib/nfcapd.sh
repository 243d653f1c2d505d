# shellcheck shell=bash
# nfcapd (nfdump 1.7) as a throw-away IPFIX receiver on UDP loopback.
# Sourced by scripts/demo and tests/interop/nfdump_udp.sh, not executed.
#
#   nfcapd_start DIR PORT   starts nfcapd on 127.0.0.1:PORT writing into DIR,
#                           returns once the socket is bound; sets NFCAPD_PID.
#                           Its stderr goes to DIR.log (summary line at exit).
#   nfcapd_stop PORT        waits until nfcapd has read every queued datagram,
#                           then stops it with SIGTERM, which closes (flushes)
#                           the current file; fails if it does not exit cleanly.
# The caller's cleanup trap should kill $NFCAPD_PID if it is still set.

NFCAPD_PID=

_nfcapd_bound() { ss -Hunl "sport = :$1" | grep -q .; }
_nfcapd_recvq() { ss -Hunl "sport = :$1" | awk '{s += $2} END {print s + 0}'; }

nfcapd_start() {
  local dir=$1 port=$2
  if _nfcapd_bound "$port"; then
    echo "nfcapd: UDP port $port is already in use" >&2
    return 1
  fi
  mkdir -p "$dir"
  # -t 3600: one file for the whole run; nfdump -R reads the directory anyway.
  nfcapd -b 127.0.0.1 -p "$port" -w "$dir" -t 3600 -B 4194304 </dev/null >"$dir.log" 2>&1 &
  NFCAPD_PID=$!
  for _ in $(seq 1 100); do
    _nfcapd_bound "$port" && return 0
    kill -0 "$NFCAPD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "nfcapd did not start listening on 127.0.0.1:$port: $(cat "$dir.log")" >&2
  return 1
}

nfcapd_stop() {
  local port=$1 rc=0
  [[ -n $NFCAPD_PID ]] || return 0
  # A datagram still queued on the socket when SIGTERM lands would be lost.
  for _ in $(seq 1 100); do
    [[ $(_nfcapd_recvq "$port") == 0 ]] && break
    sleep 0.1
  done
  sleep 0.3 # let it finish decoding the last datagram it read
  kill -TERM "$NFCAPD_PID"
  for _ in $(seq 1 100); do
    kill -0 "$NFCAPD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$NFCAPD_PID" 2>/dev/null; then
    echo "nfcapd did not exit within 10 s of SIGTERM" >&2
    kill -KILL "$NFCAPD_PID" 2>/dev/null || true
    rc=1
  fi
  wait "$NFCAPD_PID" 2>/dev/null || rc=$?
  NFCAPD_PID=
  return "$rc"
}
