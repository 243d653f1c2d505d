#!/usr/bin/python3
"""Collector ingest benchmark: one TCP exporter streams IPFIX flow records
into bpfix-collector as fast as the collector reads them; prints records
per second of wall time and per CPU-second of the collector, and checks
that every record sent was written (zero loss).

  ingest.py BUILD_DIR [--records N] [--per-message K] [--cpu C] [--format jsonl|ipfix]

The records use bpfix's IPv4 flow layout (addresses, ports, protocol,
counters, millisecond timestamps: 47 bytes on the wire). The collector is
pinned to CPU C (default 1), the sender to the other one. The records
written are counted in the output files: JSONL lines, or the data records
of the .ipfix files (bench/ipfix_count.py, a parser of its own).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from ipfix_count import records_in_dir  # noqa: E402

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (2, 8), (1, 8), (152, 8), (153, 8)]


def template():
    rec = struct.pack("!HH", 256, len(FIELDS)) + b"".join(struct.pack("!HH", i, l) for i, l in FIELDS)
    return struct.pack("!HH", 2, 4 + len(rec)) + rec


def record(i):
    t = 1_700_000_000_000 + i
    return struct.pack("!4s4sHHBBBQQQQ", bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]),
                       bytes([192, 0, 2, 1]), 1024 + i % 60000, 443, 6, 0x18, 0, 10, 1500, t, t + 5)


def message(seq, sets):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, 1) + body


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--records", type=int, default=3_000_000)
    ap.add_argument("--per-message", type=int, default=1000)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--format", default="jsonl", choices=("jsonl", "ipfix"), help="bpfix-collector's output")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bpfix-ingest-")
    try:
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        log = os.path.join(tmp, "collector.log")
        p = subprocess.Popen(["taskset", "-c", str(a.cpu), os.path.join(a.build, "bin", "bpfix-collector"),
                              "--listen", "tcp://127.0.0.1:0", "--output-dir", out, "--metrics", "off",
                              "--format", a.format],
                             stderr=open(log, "w"))
        port = None
        for _ in range(100):
            m = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", open(log).read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if port is None:
            print("collector did not start: " + open(log).read())
            return 1
        n_msgs = a.records // a.per_message
        data_set = b"".join(record(i) for i in range(a.per_message))
        data_set = struct.pack("!HH", 256, 4 + len(data_set)) + data_set
        msgs = [message(0, [template(), data_set])] + [message((k + 1) * a.per_message, [data_set])
                                                      for k in range(min(n_msgs - 1, 256))]
        s = socket.create_connection(("127.0.0.1", port))
        cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
        sent = 0
        for k in range(n_msgs):
            if k == 0:
                s.sendall(msgs[0])
            else:
                # sequence numbers must advance: patch them into a prebuilt message
                m = bytearray(msgs[1 + (k - 1) % (len(msgs) - 1)])
                struct.pack_into("!I", m, 8, k * a.per_message)
                s.sendall(m)
            sent += a.per_message
        s.close()
        # wait until the collector has written everything
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=300)
        t1, cpu1 = time.monotonic(), None
        text = open(log).read()
        m = re.search(r"summary: (.*)", text)
        summ = dict(kv.split("=") for kv in m.group(1).split())
        cpu = float(re.search(r"cpu_seconds=([\d.]+)", text).group(1)) if "cpu_seconds=" in text else None
        written = int(summ["written"]) if a.format == "jsonl" else None  # the summary counts record formats
        if a.format == "jsonl":
            lines = sum(1 for n in os.listdir(out) if n.endswith(".jsonl") for _ in open(os.path.join(out, n)))
        else:
            lines = records_in_dir(out)
        wall = t1 - t0
        print(json.dumps({"format": a.format, "records_sent": sent, "records_written": written, "records_in_files": lines,
                          "lost": sent - lines, "wall_s": round(wall, 3), "records_per_s": round(lines / wall),
                          "summary": summ}))
        return 0 if lines == sent else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
