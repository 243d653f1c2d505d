#!/usr/bin/python3
"""What kill -9 costs (docs/operations.md): records an exporter handed to
the kernel that no file holds, per transport, measured on loopback.

  kill_loss.py BUILD_DIR [--rate 200000] [--rounds 3]

Collector killed: bpfix-collector (--format ipfix) receives a paced IPFIX
stream (the 47-byte records of bpfix_ipfix_udp_blast, 30 per message) from
this script over TCP, SCTP (when the kernel has it) and UDP; 1.5 s in it
is killed with SIGKILL. The sender goes on until its socket fails (or
0.5 s), counting every message the kernel took (sendall returned), before
and after the kill. A new collector on the same directory finishes the
.partial files (crash recovery); the records in the .ipfix files are
counted. Lost = taken - stored; also as milliseconds of traffic at the
rate. "udp-passed": the UDP socket is held here and passed to the
collector (as bpfix-collector.socket does), and a new collector takes it
over right after the kill (as Restart=on-failure would, 2 s later).

Exporter killed: a child process writes 20,000 messages to a TCP
connection as fast as the collector takes them, then is killed with
SIGKILL at once; the collector's files must hold every record the child's
kernel took (the kernel delivers a dead process's socket buffer).

Prints one line per transport and round, then the median per transport.
"""
import argparse
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "collector"))
from ipfix_count import records_in_dir  # noqa: E402
from collector_lib import Collector  # noqa: E402

PER_MESSAGE = 30
FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (2, 8), (1, 8), (152, 8), (153, 8)]
RECORD = struct.pack("!4s4sHHBBBQQQQ", bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 1000, 53, 17, 0, 0, 10, 1000,
                     0, 0)
TEMPLATE_SET = struct.pack("!HHHH", 2, 8 + 4 * len(FIELDS), 256, len(FIELDS)) + b"".join(
    struct.pack("!HH", i, n) for i, n in FIELDS)
DATA_SET = struct.pack("!HH", 256, 4 + PER_MESSAGE * len(RECORD)) + RECORD * PER_MESSAGE


def message(seq, with_template):
    body = (TEMPLATE_SET if with_template else b"") + DATA_SET
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, 1) + body


def collector(build, out, log, kind, passed=None):
    if passed:
        return Collector(build, out, log, ["--format", "ipfix", "--threads", "1"], listen=(), passed=(passed,))
    return Collector(build, out, log, ["--format", "ipfix", "--threads", "1"], listen=(f"{kind}://127.0.0.1:0",))


def port_of(c, kind):
    import re
    return int(re.search(rf"listening on {kind}://127\.0\.0\.1:(\d+)", c.text()).group(1))


def collector_killed(build, tmp, kind, rate, n):
    """Records the kernel took before the kill, after it, and stored."""
    out = os.path.join(tmp, f"{kind}{n}")
    os.mkdir(out)
    held = None
    if kind == "udp-passed":
        # The socket unit's part: the socket outlives the collector, and a
        # new one (systemd's Restart=on-failure) takes it over at once.
        held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        held.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        held.bind(("127.0.0.1", 0))
        kind = "udp"
    c = collector(build, out, os.path.join(tmp, f"{kind}{n}.log"), kind, held)
    port = port_of(c, kind)
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst = ("127.0.0.1", port)
        send = lambda b: s.sendto(b, dst)  # noqa: E731
    else:
        proto = socket.IPPROTO_SCTP if kind == "sctp" else 0
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        s.connect(("127.0.0.1", port))
        send = s.sendall
    taken = 0
    taken_at_kill = None
    seq = 0
    t0 = time.monotonic()
    killed_at = None
    per_tick = rate / PER_MESSAGE / 1000  # messages per millisecond
    due = 0.0
    while True:
        now = time.monotonic() - t0
        if killed_at is None and now >= 1.5:
            c.p.send_signal(signal.SIGKILL)
            c.p.wait()
            killed_at = now
            taken_at_kill = taken
            if held:
                c = collector(build, out, os.path.join(tmp, f"{kind}{n}-restart.log"), kind, held)
        if killed_at is not None and now - killed_at > 0.5:
            break
        due += per_tick
        try:
            while due >= 1:
                send(message(seq, seq % (50 * PER_MESSAGE) == 0 or kind != "udp" and seq == 0))
                seq += PER_MESSAGE
                taken += PER_MESSAGE
                due -= 1
        except OSError:
            break
        time.sleep(0.001)
    s.close()
    if held:
        time.sleep(0.5)
        c.stop()
        held.close()
    else:
        # Crash recovery finishes the .partial files.
        collector(build, out, os.path.join(tmp, f"{kind}{n}-recover.log"), kind).stop()
    return taken_at_kill, taken - taken_at_kill, records_in_dir(out)


def exporter_killed(build, tmp, n):
    out = os.path.join(tmp, f"exporter{n}")
    os.mkdir(out)
    c = collector(build, out, os.path.join(tmp, f"exporter{n}.log"), "tcp")
    port = port_of(c, "tcp")
    code = ("import socket, sys, os\n"
            f"sys.path.insert(0, {HERE!r})\n"
            "from kill_loss import message\n"
            "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
            "for i in range(20000):\n"
            "    s.sendall(message(i * 30, i == 0))\n"
            "os.write(1, b'written\\n')\n"
            "import time; time.sleep(60)\n")
    child = subprocess.Popen(["/usr/bin/python3", "-c", code, str(port)], stdout=subprocess.PIPE)
    child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.5)
    c.stop()
    return 20000 * PER_MESSAGE, records_in_dir(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rate", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="bpfix-kill-loss-")
    kinds = ["tcp", "udp", "udp-passed"]
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        kinds.insert(1, "sctp")
    except OSError:
        print("no SCTP in this kernel: skipped")
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"kill -9 of the collector at {a.rate} records/s, commit {commit}, {time.strftime('%Y-%m-%d')}")
    lost = {k: [] for k in kinds}
    try:
        for n in range(a.rounds):
            for k in kinds:
                before, after, stored = collector_killed(build, tmp, k, a.rate, n)
                lost[k].append(before + after - stored)
                print(f"  {k} round {n + 1}: taken by the kernel {before} before the kill and {after} after it, "
                      f"stored {stored}, lost {before + after - stored} "
                      f"({(before + after - stored) / a.rate * 1000:.0f} ms of traffic)")
        for k in kinds:
            m = statistics.median(lost[k])
            print(f"median {k}: {m:.0f} records lost ({m / a.rate * 1000:.0f} ms at {a.rate}/s)")
        written, stored = exporter_killed(build, tmp, 0)
        print(f"kill -9 of a TCP exporter after it wrote {written} records: {stored} stored, "
              f"{written - stored} lost")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
