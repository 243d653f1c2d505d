#!/usr/bin/python3
"""Both daemons started as systemd starts a Type=notify service with
WatchdogSec: NOTIFY_SOCKET (a unix datagram socket this test owns) and
WATCHDOG_USEC in their environment, least privilege (the collector as
nobody without capabilities, the exporter as nobody with CAP_BPF,
CAP_NET_ADMIN and CAP_PERFMON only), in a network namespace.
1. The collector says READY=1 (sent from its own PID, as systemd checks)
   and at that moment its TCP port already accepts connections.
2. The exporter says READY=1 and at that moment its TC filters are on the
   veth.
3. Both ping WATCHDOG=1 at half of WATCHDOG_USEC (300 ms here), with
   STATUS lines that follow the traffic: 40 UDP flows sent through the
   veth appear in the exporter's and the collector's counts.
4. SIGHUP reloads the exporter as Type=notify-reload expects:
   RELOADING=1 with MONOTONIC_USEC, then READY=1 once done; it keeps
   running. SIGTERM: each says STOPPING=1 and exits 0; every flow
   reached the collector.
5. A NOTIFY_SOCKET that is not a path or an abstract name is refused at
   start with exit 2 and a message naming it.
Everything made here is removed, also on failure.

usage: systemd_notify.py BUILD_DIR
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import LEAST_PRIVILEGE, TIME_SCALE, Exporter, Lab, our_filters, run_test, sh  # noqa: E402

A_IP, B_IP = "10.213.0.1", "10.213.0.2"
PORT = 47741
WATCHDOG_USEC = 600_000
NOBODY = 65534


class NotifySocket:
    """The service manager's end: datagrams with their sender's PID."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        os.chmod(path, 0o777)  # the daemons run as nobody
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.settimeout(0.05)
        self.got = []  # (time, pid, {key: value}, raw)

    def poll(self):
        while True:
            try:
                data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
            except (socket.timeout, BlockingIOError):
                return
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            text = data.decode()
            fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
            self.got.append((time.monotonic(), pid, fields, text))

    def wait(self, pred, timeout=10, since=0):
        """The first message (pid, fields) for which pred holds, from
        message number `since` on."""
        deadline = time.monotonic() + timeout * TIME_SCALE
        seen = since
        while True:
            self.poll()
            for m in self.got[seen:]:
                if pred(m[1], m[2]):
                    return m
            seen = len(self.got)
            if time.monotonic() > deadline:
                return None

    def of(self, pid, key):
        return [m for m in self.got if m[1] == pid and key in m[2]]

    def close(self):
        self.s.close()


def body(build, tmp, failures, extra):
    notify_path = os.path.join(tmp, "notify")
    note = NotifySocket(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    out_dir = os.path.join(tmp, "out")
    os.mkdir(out_dir)
    os.chown(out_dir, NOBODY, NOBODY)
    collector_log = os.path.join(tmp, "collector.log")
    collector = ex = None
    with Lab("bpsd") as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpsa" + lab.tag, "bpsb" + lab.tag
        lab.veth(a, if_a, A_IP + "/24", b, if_b, B_IP + "/24")
        try:
            # 1. The collector: as nobody, no capabilities.
            collector = subprocess.Popen(
                ["ip", "netns", "exec", b, "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", os.path.join(build, "bin", "bpfix-collector"),
                 "--listen", f"tcp://127.0.0.1:{PORT}", "--output-dir", out_dir, "--format", "jsonl",
                 "--metrics", "off"],
                env=env, stdout=subprocess.DEVNULL, stderr=open(collector_log, "w"))
            m = note.wait(lambda pid, f: pid == collector.pid and f.get("READY") == "1")
            if not m:
                failures.append("the collector never said READY=1:\n" + open(collector_log).read())
                return ""
            probe = sh("ip", "netns", "exec", b, "/usr/bin/python3", "-c",
                       f"import socket; socket.create_connection(('127.0.0.1', {PORT}), timeout=2); print('ok')",
                       check=False)
            if "ok" not in probe.stdout:
                failures.append(f"the collector said READY=1 but its port refused a connection: {probe.stderr}")
            if f"tcp://127.0.0.1:{PORT}" not in m[2].get("STATUS", ""):
                failures.append(f"the collector's READY message has no listen address: {m[3]!r}")
            print(f"collector ready: {m[3]!r}")

            # 2. The exporter: as nobody with the three capabilities.
            ex = Exporter(build, b, [if_b], f"tcp://127.0.0.1:{PORT}", os.path.join(tmp, "exporter.log"),
                          wrap=LEAST_PRIVILEGE, extra=["--idle-timeout", "1"], env=env)
            m = note.wait(lambda pid, f: pid == ex.p.pid and f.get("READY") == "1")
            hooks = our_filters(b, if_b)
            if not m:
                failures.append("the exporter never said READY=1:\n" + ex.text())
                return ""
            if not hooks:
                failures.append("the exporter said READY=1 with nothing attached to " + if_b)
            if "metering 1 interface;" not in m[2].get("STATUS", ""):
                failures.append(f"the exporter's READY message does not say what it meters: {m[3]!r}")
            print(f"exporter ready: {m[3]!r}, hooks {len(hooks)}")

            # 3. Traffic, then watchdog pings with counts that follow it.
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c",
               "import socket\n"
               "for i in range(40):\n"
               "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               f"    s.bind(('{A_IP}',20000+i))\n"
               f"    s.sendto(b'x'*100,('{B_IP}',9000))\n")
            want = re.compile(r"(\d+) flow records")
            m = note.wait(lambda pid, f: pid == ex.p.pid and "WATCHDOG" in f and want.search(f.get("STATUS", ""))
                          and int(want.search(f["STATUS"]).group(1)) >= 40, timeout=15)
            if not m:
                failures.append("no exporter watchdog ping counted the 40 flows: " +
                                repr([x[3] for x in note.of(ex.p.pid, "WATCHDOG")[-3:]]))
            m = note.wait(lambda pid, f: pid == collector.pid and "WATCHDOG" in f and
                          re.search(r"(\d+) records", f.get("STATUS", "")) and
                          int(re.search(r"(\d+) records", f["STATUS"]).group(1)) >= 40, timeout=15)
            if not m:
                failures.append("no collector watchdog ping counted the 40 records: " +
                                repr([x[3] for x in note.of(collector.pid, "WATCHDOG")[-3:]]))
            # Pings keep coming at about half of WATCHDOG_USEC (timed as
            # they arrive: read without pause for 2 s).
            note.poll()
            t0 = time.monotonic()
            while time.monotonic() < t0 + 2 * TIME_SCALE:
                note.poll()
            period = WATCHDOG_USEC / 2e6
            for name, pid in (("collector", collector.pid), ("exporter", ex.p.pid)):
                pings = [x[0] for x in note.of(pid, "WATCHDOG") if x[0] > t0]
                gaps = [b2 - a2 for a2, b2 in zip(pings, pings[1:])]
                if len(pings) < 4 or max(gaps) > 2 * period * TIME_SCALE + 0.1:
                    failures.append(f"{name}: {len(pings)} watchdog pings, largest gap "
                                    f"{max(gaps, default=0):.3f} s (want one every {period:.3f} s)")
                else:
                    print(f"{name}: {len(pings)} watchdog pings in {pings[-1] - pings[0]:.2f} s, gaps "
                          f"{min(gaps):.3f}..{max(gaps):.3f} s")

            # SIGHUP: RELOADING=1 (with the monotonic time systemd wants),
            # then READY=1 again; the exporter keeps running.
            note.poll()
            before = len(note.got)
            os.kill(ex.p.pid, signal.SIGHUP)
            rl = note.wait(lambda pid, f: pid == ex.p.pid and f.get("RELOADING") == "1", since=before)
            if not rl or not rl[2].get("MONOTONIC_USEC", "").isdigit():
                failures.append(f"SIGHUP: no RELOADING=1 with MONOTONIC_USEC from the exporter: {rl and rl[3]!r}")
            elif not note.wait(lambda pid, f: pid == ex.p.pid and f.get("READY") == "1",
                               since=note.got.index(rl)):
                failures.append("SIGHUP: the exporter did not say READY=1 after reloading:\n" + ex.text())
            elif ex.p.poll() is not None or "reload: applied (changed: nothing)" not in ex.text():
                failures.append("SIGHUP: the exporter did not reload and keep running:\n" + ex.text())
            else:
                print(f"reload: {rl[3]!r}, then READY=1")

            # 4. SIGTERM: STOPPING=1, exit 0, every flow delivered.
            rc = ex.stop()
            if rc != 0:
                failures.append(f"exporter exit code {rc}:\n" + ex.text())
            if not note.wait(lambda pid, f: pid == ex.p.pid and f.get("STOPPING") == "1", timeout=2):
                failures.append("the exporter did not say STOPPING=1")
            collector.terminate()
            rc = collector.wait(timeout=15 * TIME_SCALE)
            if rc != 0:
                failures.append(f"collector exit code {rc}:\n" + open(collector_log).read())
            if not note.wait(lambda pid, f: pid == collector.pid and f.get("STOPPING") == "1", timeout=2):
                failures.append("the collector did not say STOPPING=1")
            summary = open(collector_log).read()
            got = re.search(r"summary: .* records=(\d+)", summary)
            made = re.search(r"summary: .* records=(\d+)", ex.text())
            if not got or not made or got.group(1) != made.group(1):
                failures.append(f"collector records {got and got.group(1)}, exporter {made and made.group(1)}")
        finally:
            for p in (ex.p if ex else None, collector):
                if p and p.poll() is None:
                    p.kill()
                    p.wait()
            note.close()

    # 5. A broken NOTIFY_SOCKET is an error at start.
    bad = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--listen", "tcp://127.0.0.1:0",
                          "--output-dir", out_dir, "--metrics", "off"],
                         env=dict(os.environ, NOTIFY_SOCKET="run/notify"), capture_output=True, text=True,
                         timeout=10 * TIME_SCALE)
    if bad.returncode != 2 or "NOTIFY_SOCKET 'run/notify'" not in bad.stderr:
        failures.append(f"NOTIFY_SOCKET=run/notify: exit {bad.returncode}, {bad.stderr.strip()!r}")
    return f"READY=1 from both once serving, watchdog pings every {WATCHDOG_USEC // 2000} ms with live counts, " \
           "STOPPING=1 on SIGTERM"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "systemd_notify", body))
