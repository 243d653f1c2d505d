#!/usr/bin/env bash
# Runs inside the VM booted with systemd (tests/package/check_package.sh):
# the Debian package on a root that has never seen it, as a user would.
# 1. dpkg -i: the files, nothing enabled, `systemd-analyze verify` clean
#    on the installed units, `systemd-analyze security` scores.
# 2. The collector started by systemd (Type=notify: `systemctl start`
#    returns once READY=1 came): active, its own user, no capabilities, a
#    STATUS line, the journal has its log; a 2 s watchdog is fed.
# 3. The exporter started by systemd on a veth this script makes: active,
#    only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON; traffic through the veth;
#    stopped, it detaches and every flow reaches the collector's files.
# 4. A second collector from the template (bpfix-collector@b) beside it;
#    then the collector from bpfix-collector.socket, restarted twice while
#    an exporter sends over UDP: every record stored.
# 5. dpkg --purge: services stopped, every file and state directory gone.
#
# Usage: in_guest.sh PACKAGE.deb
set -uo pipefail
deb=$1
failed=0
fail() { echo "FAIL package: $*"; failed=1; }
die() { echo "FAIL package: $*"; exit 1; }
ns=bpfixpkg
cleanup() { ip netns del "$ns" 2>/dev/null; ip link del bpfpkg0 2>/dev/null; }
trap cleanup EXIT
# What the package may touch, before it comes (the root is an overlay:
# whatever changes here stays in the VM).
scan() {
  find /etc/bpfix /etc/systemd /usr/bin /usr/lib/systemd/system /usr/share/bpfix /usr/share/doc/bpfix \
    /var/lib /var/log 2>/dev/null |
    grep -vE '^/var/lib/(dpkg|systemd|apt)(/|$)|^/var/log/(journal|dpkg\.log|apt)(/|$)' | sort
}
scan >/tmp/before.txt

# 1. Install.
dpkg -i "$deb" >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; die "dpkg -i failed"; }
grep -q 'systemctl enable --now bpfix-exporter bpfix-collector' /tmp/dpkg.log ||
  fail "postinst did not say how to enable the services: $(cat /tmp/dpkg.log)"
mapfile -t files < <(dpkg -L bpfix | while read -r f; do [[ -f $f ]] && echo "$f"; done)
((${#files[@]} >= 15)) || fail "dpkg -L bpfix lists ${#files[@]} files, want 15"
for u in bpfix-exporter.service bpfix-collector.service bpfix-collector.socket; do
  state=$(systemctl is-enabled "$u" 2>&1)
  [[ $state == disabled ]] || fail "$u is $state after install, want disabled until configured"
done
out=$(systemd-analyze verify bpfix-exporter.service bpfix-collector.service bpfix-collector.socket bpfix-collector@b.service 2>&1)
[[ -z $out ]] || fail "systemd-analyze verify: $out"
for u in bpfix-exporter.service bpfix-collector.service bpfix-collector@b.service; do
  line=$(systemd-analyze security "$u" 2>&1 | tail -1)
  echo "security: $line"
  [[ $line =~ (OK|SAFE) ]] || fail "$u: $line (want OK or better)"
done

# 2. The collector, started with the shipped configuration as it is: it
# listens on IPFIX's port on loopback.
systemctl start bpfix-collector.service || { journalctl -u bpfix-collector --no-pager | tail -20; die "start failed"; }
[[ $(systemctl is-active bpfix-collector) == active ]] || fail "the collector is $(systemctl is-active bpfix-collector)"
pid=$(systemctl show -p MainPID --value bpfix-collector)
status=$(systemctl show -p StatusText --value bpfix-collector)
echo "collector: pid $pid, user $(ps -o user= -p "$pid"), status '$status'"
[[ $status == *"listening on udp://127.0.0.1:4739, tcp://127.0.0.1:4739"* ]] || fail "collector status '$status'"
[[ $(ps -o user= -p "$pid") != root ]] || fail "the collector runs as root"
caps=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
[[ $caps == 0000000000000000 ]] || fail "the collector has capabilities $caps, want none"
journalctl -u bpfix-collector --no-pager | grep -q 'listening on tcp://127.0.0.1:4739' ||
  fail "the journal has no 'listening on' line from the collector"
# A short watchdog: the pings keep it alive.
mkdir -p /run/systemd/system/bpfix-collector.service.d
printf '[Service]\nWatchdogSec=2\n' >/run/systemd/system/bpfix-collector.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart bpfix-collector.service || fail "restart with WatchdogSec=2 failed"
w1=$(systemctl show -p WatchdogTimestampMonotonic --value bpfix-collector)
sleep 6
w2=$(systemctl show -p WatchdogTimestampMonotonic --value bpfix-collector)
restarts=$(systemctl show -p NRestarts --value bpfix-collector)
echo "collector watchdog: last ping $w1 then $w2 (us), restarts $restarts"
[[ $(systemctl is-active bpfix-collector) == active && $restarts == 0 && $w2 -gt $w1 ]] ||
  fail "watchdog: active=$(systemctl is-active bpfix-collector) restarts=$restarts pings $w1 -> $w2"
# systemctl reload: checked, then SIGHUP; the same process goes on.
cpid=$(systemctl show -p MainPID --value bpfix-collector)
systemctl reload bpfix-collector.service || fail "systemctl reload bpfix-collector failed"
for _ in $(seq 50); do
  journalctl -u bpfix-collector --no-pager | grep -q 'reload: applied' && break
  sleep 0.2
done
journalctl -u bpfix-collector --no-pager | grep -q 'reload: applied (changed: nothing)' ||
  fail "no 'reload: applied' in the collector's journal: $(journalctl -u bpfix-collector --no-pager | tail -5)"
[[ $(systemctl is-active bpfix-collector) == active && $(systemctl show -p MainPID --value bpfix-collector) == "$cpid" ]] ||
  fail "the collector did not keep running across systemctl reload"
echo "collector: systemctl reload applied, pid $cpid kept"

# 3. The exporter on a veth (metered end in this namespace).
ip netns add "$ns"
ip link add bpfpkg0 type veth peer name bpfpkg1 netns "$ns"
ip addr add 10.77.0.1/24 dev bpfpkg0 && ip link set bpfpkg0 up
ip -n "$ns" addr add 10.77.0.2/24 dev bpfpkg1 && ip -n "$ns" link set bpfpkg1 up && ip -n "$ns" link set lo up
sed -i -e '0,/^interfaces = \[\]/s//interfaces = ["bpfpkg0"]/' \
  -e 's|^collector = .*|collector = "tcp://127.0.0.1:4739"|' /etc/bpfix/exporter.toml
systemctl start bpfix-exporter.service || { journalctl -u bpfix-exporter --no-pager | tail -20; die "start failed"; }
pid=$(systemctl show -p MainPID --value bpfix-exporter)
status=$(systemctl show -p StatusText --value bpfix-exporter)
caps=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
echo "exporter: pid $pid, user $(ps -o user= -p "$pid"), caps $caps, status '$status'"
[[ $status == *"metering 1 interface;"* ]] || fail "exporter status '$status'"
# CAP_NET_ADMIN 12, CAP_PERFMON 38, CAP_BPF 39
[[ $caps == 000000c000001000 ]] || fail "the exporter has capabilities $caps, want 000000c000001000"
[[ -n $(tc filter show dev bpfpkg0 ingress) || -n $(bpftool net show dev bpfpkg0 2>/dev/null | grep -i tcx) ]] ||
  fail "nothing attached to bpfpkg0 with the exporter active"
for ep in 127.0.0.1:9740 127.0.0.1:9739; do
  code=$(curl -s -o /tmp/health.txt -w '%{http_code}' "http://$ep/health")
  echo "health $ep: $code $(cat /tmp/health.txt)"
  [[ $code == 200 ]] || fail "http://$ep/health answered $code under systemd"
done
ip netns exec "$ns" /usr/bin/python3 -c "
import socket
for i in range(25):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('10.77.0.2', 30000 + i))
    s.sendto(b'x' * 64, ('10.77.0.1', 9))
"
sleep 3
packets=$(curl -s http://127.0.0.1:9740/metrics | awk '$1 == "bpfix_exporter_packets_total" {print $2}')
echo "exporter metrics under systemd: $packets packets metered"
((${packets:-0} >= 25)) || fail "bpfix_exporter_packets_total is '${packets}' after 25 packets"
# systemctl reload: a second veth joins; the first keeps its hooks and the
# exporter its process. Then a broken file: the reload fails, nothing changes.
ip link add bpfpkg2 type veth peer name bpfpkg3 netns "$ns" && ip link set bpfpkg2 up
hooks() {
  tc filter show dev bpfpkg0 ingress; tc filter show dev bpfpkg0 egress
  bpftool link show 2>/dev/null | grep -E '^[0-9]+: tcx' || true
}
hooks_before=$(hooks)
sed -i 's|^interfaces = \["bpfpkg0"\]|interfaces = ["bpfpkg0", "bpfpkg2"]|' /etc/bpfix/exporter.toml
systemctl reload bpfix-exporter.service || fail "systemctl reload bpfix-exporter failed"
for _ in $(seq 50); do
  [[ $(systemctl show -p StatusText --value bpfix-exporter) == *"metering 2 interfaces"* ]] && break
  sleep 0.2
done
status=$(systemctl show -p StatusText --value bpfix-exporter)
echo "exporter after systemctl reload: pid $(systemctl show -p MainPID --value bpfix-exporter), status '$status'"
[[ $status == *"metering 2 interfaces"* && $(systemctl show -p MainPID --value bpfix-exporter) == "$pid" ]] ||
  fail "after reload: status '$status', pid $(systemctl show -p MainPID --value bpfix-exporter) (was $pid)"
journalctl -u bpfix-exporter --no-pager | grep -q 'reload: applied (changed: interfaces)' ||
  fail "no 'reload: applied' in the exporter's journal"
hooks_after=$(hooks)
[[ -n $hooks_before ]] || fail "no hooks of ours on bpfpkg0 before the reload"
while IFS= read -r line; do
  [[ -z $line ]] || grep -qxF -- "$line" <<<"$hooks_after" || fail "the hook '$line' on bpfpkg0 changed across the reload"
done <<<"$hooks_before"
cp /etc/bpfix/exporter.toml /tmp/exporter.toml.good
echo 'interfaces = [' >>/etc/bpfix/exporter.toml
if systemctl reload bpfix-exporter.service 2>/tmp/reload.err; then
  fail "systemctl reload accepted a broken exporter.toml"
fi
echo "broken file: systemctl reload failed as it should: $(head -c 300 /tmp/reload.err | tr '\n' ' ')"
[[ $(systemctl is-active bpfix-exporter) == active && $(systemctl show -p MainPID --value bpfix-exporter) == "$pid" ]] ||
  fail "the exporter did not keep running after a refused reload"
cp /tmp/exporter.toml.good /etc/bpfix/exporter.toml
systemctl stop bpfix-exporter.service
[[ -z $(tc filter show dev bpfpkg0 ingress) ]] || fail "tc filters left on bpfpkg0 after stop"
journalctl -u bpfix-exporter --no-pager | grep -q 'summary:' || fail "no exporter summary in the journal"
# 4. The template, beside the first collector.
printf '[listen]\nurls = ["udp://127.0.0.1:4740"]\n[metrics]\nlisten = "127.0.0.1:9741"\n' >/etc/bpfix/collector-b.toml
systemctl start bpfix-collector@b.service ||
  fail "bpfix-collector@b did not start: $(journalctl -u bpfix-collector@b --no-pager | tail -5)"
status=$(systemctl show -p StatusText --value bpfix-collector@b)
[[ $status == *"udp://127.0.0.1:4740"* && -d /var/lib/bpfix-collector-b ]] ||
  fail "bpfix-collector@b: status '$status', state dir $(ls -d /var/lib/bpfix-collector-b 2>&1)"
echo "collector@b: status '$status'"
systemctl stop bpfix-collector@b.service
systemctl stop bpfix-collector.service
flows=$(/usr/bin/python3 -c 'import glob, json
print(sum(json.loads(l).get("destinationIPv4Address") == "10.77.0.1"
          for f in glob.glob("/var/lib/bpfix-collector/*.jsonl") for l in open(f)))')
echo "collector files: $flows flows to 10.77.0.1 ($(ls /var/lib/bpfix-collector | tr '\n' ' '))"
((flows >= 25)) || fail "$flows flows to 10.77.0.1 in the collector's files, want 25"
rm -f /etc/bpfix/collector-b.toml  # the admin's file, not the package's
rm -rf /run/systemd/system/bpfix-collector.service.d && systemctl daemon-reload

# 4b. Restarts that lose nothing: bpfix-collector.socket holds UDP and TCP
# 4739; two `systemctl restart`s while an exporter sends over UDP (a rate
# this emulated VM can take), every record stored.
blast=$(dirname "$deb")/bin/bpfix_ipfix_udp_blast
sed -i 's|^urls = .*|urls = []|' /etc/bpfix/collector.toml
rm -f /var/lib/bpfix-collector/*.jsonl
systemctl start bpfix-collector.socket || fail "bpfix-collector.socket did not start"
systemctl start bpfix-collector.service || fail "the collector did not start from its socket unit: $(journalctl -u bpfix-collector --no-pager | tail -5)"
status=$(systemctl show -p StatusText --value bpfix-collector)
echo "collector from bpfix-collector.socket: status '$status'"
[[ $status == *"udp://[::]:4739"* && $status == *"tcp://[::]:4739"* ]] || fail "collector status '$status'"
journalctl -u bpfix-collector --no-pager | grep -q 'udp://\[::\]:4739 (passed by systemd' ||
  fail "the journal does not say the UDP socket came from systemd"
"$blast" 127.0.0.1 4739 10000 6 2 >/tmp/blast.out &
bpid=$!
for i in 1 2; do
  sleep 2
  systemctl restart bpfix-collector.service || fail "systemctl restart $i failed"
done
wait $bpid
sent=$(sed -n 's/^sent_records=\([0-9]*\).*/\1/p' /tmp/blast.out)
sleep 2
systemctl stop bpfix-collector.service
got=$(cat /var/lib/bpfix-collector/*.jsonl | grep -c sourceIPv4Address)
echo "restarts under load: sent $sent records, stored $got (two systemctl restarts)"
[[ -n $sent && $sent -gt 50000 && $got == "$sent" ]] || fail "restarts with the socket unit: stored $got of $sent records"
systemctl stop bpfix-collector.socket

# 5. Purge.
dpkg --purge bpfix >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; fail "dpkg --purge failed"; }
for f in "${files[@]}"; do [[ -e $f ]] && fail "$f left after purge"; done
scan >/tmp/after.txt
left=$(diff /tmp/before.txt /tmp/after.txt)
[[ -z $left ]] || fail "purge left changes behind: $left"
systemctl list-units --all --no-legend 'bpfix*' | grep -q . && fail "units left: $(systemctl list-units --all 'bpfix*')"
((failed)) && exit 1
echo "ok package: ${#files[@]} files installed and purged without a trace; collector, collector@b and exporter ran under systemd 252 (Type=notify, watchdog, least privilege, systemctl reload: a veth added with the first one's hooks kept, a broken file refused; two restarts through bpfix-collector.socket with nothing lost); $flows flows delivered"
