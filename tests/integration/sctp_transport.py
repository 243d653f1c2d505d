#!/usr/bin/python3
"""IPFIX over SCTP (RFC 7011 section 10.2), exporter to collector.

usage: sctp_transport.py BUILD_DIR

On a kernel without SCTP (this project's development host): both daemons
refuse sctp:// at start with an error naming the sctp module and exit
non-zero; that is all that can be checked there, and the test says so.

On a kernel with SCTP (Debian 12's 6.1 in the VM tier, tests/vm):
1. same pcap, same records: the interop pcap exported over TCP and over
   SCTP to bpfix-collector; the records (all templates, minus the
   exporter's start time) and the flow totals are identical, and equal
   the pcap's;
2. collector restarts mid-stream: live flows on a veth between two
   namespaces, exported over SCTP to a collector that is stopped (SIGTERM,
   as systemd does) after the first records and started again 1.5 s later
   on the same port. The exporter reconnects; every record it made is
   delivered once or counted as not sent (records = delivered +
   not_sent), every UDP flow sent arrives once with its packets, and none
   twice;
3. partially reliable delivery ([transport] sctp_lifetime): 60000 flows
   from a pcap to a collector stopped (SIGSTOP) for four lifetimes; the
   exporter gives up messages older than the lifetime, and the records
   made = the records received + those the collector counts lost from the
   sequence numbers (+ any the exporter could not send before its drain
   timeout, counted by it).
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import TIME_SCALE, Exporter, Lab, run_test, sh  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(HERE, "..", "interop")


def send_flows(ns, src, dst, sports, n):
    """n UDP datagrams to dst port 9 from each source port: one flow each."""
    code = ("import socket\n"
            f"for p in {list(sports)}:\n"
            "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"  s.bind(('{src}',p))\n"
            f"  [s.sendto(b'x'*64,('{dst}',9)) for i in range({n})]\n"
            "  s.close()\n")
    sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code)


def sctp_available():
    import socket
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        return True
    except OSError:
        return False


class Collector:
    def __init__(self, build, url, outdir, log, ns=None):
        self.outdir, self.log = outdir, log
        os.makedirs(outdir, exist_ok=True)
        args = [os.path.join(build, "bin", "bpfix-collector"), "--listen", url, "--output-dir", outdir,
                "--metrics", "off", "--format", "jsonl"]
        if ns:
            args = ["ip", "netns", "exec", ns] + args
        self.p = subprocess.Popen(args, stderr=open(log, "w"), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * TIME_SCALE
        while time.monotonic() < deadline:
            m = re.search(r"listening on \w+://\S+:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                return
            if self.p.poll() is not None:
                raise SystemExit("FAIL collector exited at start:\n" + self.text())
            time.sleep(0.05)
        self.p.kill()
        raise SystemExit("FAIL collector did not listen within 10 s:\n" + self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=20 * TIME_SCALE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise SystemExit("FAIL collector did not stop within 20 s after SIGTERM")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def summary(self):
        m = re.search(r"bpfix-collector: summary: (.*)", self.text())
        return dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}

    def records(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.outdir, "flows-*.jsonl"))):
            with open(path) as f:
                out += [json.loads(line) for line in f if line.strip()]
        return out


def exporter_summary(text):
    m = re.search(r"bpfix-exporter: summary: (.*)", text)
    if not m:
        return {}
    return dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)


def check_refusals(build, tmp, failures):
    """No SCTP in this kernel: each daemon names the module and exits non-zero."""
    exp = subprocess.run([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", "/dev/null", "--collector",
                          "sctp://127.0.0.1:4739"], capture_output=True, text=True, timeout=30)
    col = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--listen", "sctp://127.0.0.1:0",
                          "--output-dir", tmp, "--metrics", "off"], capture_output=True, text=True, timeout=30)
    for name, r in (("exporter", exp), ("collector", col)):
        if r.returncode == 0 or "modprobe sctp" not in r.stderr or "sctp://127.0.0.1" not in r.stderr:
            failures.append(f"{name} with sctp:// on a kernel without SCTP: exit {r.returncode}, want non-zero "
                            f"and an error naming the URL and the sctp module; stderr: {r.stderr.strip()}")
    return exp.stderr.strip().splitlines()[-1] if exp.stderr.strip() else ""


def comparable(records):
    out = []
    for r in records:
        r = dict(r)
        r.pop("systemInitTimeMilliseconds", None)  # when each exporter run started
        out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


def part_same_records(build, tmp, failures):
    pcap = os.path.join(tmp, "in.pcap")
    sh("/usr/bin/python3", os.path.join(INTEROP, "make_pcap.py"), pcap)
    totals = json.loads(sh("/usr/bin/python3", os.path.join(INTEROP, "pcap_totals.py"), pcap).stdout)
    got = {}
    for proto in ("tcp", "sctp"):
        col = Collector(build, f"{proto}://127.0.0.1:0", os.path.join(tmp, proto), os.path.join(tmp, f"{proto}.log"))
        try:
            r = subprocess.run([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", pcap, "--collector",
                                f"{proto}://127.0.0.1:{col.port}"], capture_output=True, text=True,
                               timeout=60 * TIME_SCALE)
            if r.returncode != 0:
                failures.append(f"exporter over {proto} exited {r.returncode}: {r.stderr[-800:]}")
            col.stop()
        finally:
            col.kill()
        got[proto] = (col.records(), exporter_summary(r.stderr), col.summary())
    tcp, sctp = got["tcp"], got["sctp"]
    if comparable(tcp[0]) != comparable(sctp[0]):
        a, b = set(comparable(tcp[0])), set(comparable(sctp[0]))
        failures.append(f"records differ: {len(tcp[0])} over TCP, {len(sctp[0])} over SCTP; only TCP: "
                        f"{sorted(a - b)[:2]}; only SCTP: {sorted(b - a)[:2]}")
    flows = [r for r in sctp[0] if "packetDeltaCount" in r]
    packets = sum(r["packetDeltaCount"] for r in flows)
    octets = sum(r["octetDeltaCount"] for r in flows)
    want = (totals["flows"], totals["ip_packets"], totals["ip_octets"])
    if (len(flows), packets, octets) != want:
        failures.append(f"SCTP: {len(flows)} flows, {packets} packets, {octets} octets; the pcap has {want}")
    for proto, (_, es, cs) in got.items():
        if es.get("records") != cs.get("records") or es.get("not_sent_records") != "0":
            failures.append(f"{proto}: exporter made {es.get('records')} records (not sent "
                            f"{es.get('not_sent_records')}), collector received {cs.get('records')}")
    return (f"same pcap over TCP and SCTP: {len(sctp[0])} identical records each, {len(flows)} flows, "
            f"{packets} packets, {octets} octets (= the pcap)")


def part_restart(build, tmp, failures):
    rounds, per_round, pkts = 24, 10, 3
    with Lab("bpsc") as lab:
        a, b = lab.ns("a"), lab.ns("b")
        lab.veth(a, "sa0", "10.77.0.1/24", b, "sb0", "10.77.0.2/24")
        col1 = Collector(build, "sctp://127.0.0.1:0", os.path.join(tmp, "r1"), os.path.join(tmp, "r1.log"), ns=a)
        port = col1.port
        col2 = None
        exp = Exporter(build, a, ["sa0"], f"sctp://127.0.0.1:{port}", os.path.join(tmp, "exp.log"),
                       extra=["--idle-timeout", "1"])
        try:
            if not exp.wait_log("connected (SCTP)", 10):
                failures.append("exporter did not connect over SCTP:\n" + exp.text()[-1500:])
                return ""
            stopped_at = None
            for i in range(rounds):
                send_flows(a, "10.77.0.1", "10.77.0.2", range(20000 + i * per_round, 20000 + (i + 1) * per_round),
                           pkts)
                time.sleep(0.25 * TIME_SCALE)
                if i == rounds // 3:
                    # after the first records have arrived
                    col1.stop()
                    stopped_at = time.monotonic()
                if stopped_at and col2 is None and time.monotonic() - stopped_at > 1.5 * TIME_SCALE:
                    col2 = Collector(build, f"sctp://127.0.0.1:{port}", os.path.join(tmp, "r2"),
                                     os.path.join(tmp, "r2.log"), ns=a)
            if col2 is None:
                failures.append("the traffic ended before the collector was restarted")
                return ""
            time.sleep(2.5 * TIME_SCALE)  # idle timeout: every flow ends
            rc = exp.stop()
            col2.stop()
        finally:
            exp.p.poll() is None and exp.kill()
            col1.kill()
            if col2:
                col2.kill()
        es = exporter_summary(exp.text())
        made, not_sent = int(es.get("records", -1)), int(es.get("not_sent_records", -1))
        # RFC 5610 type records (template 259) go with the templates on
        # every association; the exporter counts them once.
        recs1, recs2 = col1.records(), col2.records()
        types1 = sum(1 for r in recs1 if "informationElementId" in r)
        types2 = sum(1 for r in recs2 if "informationElementId" in r)
        got1, got2 = len(recs1) - types1, len(recs2) - types2
        if types1 != types2 or int(col1.summary().get("records", -1)) != len(recs1) or \
                int(col2.summary().get("records", -1)) != len(recs2):
            failures.append(f"type records {types1} and {types2} (want the same on both associations); "
                            f"collector summaries {col1.summary().get('records')} and "
                            f"{col2.summary().get('records')} vs {len(recs1)} and {len(recs2)} records written")
        made -= types2
        connects = exp.text().count("connected (SCTP)")
        if connects < 2:
            failures.append(f"exporter connected {connects} time(s); want a reconnect after the restart")
        if got1 == 0 or got2 == 0:
            failures.append(f"records before the restart {got1}, after {got2}: want both > 0 (mid-stream)")
        if got1 + got2 + not_sent != made:
            failures.append(f"records: exporter made {made}, collectors received {got1} + {got2}, exporter "
                            f"counted {not_sent} not sent: {made - got1 - got2 - not_sent} unaccounted for")
        if rc != 0 and not_sent == 0:
            failures.append(f"exporter exited {rc} with nothing counted as lost")
        seen = {}
        for r in recs1 + recs2:
            if r.get("destinationTransportPort") == 9 and r.get("sourceIPv4Address") == "10.77.0.1":
                seen.setdefault(r["sourceTransportPort"], []).append(r["packetDeltaCount"])
        sent = set(range(20000, 20000 + rounds * per_round))
        dup = {p: v for p, v in seen.items() if len(v) > 1}
        bad = {p: v for p, v in seen.items() if sum(v) != pkts}
        missing = sent - set(seen)
        if dup:
            failures.append(f"{len(dup)} flows delivered twice, e.g. {sorted(dup.items())[:3]}")
        if bad:
            failures.append(f"{len(bad)} flows with packets other than {pkts}, e.g. {sorted(bad.items())[:3]}")
        if missing and not_sent == 0:
            failures.append(f"{len(missing)} of {len(sent)} UDP flows never arrived and nothing was counted as "
                            f"lost, e.g. {sorted(missing)[:5]}")
        return (f"collector restarted mid-stream: exporter reconnected ({connects} connections), {made} records "
                f"made = {got1} before + {got2} after the restart + {not_sent} counted as not sent (and "
                f"{types2} type records on each association); "
                f"{len(seen)} of {len(sent)} UDP flows, each once with {pkts} packets")


def write_many_flows(path, flows):
    """A classic pcap of `flows` UDP/IPv4 packets, each its own flow
    (distinct source address and port), all within one second."""
    import struct
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(flows):
            payload = b"p" * 32
            udp = struct.pack("!HHHH", 10000 + i % 50000, 4789, 8 + len(payload), 0) + payload
            src = bytes([10, 80 + i // 65536, (i >> 8) & 255, i & 255])
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src,
                              bytes([192, 0, 2, 1]))
            csum = sum(struct.unpack("!10H", hdr))
            csum = (csum & 0xFFFF) + (csum >> 16)
            csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
            ip = hdr[:10] + struct.pack("!H", csum) + hdr[12:] + udp
            frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip
            f.write(struct.pack("<IIII", 1704164645, (i * 997) % 1000000, len(frame), len(frame)) + frame)


def part_partial(build, tmp, failures):
    """PR-SCTP: a collector that stops reading (SIGSTOP) for a while; data
    messages older than the lifetime are given up, templates are not, and
    every record is delivered or counted lost by the collector."""
    flows = 60000
    pcap = os.path.join(tmp, "many.pcap")
    write_many_flows(pcap, flows)
    conf = os.path.join(tmp, "pr.toml")
    lifetime = 0.5 * TIME_SCALE
    with open(conf, "w") as f:
        f.write(f"[transport]\nsctp_lifetime = {lifetime}\ndrain_timeout = {30 * TIME_SCALE}\n")
    col = Collector(build, "sctp://127.0.0.1:0", os.path.join(tmp, "pr"), os.path.join(tmp, "pr.log"))
    exp_log = os.path.join(tmp, "pr-exporter.log")
    try:
        col.p.send_signal(signal.SIGSTOP)
        exp = subprocess.Popen([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", pcap, "--collector",
                                f"sctp://127.0.0.1:{col.port}", "--config", conf], stderr=open(exp_log, "w"))
        time.sleep(4 * lifetime)
        col.p.send_signal(signal.SIGCONT)
        rc = exp.wait(timeout=120 * TIME_SCALE)
        col.stop()
    finally:
        col.p.send_signal(signal.SIGCONT)
        col.kill()
    with open(exp_log) as f:
        text = f.read()
    es = exporter_summary(text)
    m = re.search(r"PR-SCTP gave up (\d+) messages", text)
    abandoned = int(m.group(1)) if m else 0
    recs = col.records()
    types = sum(1 for r in recs if "informationElementId" in r)
    made = int(es.get("records", -1)) - types
    got = len(recs) - types
    lost = int(col.summary().get("lost_in_transit", -1))
    if abandoned == 0 or lost <= 0:
        failures.append(f"PR-SCTP: the exporter gave up {abandoned} messages and the collector counted {lost} "
                        f"records lost while it was stopped for {4 * lifetime:.0f} s (lifetime {lifetime} s); want "
                        f"both > 0:\n" + text[-1500:])
    not_sent = int(es.get("not_sent_records", -1))
    if got + lost + not_sent != made:
        failures.append(f"PR-SCTP: exporter made {made} records, collector received {got} and counted {lost} lost, "
                        f"exporter counted {not_sent} not sent: {made - got - lost - not_sent} unaccounted for")
    if rc != 0 and not (rc == 1 and not_sent > 0):
        failures.append(f"PR-SCTP: exporter exited {rc}:\n" + text[-1500:])
    return (f"PR-SCTP (lifetime {lifetime} s, collector stopped {4 * lifetime:.0f} s): {abandoned} messages given "
            f"up, {made} records made = {got} received + {lost} counted lost by the collector + {not_sent} not "
            f"sent by the exporter")


def body(build, tmp, failures, _extra):
    if not sctp_available():
        line = check_refusals(build, tmp, failures)
        return ("no SCTP in this kernel: both daemons refuse sctp:// and name the module (" + line +
                "); the delivery parts run in the VM tier (vm_sctp)")
    lines = [part_same_records(build, tmp, failures), part_restart(build, tmp, failures),
             part_partial(build, tmp, failures)]
    return "; ".join(x for x in lines if x)


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "sctp_transport", body))
