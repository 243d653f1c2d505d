#!/usr/bin/env bash
# Interop: third-party exporters into bpfix-collector. softflowd (-r, IPFIX)
# or pmacctd (nfprobe plugin, IPFIX) meters the interop pcap and sends to
# bpfix-collector over UDP on loopback while dumpcap captures the stream;
# the collector's JSONL must hold the same flow records, field by field,
# as Wireshark's dissector decodes from the capture
# (collector_vs_tshark.py), with no malformed message.
#
# Usage: collector_peers.sh BUILD_DIR softflowd|pmacctd
# Ports: 47730 (softflowd) / 47732 (pmacctd), probes 47731 / 47733.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

(($# == 2)) || { echo "usage: $0 BUILD_DIR softflowd|pmacctd" >&2; exit 2; }
build=$(cd "$1" && pwd)
peer=$2
case $peer in
  softflowd) port=47730 probe=47731; need softflowd ;;
  pmacctd) port=47732 probe=47733; need pmacctd ;;
  *) echo "usage: $0 BUILD_DIR softflowd|pmacctd" >&2; exit 2 ;;
esac
need dumpcap tshark ss timeout
interop_init
work= # set by make_tmpdir
make_tmpdir work

# Neither peer parses QinQ: leave the VLAN-tagged copies out.
"$PY" "$INTEROP_DIR/make_pcap.py" "$work/in.pcap" --no-vlans 2>/dev/null

mkdir "$work/out"
"$build/bin/bpfix-collector" --listen "udp://127.0.0.1:$port" --output-dir "$work/out" --metrics off \
  2>"$work/collector.log" &
collector=$!
track_pid "$collector"
wait_until 10 udp_bound "$port" || die "collector did not bind udp $port: $(cat "$work/collector.log")"

capture_start "$work/cap.pcapng" "udp port $port" "$probe"
if [[ $peer == softflowd ]]; then
  # -c none: with a control socket softflowd 1.1.0 can block in accept()
  # instead of exiting at the end of the pcap.
  timeout 30 softflowd -r "$work/in.pcap" -v 10 -A milli -6 -d -P udp -n "127.0.0.1:$port" \
    -p "$work/softflowd.pid" -c none >"$work/peer.log" 2>&1 || die "softflowd failed: $(tail -5 "$work/peer.log")"
else
  cat >"$work/pmacctd.conf" <<CONF
daemonize: false
pcap_savefile: $work/in.pcap
plugins: nfprobe
nfprobe_receiver: 127.0.0.1:$port
nfprobe_version: 10
nfprobe_timeouts: general=1:maxlife=1:expint=1
aggregate: src_host, dst_host, src_port, dst_port, proto, tos
CONF
  timeout 60 pmacctd -f "$work/pmacctd.conf" >"$work/peer.log" 2>&1 || die "pmacctd failed: $(tail -5 "$work/peer.log")"
fi
wait_until 10 udp_recvq_empty "$port" || die "collector did not read everything"
capture_stop

kill -TERM "$collector"
wait "$collector" || die "collector exited $?: $(tail -3 "$work/collector.log")"
summary=$(grep 'summary:' "$work/collector.log")
echo "$summary"
[[ $summary == *" malformed=0 "* ]] || die "malformed messages: $summary"
"$PY" "$INTEROP_DIR/collector_vs_tshark.py" "$work/cap.pcapng" --decode "udp.port==$port" --out-dir "$work/out"
