#!/usr/bin/env bash
# Interop: Wireshark's IPFIX dissector must decode bpfix's export, over UDP,
# TCP or SCTP or as an RFC 5655 file, without any complaint, and the decoded
# records must match the pcap, record by record.
#
# Usage: tshark_decode.sh BUILD_DIR udp|tcp|sctp|file
#
# Generates the interop pcap (make_pcap.py), captures loopback with dumpcap,
# exports with BUILD_DIR/bin/bpfix-exporter to udp://127.0.0.1:47710 or
# tcp://127.0.0.1:47711 (a small Python listener reads the TCP stream), then
# decodes the capture with `tshark -d udp|tcp.port==PORT,cflow` and checks it
# with tshark_check.py. Ports: 47710 (UDP), 47711 (TCP), probes 47712/47713;
# sctp: sctp://127.0.0.1:47714 (the listener on an SCTP socket), probe 47715
# (needs a kernel with SCTP: the VM tier runs it).
# file: exports to file:OUT.ipfix and lets tshark read that file directly
# (Wireshark has its own RFC 5655 file reader); no network.
# INTEROP_EXPORTER=softflowd runs the harness against softflowd (lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 BUILD_DIR udp|tcp|sctp|file" >&2; exit 2; }
(($# == 2)) || usage
build=$(cd "$1" && pwd)
mode=$2
case $mode in
  udp) port=47710 probe=47712 ;;
  tcp) port=47711 probe=47713 ;;
  sctp) port=47714 probe=47715 ;;
  file) port=0 ;;
  *) usage ;;
esac
need dumpcap tshark capinfos ss timeout
interop_init
work= # set by make_tmpdir
make_tmpdir work

make_interop_pcap "$work/in.pcap" "$work/totals.json" "$work/records.jsonl"

if [[ $mode == file ]]; then
  [[ ${INTEROP_EXPORTER:-bpfix} == bpfix ]] || die "softflowd cannot write IPFIX files"
  run_exporter "$build" "$work/in.pcap" "file:$work/out.ipfix" "$work/exporter.log"
  check_exporter_summary "$work/exporter.log" "$work/totals.json"
  [[ $(capinfos -t "$work/out.ipfix" 2>/dev/null) == *"IPFIX File Format"* ]] ||
    die "Wireshark does not recognise $work/out.ipfix as an IPFIX file: $(capinfos -t "$work/out.ipfix" 2>&1)"
  "$PY" "$INTEROP_DIR/tshark_check.py" "$work/out.ipfix" --decode udp.port==4739 --totals "$work/totals.json" \
    --flow-templates 256,257 --stats-template 258 --records "$work/records.jsonl" ||
    { [[ -n ${INTEROP_KEEP:-} ]] || echo "(rerun with INTEROP_KEEP=1 to keep $work)" >&2; exit 1; }
  echo "PASS: tshark reads the IPFIX file export"
  exit 0
fi

if [[ $mode == udp ]]; then
  udp_bound "$port" && die "UDP port $port is already in use"
elif [[ $mode == tcp ]]; then
  tcp_listening "$port" && die "TCP port $port is already in use"
else
  ss -HSnl "sport = :$port" | grep -q . && die "SCTP port $port is already in use"
fi

capture_start "$work/cap.pcapng" "$mode port $port" "$probe"

if [[ $mode == tcp || $mode == sctp ]]; then
  sink_args=()
  [[ $mode == sctp ]] && sink_args=(--sctp)
  "$PY" "$INTEROP_DIR/tcp_sink.py" 127.0.0.1 "$port" "$work/sink.ready" --timeout 40 "${sink_args[@]}" \
    >"$work/sink.json" 2>"$work/sink.err" &
  sink=$!
  track_pid "$sink"
  wait_until 10 test -e "$work/sink.ready" || die "$mode listener did not start: $(cat "$work/sink.err")"
else
  # Something must own the UDP port, or the kernel answers with ICMP port
  # unreachable and the exporter may see ECONNREFUSED on its next send.
  "$PY" -c 'import socket,sys,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1<<22)
open(sys.argv[2],"w").close()
while True: s.recv(65536)' "$port" "$work/sink.ready" 2>"$work/sink.err" &
  track_pid $!
  wait_until 10 test -e "$work/sink.ready" || die "UDP receiver did not start: $(cat "$work/sink.err")"
fi

run_exporter "$build" "$work/in.pcap" "$mode://127.0.0.1:$port" "$work/exporter.log"

if [[ $mode == tcp || $mode == sctp ]]; then
  rc=0
  wait "$sink" || rc=$?
  ((rc == 0)) || die "$mode listener: $(cat "$work/sink.json" "$work/sink.err")"
  echo "$mode listener: $(cat "$work/sink.json")"
fi
capture_stop

check_exporter_summary "$work/exporter.log" "$work/totals.json"

args=(--decode "$mode.port==$port" --totals "$work/totals.json")
if [[ ${INTEROP_EXPORTER:-bpfix} == softflowd ]]; then
  # softflowd's sequence numbers count bidirectional flows, not records.
  args+=(--allow-expert cflow.unexpected_sequence_number)
else
  args+=(--flow-templates "256,257" --stats-template 258 --records "$work/records.jsonl")
fi
"$PY" "$INTEROP_DIR/tshark_check.py" "$work/cap.pcapng" "${args[@]}" ||
  { [[ -n ${INTEROP_KEEP:-} ]] || echo "(rerun with INTEROP_KEEP=1 to keep $work)" >&2; exit 1; }
echo "PASS: tshark decodes the $mode export"
