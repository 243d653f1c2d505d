#!/usr/bin/python3
"""UDP ingest benchmark: bpfix-collector against nfcapd (nfdump) and nfacctd
(pmacct) on the same IPFIX stream. For each offered load (records per
second), bpfix_ipfix_udp_blast (C++, sendmmsg, paced in 1 ms slots) pinned
to CPU 0 sends IPFIX over UDP loopback for --seconds to each collector in
turn, pinned to CPU 1. Prints, per collector and load: records sent and
stored, loss (sent - stored), the kernel's drop counter of the collector's
UDP socket(s) (/proc/net/udp, last column, summed over every socket on the
port), collector CPU seconds and records stored per CPU-second; then the
lowest load at which each collector lost records.

  udp_bench.py BUILD_DIR [--loads 200000,500000,1000000,2000000,3000000] [--seconds 5]
               [--format jsonl|ipfix] [--collectors bpfix,nfcapd,nfacctd] [--sources N]
               [--threads N] [--repeat N]

Records: the 11-field IPv4 flow layout of ingest.py (47 bytes), 30 per
1,430-byte message (1,482 with the template); the template first and
every 50 messages; sequence numbers count the records sent. --repeat runs
the whole series N times (interleaved, so that a noisy minute of a shared
VM hits every collector alike) and ends with the median per collector and
load, and bpfix's ratio to each peer's median. --sources spreads the load over N source
ports (N exporters to the collector).

How "stored" is counted:
  bpfix    --format jsonl: lines in the JSONL files; --format ipfix: data
           records in the .ipfix files, counted by bench/ipfix_count.py
           (an independent parser).
  nfcapd   the "Flows:" totals it logs per file at exit.
  nfacctd  print plugin, CSV appended every second, aggregated by
           (src, dst, ports, protocol): every record carries
           packetDeltaCount 10, so records = sum(PACKETS) / 10. Its core
           process hands records to the plugin process through a 64 MiB
           queue in 64 KiB buffers (pmacct's advice: 1:1000).
CPU: utime + stime of the collector, and for nfacctd of its plugin process
too (with the purge children it forks and reaps). Each collector's socket
buffer is 32 MiB (bpfix: its default; nfcapd: -B; nfacctd:
nfacctd_pipe_size); run as root, net.core.rmem_max is raised to 32 MiB
for the run (and put back) so that nfcapd and nfacctd get it too.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from ipfix_count import records_in_dir  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "collector"))
from collector_lib import udp_port_state  # noqa: E402

BUF = 32 << 20
SENDER_CPU, COLLECTOR_CPU = "0", "1"


def proc_cpu(pid, children=True):
    """utime + stime (+ reaped children's) of one process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(parts[11]) + int(parts[12]) + (int(parts[13]) + int(parts[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


def tree_cpu(pid):
    return proc_cpu(pid) + sum(proc_cpu(c) for c in child_pids(pid))


def udp_drops(port):
    """The kernel's drop counter summed over every UDP socket bound to `port`."""
    return udp_port_state(port)[1]


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_bound(port):
    for _ in range(200):
        if subprocess.run(["ss", "-Hunl", f"sport = :{port}"], capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on udp port {port}")


def send(build, port, rate, seconds, sources):
    r = subprocess.run(["taskset", "-c", SENDER_CPU, os.path.join(build, "bin", "bpfix_ipfix_udp_blast"), "127.0.0.1",
                        str(port), str(rate), str(seconds), str(sources)], capture_output=True, text=True, check=True)
    return int(re.search(r"sent_records=(\d+)", r.stdout).group(1))


def measure(build, pid, port, rate, seconds, sources):
    """Sends; waits until the collector is idle. Returns sent, CPU s, drops."""
    cpu0, drops0 = tree_cpu(pid), udp_drops(port)
    sent = send(build, port, rate, seconds, sources)
    # done when its CPU time stops moving (it has read what was queued)
    last, still = tree_cpu(pid), 0
    for _ in range(100):
        time.sleep(0.3)
        now = tree_cpu(pid)
        still = still + 1 if now == last else 0
        last = now
        if still >= 3:
            break
    return sent, last - cpu0, udp_drops(port) - drops0


def run_bpfix(build, work, rate, seconds, sources, fmt, threads):
    out = os.path.join(work, "bpfix")
    os.makedirs(out)
    port = free_udp_port()
    log = os.path.join(work, "bpfix.log")
    cmd = ["taskset", "-c", COLLECTOR_CPU, os.path.join(build, "bin", "bpfix-collector"), "--listen",
           f"udp://127.0.0.1:{port}", "--output-dir", out, "--metrics", "off", "--format", fmt]
    if threads:
        cmd += ["--threads", str(threads)]
    p = subprocess.Popen(cmd, stderr=open(log, "w"))
    try:
        wait_bound(port)
        sent, cpu, drops = measure(build, p.pid, port, rate, seconds, sources)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
    if fmt == "jsonl":
        stored = sum(1 for n in os.listdir(out) if n.endswith(".jsonl") for _ in open(os.path.join(out, n)))
    else:
        stored = records_in_dir(out)
    return sent, stored, cpu, drops


def run_nfcapd(build, work, rate, seconds, sources):
    out = os.path.join(work, "nfcapd")
    os.makedirs(out)
    port = free_udp_port()
    log = os.path.join(work, "nfcapd.log")
    p = subprocess.Popen(["taskset", "-c", COLLECTOR_CPU, "nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", out,
                          "-t", "3600", "-B", str(BUF)], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        wait_bound(port)
        sent, cpu, drops = measure(build, p.pid, port, rate, seconds, sources)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
    flows = sum(int(x) for x in re.findall(r"Flows: (\d+)", open(log).read()))
    return sent, flows, cpu, drops


def run_nfacctd(build, work, rate, seconds, sources):
    port = free_udp_port()
    csv = os.path.join(work, "nfacctd.csv")
    conf = os.path.join(work, "nfacctd.conf")
    with open(conf, "w") as f:
        f.write(f"""daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: {port}
nfacctd_pipe_size: {BUF}
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto
print_output: csv
print_output_file: {csv}
print_output_file_append: true
print_refresh_time: 1
plugin_pipe_size: {64 << 20}
plugin_buffer_size: {64 << 10}
""")
    log = os.path.join(work, "nfacctd.log")
    p = subprocess.Popen(["taskset", "-c", COLLECTOR_CPU, "nfacctd", "-f", conf], stdout=open(log, "w"),
                         stderr=subprocess.STDOUT)
    try:
        wait_bound(port)
        sent, cpu, drops = measure(build, p.pid, port, rate, seconds, sources)
        time.sleep(1.5)  # one more purge of the print cache
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=120)
    packets = 0
    if os.path.exists(csv):
        with open(csv) as f:
            for line in f:
                cols = line.strip().split(",")
                if cols and cols[0] != "SRC_IP" and len(cols) >= 7:
                    packets += int(cols[5])
    return sent, packets // 10, cpu, drops


def set_rmem_max(value):
    path = "/proc/sys/net/core/rmem_max"
    try:
        old = int(open(path).read())
        if old < value:
            with open(path, "w") as f:
                f.write(str(value))
        return old
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--loads", default="200000,500000,1000000,2000000,3000000")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--format", default="ipfix", choices=("jsonl", "ipfix"), help="bpfix-collector's output")
    ap.add_argument("--collectors", default="bpfix,nfcapd,nfacctd")
    ap.add_argument("--sources", type=int, default=1, help="exporters (source ports) sharing the load")
    ap.add_argument("--threads", type=int, default=0, help="bpfix-collector --threads (0: its default)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the whole series; medians at the end")
    a = ap.parse_args()
    names = a.collectors.split(",")
    for tool in {"nfcapd", "nfacctd"} & set(names):
        if not shutil.which(tool):
            print(f"udp_bench: needs {tool} (apt-get install {'nfdump' if tool == 'nfcapd' else 'pmacct'})",
                  file=sys.stderr)
            return 2
    old_rmem = set_rmem_max(BUF)
    rows, first_loss = [], {}
    print("| collector | offered rec/s | sent | stored | lost | kernel drops | CPU s | records per CPU-s |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    try:
        for rate, name in [(r, n) for _ in range(a.repeat) for r in (int(x) for x in a.loads.split(","))
                           for n in names]:
            work = tempfile.mkdtemp(prefix="bpfix-udpbench-")
            try:
                if name == "bpfix":
                    r = run_bpfix(a.build, work, rate, a.seconds, a.sources, a.format, a.threads)
                elif name == "nfcapd":
                    r = run_nfcapd(a.build, work, rate, a.seconds, a.sources)
                else:
                    r = run_nfacctd(a.build, work, rate, a.seconds, a.sources)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            sent, stored, cpu, drops = r
            per = stored / cpu if cpu > 0 else float("inf")
            rows.append({"collector": name, "offered": rate, "sent": sent, "stored": stored, "lost": sent - stored,
                         "kernel_drops": drops, "cpu_s": round(cpu, 2), "per_cpu_s": round(per)})
            if stored < sent or drops:
                first_loss[name] = min(first_loss.get(name, rate), rate)
            label = f"bpfix ({a.format})" if name == "bpfix" else name
            print(f"| {label} | {rate:,} | {sent:,} | {stored:,} | {sent - stored:,} | {drops:,} | {cpu:.2f} | "
                  f"{per:,.0f} |", flush=True)
    finally:
        if old_rmem is not None and old_rmem < BUF:
            with open("/proc/sys/net/core/rmem_max", "w") as f:
                f.write(str(old_rmem))
    print()
    for name in names:
        print(f"{name}: " + (f"first loss at {first_loss[name]:,} records/s" if name in first_loss
                             else "no loss at any load"))
    if a.repeat > 1:
        print(f"\nmedians of {a.repeat} runs:\n")
        print("| offered rec/s | " + " | ".join(f"{n} records per CPU-s" for n in names) +
              "".join(f" | bpfix / {n}" for n in names if n != "bpfix" and "bpfix" in names) + " |")
        print("|---" * (len(names) + sum(1 for n in names if n != "bpfix" and "bpfix" in names) + 1) + "|")
        for rate in [int(x) for x in a.loads.split(",")]:
            med = {n: statistics.median(r["per_cpu_s"] for r in rows if r["collector"] == n and r["offered"] == rate)
                   for n in names}
            ratios = "".join(f" | {med['bpfix'] / med[n]:.2f}x" for n in names if n != "bpfix" and "bpfix" in names)
            print(f"| {rate:,} | " + " | ".join(f"{med[n]:,.0f}" for n in names) + ratios + " |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
