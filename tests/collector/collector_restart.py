#!/usr/bin/python3
"""Zero-loss restarts (issue 19): the collector started as systemd's socket
activation starts it (the UDP and TCP sockets opened by this script, the
socket unit's part, and passed as LISTEN_FDS) is restarted twice with
SIGTERM while bpfix_ipfix_udp_blast sends 200,000 records/s over UDP.
Datagrams that arrive between two runs wait in the socket. Every record
sent must be stored once in every format (jsonl, csv, sqlite, ipfix), and
`replay` of the ipfix files must deliver every one to another collector.
Then a TCP exporter (bpfix-exporter, a pcap) connects while no collector
runs: its connection waits in the passed socket's backlog and the next run
stores its flows. Also: a socket passed with a URL that names another
address on its port is refused with a clear error; started on two threads
while eight exporters already send, each exporter is one session; and the
same restart with the collector's own socket loses records (the control).

  collector_restart.py BUILD_DIR
"""
import csv
import glob
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from collector_lib import Collector, udp_port_state  # noqa: E402
from ipfix_count import records_in_dir  # noqa: E402

RATE, SECONDS, SOURCES = 200000, 6, 2
BUF = 64 << 20
SO_RCVBUFFORCE = 33


def udp_drops(port):
    return udp_port_state(port)[1]


def udp_queued(port):
    return udp_port_state(port)[0]


def wait_read(port, limit=60):
    """Until the collector has read every queued datagram; the seconds it took."""
    t0 = time.monotonic()
    while udp_queued(port) and time.monotonic() - t0 < limit:
        time.sleep(0.05)
    time.sleep(0.2)
    return time.monotonic() - t0


def stored(out):
    """Data records per format in the output directory."""
    n = {"jsonl": 0, "csv": 0, "sqlite": 0, "ipfix": 0}
    for path in glob.glob(os.path.join(out, "*.jsonl")):
        with open(path) as f:
            n["jsonl"] += sum(1 for line in f if '"sourceIPv4Address"' in line)
    for path in glob.glob(os.path.join(out, "*.csv")):
        with open(path, newline="") as f:
            n["csv"] += sum(1 for row in csv.reader(f) if row and row[0] != "exporter")
    for path in glob.glob(os.path.join(out, "*.sqlite")):
        db = sqlite3.connect(path)
        n["sqlite"] += db.execute("select count(*) from flows").fetchone()[0]
        db.close()
    n["ipfix"] = records_in_dir(out)
    return n


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bpfix-collector-restart-")
    failures = []
    running = []
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUF)
        except PermissionError:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(64)
        uport, tport = udp.getsockname()[1], tcp.getsockname()[1]
        buf = udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if buf < 2 * (32 << 20):
            print(f"SKIP the UDP socket got a {buf}-byte receive buffer; a restart at {RATE} records/s needs 32 MiB "
                  "(run as root, or raise net.core.rmem_max)")
            return 77
        print(f"socket unit's part: udp://127.0.0.1:{uport} (receive buffer {buf} bytes), tcp://127.0.0.1:{tport}")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        extra = ["--format", "jsonl,csv,sqlite,ipfix", "--threads", "1"]

        def start(i):
            c = Collector(build, out, os.path.join(tmp, f"run{i}.log"), extra=extra, listen=(), passed=(udp, tcp))
            running.append(c)
            return c

        # 1. Two restarts under 200k records/s.
        c = start(0)
        if f"udp://127.0.0.1:{uport} (passed by systemd" not in c.text():
            failures.append("the collector did not say it serves the passed UDP socket:\n" + c.text())
        blast = subprocess.Popen([os.path.join(build, "bin", "bpfix_ipfix_udp_blast"), "127.0.0.1", str(uport),
                                  str(RATE), str(SECONDS), str(SOURCES)], stdout=subprocess.PIPE, text=True)
        summaries = []
        gaps = []
        for i in (1, 2):
            time.sleep(1.8)
            t0 = time.monotonic()
            rc = c.stop()
            t1 = time.monotonic()
            running.remove(c)
            summaries.append(c.summary())
            if rc != 0:
                failures.append(f"run {i - 1} exited {rc}:\n{c.text()[-2000:]}")
            c = start(i)
            gaps.append((t1 - t0, time.monotonic() - t1))
        line = blast.communicate(timeout=SECONDS + 30)[0]
        sent = int(re.search(r"sent_records=(\d+)", line).group(1))
        print(f"the last run read the datagrams queued meanwhile {wait_read(uport):.1f} s after the sender stopped")
        rc = c.stop()
        running.remove(c)
        summaries.append(c.summary())
        if rc != 0:
            failures.append(f"run 2 exited {rc}")
        for i, (stop_s, start_s) in enumerate(gaps):
            print(f"restart {i + 1}: stopping took {stop_s:.2f} s, starting {start_s:.2f} s")
        drops = udp_drops(uport)
        got = stored(out)
        print(f"sent {sent} records ({RATE}/s for {SECONDS} s from {SOURCES} exporters); stored: {got}; kernel "
              f"drops on the socket: {drops}")
        for i, s in enumerate(summaries):
            print(f"run {i}: records={s.get('records')} written={s.get('written')} "
                  f"lost_in_transit={s.get('lost_in_transit')} output_dropped={s.get('output_dropped')} "
                  f"udp_kernel_drops={s.get('udp_kernel_drops')}")
            for k in ("lost_in_transit", "output_dropped", "udp_kernel_drops", "malformed"):
                if s.get(k) != "0":
                    failures.append(f"run {i}: {k}={s.get(k)}")
        if drops:
            failures.append(f"the kernel dropped {drops} datagrams on the passed socket")
        if sent < RATE * SECONDS * 0.9:
            failures.append(f"the sender sent only {sent} records")
        for fmt, n in got.items():
            if n != sent:
                failures.append(f"{fmt}: stored {n} of {sent} records")
        if sum(int(s.get("records", 0)) for s in summaries) != sent:
            failures.append(f"the runs decoded {[s.get('records') for s in summaries]}, want {sent} in all")

        # 2. replay of the ipfix files to another collector (TCP) stores every record.
        out2 = os.path.join(tmp, "replayed")
        os.mkdir(out2)
        d = Collector(build, out2, os.path.join(tmp, "replay-target.log"), listen=("tcp://127.0.0.1:0",))
        running.append(d)
        r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "replay", "--data-dir", out,
                            "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
                            "--to-collector", f"tcp://127.0.0.1:{d.tcp}"], capture_output=True, text=True, timeout=60)
        d.stop()
        running.remove(d)
        replayed = stored(out2)["jsonl"]
        print(f"replay: rc {r.returncode}, {replayed} records at the other collector "
              f"({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''})")
        if r.returncode != 0 or replayed != sent:
            failures.append(f"replay delivered {replayed} of {sent} records (rc {r.returncode}: {r.stderr[-500:]})")

        # 3. A TCP exporter that connects while no collector runs waits in
        # the backlog; the next run stores its flows.
        pcap = os.path.join(tmp, "in.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "interop", "make_pcap.py"), pcap], check=True,
                       capture_output=True)
        exp = subprocess.Popen([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", pcap, "--collector",
                                f"tcp://127.0.0.1:{tport}"], stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        c = start(3)
        try:
            err = exp.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            exp.kill()
            err = exp.communicate()[1]
        m = re.search(r"summary: (.*)", err)
        esum = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
        time.sleep(0.5)
        c.stop()
        running.remove(c)
        csum = c.summary()
        print(f"TCP exporter started before the collector: rc {exp.returncode}, exporter summary "
              f"records={esum.get('records')} not_sent_records={esum.get('not_sent_records')}; "
              f"collector records={csum.get('records')} written={csum.get('written')}")
        if exp.returncode != 0 or not esum.get("records") or esum.get("not_sent_records") != "0":
            failures.append(f"the TCP exporter that waited in the backlog: rc {exp.returncode}, {err[-800:]}")
        elif csum.get("records") != esum["records"] or csum.get("written") != esum["records"]:
            failures.append(f"the collector stored {csum.get('written')} of the TCP exporter's {esum['records']} "
                            "records")

        # 4. A URL on the passed socket's port with another address: refused, naming both.
        bad = subprocess.run(["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"',
                              os.path.join(build, "bin", "bpfix-collector"), "--listen", f"udp://127.0.0.2:{uport}",
                              "--output-dir", out, "--metrics", "off"],
                             env=dict(os.environ, LISTEN_FDS="1"), capture_output=True, text=True, timeout=20,
                             pass_fds=(3,), preexec_fn=lambda: os.dup2(udp.fileno(), 3))
        print(f"a url that disagrees with the passed socket: rc {bad.returncode}: {bad.stderr.strip()[-300:]}")
        if bad.returncode == 0 or f"udp://127.0.0.1:{uport}" not in bad.stderr or "127.0.0.2" not in bad.stderr:
            failures.append(f"a url that disagrees with the passed socket: rc {bad.returncode}, {bad.stderr}")

        # 5. Started (not passed sockets) on two threads while eight exporters
        # already send 2M records/s: each exporter is one session (its
        # datagrams stay on one of the two SO_REUSEPORT sockets from the
        # first on). Without the drop filter during the binds, 4 starts of 12
        # gave an exporter two sessions.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        for round_ in (1, 2):
            blast = subprocess.Popen([os.path.join(build, "bin", "bpfix_ipfix_udp_blast"), "127.0.0.1", str(port),
                                      "2000000", "1.5", "8"], stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)
            out3 = os.path.join(tmp, f"threads{round_}")
            os.mkdir(out3)
            c = Collector(build, out3, os.path.join(tmp, f"threads{round_}.log"), listen=(f"udp://127.0.0.1:{port}",),
                          extra=["--threads", "2", "--format", "ipfix"])
            running.append(c)
            blast.communicate(timeout=30)
            wait_read(port)
            c.stop()
            running.remove(c)
            news = re.findall(r"new UDP exporter (\S+) \(thread", c.text())
            print(f"started under load on 2 threads, round {round_}: {len(news)} sessions for "
                  f"{len(set(news))} exporters")
            if len(news) != 8 or len(set(news)) != 8:
                failures.append(f"started under load: sessions {news} (want 8 exporters, one session each)")

        # 6. The same restart without passed sockets (the collector binds its
        # own; stopping, it reads on for up to 5 s while datagrams keep
        # coming): what arrives while the port is closed is lost. This is what
        # the socket unit prevents, and shows that part 1 can fail.
        out4 = os.path.join(tmp, "unpassed")
        os.mkdir(out4)
        c = Collector(build, out4, os.path.join(tmp, "unpassed0.log"), listen=(f"udp://127.0.0.1:{port}",),
                      extra=["--threads", "1", "--format", "ipfix"])
        running.append(c)
        blast = subprocess.Popen([os.path.join(build, "bin", "bpfix_ipfix_udp_blast"), "127.0.0.1", str(port),
                                  str(RATE), "7", "1", "unconnected"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.8)
        c.stop()
        running.remove(c)
        c = Collector(build, out4, os.path.join(tmp, "unpassed1.log"), listen=(f"udp://127.0.0.1:{port}",),
                      extra=["--threads", "1", "--format", "ipfix"])
        running.append(c)
        line = blast.communicate(timeout=30)[0]
        sent = int(re.search(r"sent_records=(\d+)", line).group(1))
        wait_read(port)
        c.stop()
        running.remove(c)
        kept = records_in_dir(out4)
        print(f"the same restart with the collector's own socket: {kept} of {sent} records stored")
        if kept >= sent:
            failures.append(f"a restart without passed sockets stored {kept} of {sent}: the test cannot see loss")
    finally:
        for c in running:
            c.p.kill()
            c.p.wait()
        if os.environ.get("KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAIL " + "\nFAIL ".join(failures))
        return 1
    print("PASS collector_restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
