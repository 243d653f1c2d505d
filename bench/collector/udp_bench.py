#!/usr/bin/python3
"""UDP ingest benchmark: bpfix-collector against nfcapd (nfdump) on the same
IPFIX stream. For each offered load (records per second, paced), a sender
pinned to one CPU sends IPFIX over UDP loopback for --seconds to each
collector in turn (pinned to the other CPU); prints, per collector and
load: records received and stored, loss, collector CPU seconds, and records
per CPU-second.

  udp_bench.py BUILD_DIR [--loads 50000,100000,200000,400000] [--seconds 5] [--format jsonl|ipfix]

Records: the same 11-field IPv4 flow layout as ingest.py (45 bytes), 30 per
1,366-byte message; the template is repeated every 50 messages (and first).
Each collector gets a 32 MiB socket buffer (bpfix: its default; nfcapd: -B).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import FIELDS, record, template  # noqa: E402

PER_MSG = 30


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def send(port, rate, seconds):
    """Paced: 1 ms slots, each with the messages due. Returns records sent."""
    os.sched_setaffinity(0, {0})
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    recs = b"".join(record(i) for i in range(PER_MSG))
    data_set = struct.pack("!HH", 256, 4 + len(recs)) + recs
    tmpl = template()
    sent = seq = n = 0
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        due = int(now * rate / PER_MSG) + 1
        while n < due:
            sets = (tmpl + data_set) if n % 50 == 0 else data_set
            msg = struct.pack("!HHIII", 10, 16 + len(sets), int(time.time()), seq, 1) + sets
            s.sendto(msg, ("127.0.0.1", port))
            seq += PER_MSG
            sent += PER_MSG
            n += 1
        time.sleep(0.001)
    s.close()
    return sent


def run_bpfix(build, work, rate, seconds, fmt="jsonl"):
    out = os.path.join(work, "bpfix")
    os.makedirs(out)
    port = free_udp_port()
    log = os.path.join(work, "bpfix.log")
    p = subprocess.Popen(["taskset", "-c", "1", os.path.join(build, "bin", "bpfix-collector"), "--listen",
                          f"udp://127.0.0.1:{port}", "--output-dir", out, "--metrics", "off", "--format", fmt],
                         stderr=open(log, "w"))
    for _ in range(100):
        if "listening on udp" in open(log).read():
            break
        time.sleep(0.05)
    cpu0 = cpu_seconds(p.pid)
    sent = send(port, rate, seconds)
    time.sleep(1)
    cpu = cpu_seconds(p.pid) - cpu0
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    summ = dict(kv.split("=") for kv in re.search(r"summary: (.*)", open(log).read()).group(1).split())
    if fmt == "jsonl":
        stored = sum(1 for n in os.listdir(out) if n.endswith(".jsonl") for _ in open(os.path.join(out, n)))
    else:  # the stored messages, decoded back
        stored = 0
        for n in os.listdir(out):
            if n.endswith(".ipfix"):
                r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", os.path.join(out, n)],
                                   capture_output=True, text=True, check=True)
                stored += r.stdout.count("\n")
    return sent, stored, cpu, int(summ["udp_kernel_drops"])


def run_nfcapd(work, rate, seconds):
    out = os.path.join(work, "nfcapd")
    os.makedirs(out)
    port = free_udp_port()
    log = os.path.join(work, "nfcapd.log")
    p = subprocess.Popen(["taskset", "-c", "1", "nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", out, "-t",
                          "3600", "-B", str(32 << 20)], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(100):
        if subprocess.run(["ss", "-Hunl", f"sport = :{port}"], capture_output=True, text=True).stdout.strip():
            break
        time.sleep(0.05)
    cpu0 = cpu_seconds(p.pid)
    sent = send(port, rate, seconds)
    time.sleep(1)
    cpu = cpu_seconds(p.pid) - cpu0
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    text = open(log).read()
    flows = sum(int(x) for x in re.findall(r"Flows: (\d+)", text))
    return sent, flows, cpu, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--loads", default="50000,100000,200000,400000")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--format", default="jsonl", choices=("jsonl", "ipfix"), help="bpfix-collector's output")
    a = ap.parse_args()
    if not shutil.which("nfcapd"):
        print("udp_bench: needs nfcapd (apt-get install nfdump)", file=sys.stderr)
        return 2
    rows = []
    print("| collector | offered rec/s | sent | stored | lost | CPU s | records per CPU-s |\n|---|---|---|---|---|---|---|")
    for rate in [int(x) for x in a.loads.split(",")]:
        for name in ("bpfix", "nfcapd"):
            work = tempfile.mkdtemp(prefix="bpfix-udpbench-")
            try:
                if name == "bpfix":
                    sent, stored, cpu, drops = run_bpfix(a.build, work, rate, a.seconds, a.format)
                else:
                    sent, stored, cpu, drops = run_nfcapd(work, rate, a.seconds)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            per = stored / cpu if cpu > 0 else float("inf")
            rows.append({"collector": name, "offered": rate, "sent": sent, "stored": stored, "lost": sent - stored,
                         "cpu_s": cpu, "per_cpu_s": per})
            label = f"bpfix ({a.format})" if name == "bpfix" else name
            print(f"| {label} | {rate:,} | {sent:,} | {stored:,} | {sent - stored:,} | {cpu:.2f} | {per:,.0f} |",
                  flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
