#!/usr/bin/python3
"""Both daemons' Prometheus /metrics and /health, read with curl, against
traffic this test sends. In namespace B: bpfix-collector (TCP, metrics on
loopback) and bpfix-exporter on B's veth sending to it.
1. /health: 200 from both; the exporter names its interface count and a
   connected collector.
2. 40 UDP flows of 3 packets (128-byte IP packets) from A: once they
   end, the exporter's counters say exactly 120 packets, 15360 octets, 40
   flow records, 1 interface, 1 connection, nothing lost or refused; the
   collector's per-exporter records and messages equal what the exporter
   says it sent (records exactly; messages at least, the collector also
   counts each connection's template messages).
3. Both pages are valid Prometheus text (every sample of a family with
   HELP and TYPE before it, counters named *_total, numeric values,
   well-formed labels).
4. The collector stops: the exporter's /health turns 503 once it sees the
   connection gone, and its export queue and connected gauge say so.
5. A metrics address given and already in use is refused at start (exit
   2, naming it); the default address, where it cannot be bound (a
   namespace whose loopback was never brought up), is skipped with a
   warning.
Everything made here is removed, also on failure.

usage: metrics_endpoints.py BUILD_DIR
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import TIME_SCALE, Exporter, Lab, run_test, sh  # noqa: E402

A_IP, B_IP = "10.214.0.1", "10.214.0.2"
PORT, COLLECTOR_METRICS, EXPORTER_METRICS = 47751, 47752, 47753
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*",?)*\})? '
                    r'(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)$')


def curl(ns, port, path):
    """(HTTP status, body) of GET http://127.0.0.1:port/path inside ns."""
    r = sh("ip", "netns", "exec", ns, "curl", "-s", "-m", str(int(10 * TIME_SCALE)), "-w", "\n%{http_code}",
           f"http://127.0.0.1:{port}{path}", check=False)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def parse(text, who, failures):
    """{(name, labels): value}; checks the exposition format."""
    out, typed, helped = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind not in ("counter", "gauge"):
                failures.append(f"{who}: {name} has type {kind}")
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            if not m:
                failures.append(f"{who}: not a Prometheus sample line: {line!r}")
                continue
            name = m.group(1)
            if name not in typed or name not in helped:
                failures.append(f"{who}: {name} has no HELP and TYPE before its samples")
            elif typed[name] == "counter" and not name.endswith("_total"):
                failures.append(f"{who}: counter {name} is not named *_total")
            out[(name, m.group(2) or "")] = float(m.group(3))
    return out


def total(metrics, name):
    return sum(v for (n, _), v in metrics.items() if n == name)


def body(build, tmp, failures, extra):
    collector = None
    lab_procs = []
    with Lab("bpme") as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpma" + lab.tag, "bpmb" + lab.tag
        lab.veth(a, if_a, A_IP + "/24", b, if_b, B_IP + "/24")
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        log = os.path.join(tmp, "collector.log")
        collector = subprocess.Popen(
            ["ip", "netns", "exec", b, os.path.join(build, "bin", "bpfix-collector"), "--listen",
             f"tcp://127.0.0.1:{PORT}", "--output-dir", out_dir, "--metrics", f"127.0.0.1:{COLLECTOR_METRICS}"],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        ex = None
        try:
            deadline = time.monotonic() + 10 * TIME_SCALE
            while "listening on tcp" not in open(log).read() and time.monotonic() < deadline:
                time.sleep(0.05)
            ex = Exporter(build, b, [if_b], f"tcp://127.0.0.1:{PORT}", os.path.join(tmp, "exporter.log"),
                          extra=["--idle-timeout", "1", "--metrics", f"127.0.0.1:{EXPORTER_METRICS}"])
            if not ex.wait_log("collector tcp://127.0.0.1"):
                failures.append("the exporter never connected:\n" + ex.text())
                return ""
            # 1. Health.
            for who, port in (("collector", COLLECTOR_METRICS), ("exporter", EXPORTER_METRICS)):
                code, text = curl(b, port, "/health")
                print(f"{who} /health: {code} {text.strip()}")
                if code != 200:
                    failures.append(f"{who} /health: {code} {text!r}")
            code, text = curl(b, EXPORTER_METRICS, "/health")
            if "metering 1 interface;" not in text or "connected" not in text:
                failures.append(f"exporter /health says {text!r}")

            # 2. Known traffic: 40 flows x 3 packets of 128 bytes (IP), to
            # a socket that takes them (no ICMP port unreachable back).
            sink = subprocess.Popen(["ip", "netns", "exec", b, "/usr/bin/python3", "-c",
                                     "import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                     f"s.bind(('{B_IP}',9000))\nprint('bound',flush=True)\ntime.sleep(120)\n"],
                                    stdout=subprocess.PIPE, text=True)
            lab_procs.append(sink)
            sink.stdout.readline()
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c",
               "import socket\n"
               "for i in range(40):\n"
               "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               f"    s.bind(('{A_IP}',21000+i))\n"
               f"    [s.sendto(b'm'*100,('{B_IP}',9000)) for _ in range(3)]\n")
            deadline = time.monotonic() + 15 * TIME_SCALE
            while True:
                ex_metrics = parse(curl(b, EXPORTER_METRICS, "/metrics")[1], "exporter", [])
                if total(ex_metrics, "bpfix_exporter_flow_records_total") >= 40 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(1.0)  # the last message reaches the collector
            code, ex_text = curl(b, EXPORTER_METRICS, "/metrics")
            code_c, col_text = curl(b, COLLECTOR_METRICS, "/metrics")
            if code != 200 or code_c != 200:
                failures.append(f"/metrics answered {code} (exporter) and {code_c} (collector)")
            # 3. Valid exposition text.
            ex_metrics = parse(ex_text, "exporter", failures)
            col_metrics = parse(col_text, "collector", failures)
            want = {"bpfix_exporter_packets_total": 120, "bpfix_exporter_bytes_total": 120 * 128,
                    "bpfix_exporter_flow_records_total": 40, "bpfix_exporter_interfaces": 1,
                    "bpfix_exporter_collector_connects_total": 1, "bpfix_exporter_collector_reachable": 1,
                    "bpfix_exporter_records_not_sent_total": 0, "bpfix_exporter_map_full_packets_total": 0,
                    "bpfix_exporter_malformed_packets_total": 0, "bpfix_exporter_export_queue_bytes": 0,
                    "bpfix_exporter_kernel_map_capacity": 65536}
            for name, v in want.items():
                if total(ex_metrics, name) != v:
                    failures.append(f"exporter {name} = {total(ex_metrics, name)}, want {v}")
            sent = total(ex_metrics, "bpfix_exporter_records_total")
            got = total(col_metrics, "bpfix_collector_records_total")
            msgs, got_msgs = (total(ex_metrics, "bpfix_exporter_messages_sent_total"),
                              total(col_metrics, "bpfix_collector_messages_total"))
            # The collector also counts the template messages each
            # connection starts with (the exporter counts data messages).
            if sent < 40 or got != sent or got_msgs < msgs:
                failures.append(f"collector decoded {got} records in {got_msgs} messages; the exporter sent {sent} "
                                f"in {msgs}")
            if total(col_metrics, "bpfix_collector_lost_records_total") != 0:
                failures.append("the collector counts lost records")
            print(f"exporter: {total(ex_metrics, 'bpfix_exporter_packets_total'):.0f} packets, "
                  f"{total(ex_metrics, 'bpfix_exporter_bytes_total'):.0f} octets, "
                  f"{total(ex_metrics, 'bpfix_exporter_flow_records_total'):.0f} flow records, {sent:.0f} records "
                  f"in {msgs:.0f} messages; collector: {got:.0f} records in {got_msgs:.0f} messages; "
                  f"{len(ex_metrics)} and {len(col_metrics)} samples")

            # 4. The collector goes: health turns 503.
            collector.terminate()
            collector.wait(timeout=15 * TIME_SCALE)
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c",
               "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               f"s.bind(('{A_IP}',22000))\ns.sendto(b'n'*100,('{B_IP}',9000))\n")
            deadline = time.monotonic() + 15 * TIME_SCALE
            code, text = curl(b, EXPORTER_METRICS, "/health")
            while code != 503 and time.monotonic() < deadline:
                time.sleep(0.2)
                code, text = curl(b, EXPORTER_METRICS, "/health")
            print(f"exporter /health with the collector gone: {code} {text.strip()}")
            if code != 503 or "unreachable" not in text:
                failures.append(f"exporter /health with the collector gone: {code} {text!r}")
            m = parse(curl(b, EXPORTER_METRICS, "/metrics")[1], "exporter", failures)
            if total(m, "bpfix_exporter_collector_reachable") != 0:
                failures.append("bpfix_exporter_collector_reachable is not 0 with the collector gone")

            # 5. The exporter's metrics port taken: refused at start.
            dup = subprocess.run(["ip", "netns", "exec", b, os.path.join(build, "bin", "bpfix-exporter"),
                                  "--interface", if_b, "--collector", "file:" + os.path.join(tmp, "x.ipfix"),
                                  "--metrics", f"127.0.0.1:{EXPORTER_METRICS}", "--attach", "tc"],
                                 capture_output=True, text=True, timeout=30 * TIME_SCALE)
            if dup.returncode != 2 or f"cannot serve metrics on 127.0.0.1:{EXPORTER_METRICS}" not in dup.stderr:
                failures.append(f"a second exporter on the same metrics port: exit {dup.returncode}, "
                                f"{dup.stderr.strip()[-300:]!r}")
            # 6. Without --metrics, in a namespace whose loopback was never
            # brought up (no 127.0.0.1): the default address is best effort.
            # (With no address at all Linux still lets 127.0.0.1 bind; with
            # one, as on any real host, it does not.)
            c = f"bpmeC{lab.tag}"
            sh("ip", "netns", "add", c)
            lab.namespaces.append(c)  # removed with the others
            sh("ip", "-n", c, "link", "add", "bpmc0", "type", "veth", "peer", "name", "bpmc1")
            sh("ip", "-n", c, "addr", "add", "198.18.0.1/24", "dev", "bpmc0")
            sh("ip", "-n", c, "link", "set", "bpmc0", "up")
            nolo = Exporter(build, c, ["bpmnone*"], os.path.join(tmp, "nolo.ipfix"), os.path.join(tmp, "nolo.log"))
            time.sleep(0.5 * TIME_SCALE)
            alive = nolo.p.poll() is None
            rc_nolo = nolo.stop() if alive else nolo.p.returncode
            if not alive or rc_nolo != 0 or "running without them" not in nolo.text():
                failures.append(f"default metrics address without a loopback: alive={alive} exit {rc_nolo}:\n" +
                                nolo.text())
            rc = ex.stop()
            if rc not in (0, 1):  # 1: the record sent while the collector was away is counted as not sent
                failures.append(f"exporter exit code {rc}:\n" + ex.text())
        finally:
            for p in lab_procs:
                p.kill()
                p.wait()
            if ex and ex.p.poll() is None:
                ex.kill()
            if collector.poll() is None:
                collector.kill()
                collector.wait()
    return "/health 200 then 503 without a collector; /metrics valid, exporter 120 packets / 15360 octets / 40 " \
           "flows exact, collector records = exporter's"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "metrics_endpoints", body))
