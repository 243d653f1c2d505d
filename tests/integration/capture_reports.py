#!/usr/bin/python3
"""Integration (root): packet reports (RFC 7133) from the exporter into the
collector's pcap store, read back through GET /api/v1/pcap and
`bpfix-collector pcap`, against tcpdump on the same interface, in network
namespaces made here.

B runs dnsmasq, bpfix-collector (TCP on B's loopback, pcap store in a
temporary directory, HTTP API on loopback) and the exporter metering B's
veth with `[capture] export = true` and a kernel rule for UDP port 53.
A has two addresses; dig asks B from each, and unrelated TCP crosses too.
1. The store holds exactly tcpdump's 'udp port 53' packets.
2. /api/v1/pcap with the time range and filter=host A2 returns exactly
   tcpdump's 'udp port 53 and host A2' packets, in time order, byte for
   byte, with their original lengths; exporter=ADDR too.
3. `bpfix-collector pcap` on the data directory writes the same bytes.
4. Bad parameters get a 4xx with a reason (unparsable time, empty range,
   bad filter, unknown exporter, unknown parameter); the CLI exits non-zero
   and leaves no file.
5. Over UDP ([transport] mtu 1500; MTU 9000 on the veth): a 3042-byte
   frame to port 53 arrives as a report cut to what one message holds,
   with its original length; every datagram the exporter sent fits 1500
   bytes.
Everything made here is removed, also on failure.

usage: capture_reports.py BUILD_DIR
"""
import datetime
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, read_pcap, sh  # noqa: E402

A_IP, A2_IP, B_IP = "198.51.100.1", "198.51.100.3", "198.51.100.2"


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_ns(ns):
    """Exact to the nanosecond, with an offset of +01:00 (same instant)."""
    t = datetime.datetime.fromtimestamp(ns // 1_000_000_000 + 3600, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}+01:00"


class Collector:
    def __init__(self, build, ns, out_dir, log, listen):
        self.log = log
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, os.path.join(build, "bin", "bpfix-collector"),
                                   "--listen", listen, "--output-dir", out_dir, "--metrics", "127.0.0.1:0",
                                   "--rotate-interval", "60"],
                                  stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        deadline = time.monotonic() + 10
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            m = re.search(r"stored packets on http://127\.0\.0\.1:(\d+)/api/v1/pcap", open(log).read())
            self.port = int(m.group(1)) if m else None
            if self.p.poll() is not None:
                raise SystemExit("FAIL collector exited at start:\n" + open(log).read())
            time.sleep(0.05)
        if self.port is None:
            self.p.kill()
            raise SystemExit("FAIL collector did not start:\n" + open(log).read())

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout=20)


def api(ns, port, params):
    """GET /api/v1/pcap inside the namespace (curl): (status, body bytes)."""
    url = f"http://127.0.0.1:{port}/api/v1/pcap?" + urllib.parse.urlencode(params)
    r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "-", "-w", "\n%{http_code}", url],
                       capture_output=True)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), body


def compare(failures, what, got, want, cut=None):
    if len(got) != len(want):
        failures.append(f"{what}: {len(got)} packets, want {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if g[1] != w[1] or g[2] != (w[2][:len(g[2])] if cut else w[2]):
            failures.append(f"{what}: packet {i + 1} differs: {len(g[2])}/{g[1]} bytes {g[2][:40].hex()} vs "
                            f"{len(w[2])}/{w[1]} bytes {w[2][:40].hex()}")
            break
    ts = [g[0] for g in got]
    if ts != sorted(ts):
        failures.append(f"{what}: not in time order")


def body(build, tmp, failures, extra):
    with Lab("bprp") as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpra" + lab.tag, "bprb" + lab.tag
        lab.veth(a, if_a, A_IP + "/24", b, if_b, B_IP + "/24")
        sh("ip", "-n", a, "addr", "add", A2_IP + "/24", "dev", if_a)
        mac_a = sh("ip", "netns", "exec", a, "cat", f"/sys/class/net/{if_a}/address").stdout.strip()
        sh("ip", "-n", b, "neigh", "replace", A2_IP, "lladdr", mac_a, "dev", if_b)
        for ns, ifn in ((a, if_a), (b, if_b)):
            sh("ip", "-n", ns, "link", "set", ifn, "mtu", "9000")
        dnsmasq = subprocess.Popen(["ip", "netns", "exec", b, "dnsmasq", "-k", "--conf-file=/dev/null",
                                    "--no-resolv", "--no-hosts", "--bind-interfaces", f"--listen-address={B_IP}",
                                    "--port=53", "--local=/test/", "--address=/exists.test/192.0.2.10",
                                    f"--pid-file={tmp}/dnsmasq.pid", "--user=root"],
                                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "dnsmasq.log"), "w"))
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir)
        full = os.path.join(tmp, "full.pcap")
        tlog = os.path.join(tmp, "tcpdump.log")
        tcpdump = subprocess.Popen(["ip", "netns", "exec", b, "tcpdump", "-i", if_b, "-s", "0", "-B", "16384", "-w",
                                    full, "-U", "--immediate-mode", "-n"],
                                   stdout=subprocess.DEVNULL, stderr=open(tlog, "w"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "listening on" not in open(tlog).read():
            time.sleep(0.05)
        coll = Collector(build, b, out_dir, os.path.join(tmp, "collector.log"), "tcp://127.0.0.1:4739")
        conf = os.path.join(tmp, "exporter.toml")
        with open(conf, "w") as f:
            f.write('[capture]\nexport = true\n[[capture.filter]]\naction = "accept"\nprotocol = "udp"\nport = 53\n')
        t0 = time.time()
        ex = Exporter(build, b, [if_b], "tcp://127.0.0.1:4739", os.path.join(tmp, "exporter.log"),
                      extra=["--config", conf])
        ex_stopped = False
        try:
            if not ex.wait_log("capture: on for 1 interface"):
                failures.append("capture did not start for packet reports:\n" + ex.text())
                return ""
            for src in (A_IP, A2_IP, A_IP, A2_IP):
                for name in ("exists.test", "nx.test"):
                    sh("ip", "netns", "exec", a, "dig", f"@{B_IP}", "-b", src, name, "+tries=1", "+time=2",
                       check=False)
            code = ("import socket\ns=socket.socket()\ns.settimeout(2)\n"
                    f"try:\n    s.connect(('{B_IP}',9))\nexcept OSError:\n    pass\n")
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c", code)
            time.sleep(0.5)
            rc = ex.stop()
            ex_stopped = True
            if rc != 0:
                failures.append(f"exporter exit code {rc}:\n" + ex.text())
            t1 = time.time()
            time.sleep(0.5)  # the collector's pcap writer

            tcpdump.terminate()
            tcpdump.wait()
            ref_all = os.path.join(tmp, "ref-all.pcap")
            ref_a2 = os.path.join(tmp, "ref-a2.pcap")
            sh("tcpdump", "-r", full, "-w", ref_all, "udp port 53")
            sh("tcpdump", "-r", full, "-w", ref_a2, f"udp port 53 and host {A2_IP}")
            want_all, want_a2 = read_pcap(ref_all)[3], read_pcap(ref_a2)[3]
            others = len(read_pcap(full)[3]) - len(want_all)
            if len(want_a2) < 4 or len(want_all) < 2 * len(want_a2) - 1 or others < 2:
                failures.append(f"traffic not as planned: {len(want_all)} udp/53, {len(want_a2)} of A2, {others} "
                                "others")

            rng = {"from": rfc3339(t0 - 1), "to": rfc3339(t1 + 1)}
            status, data = api(b, coll.port, rng)
            if status != 200:
                failures.append(f"/api/v1/pcap: HTTP {status}: {data[:300]!r}")
                return ""
            compare(failures, "API, all packets", read_pcap(data)[3], want_all)
            status, data = api(b, coll.port, {**rng, "filter": f"host {A2_IP}"})
            got_a2 = read_pcap(data)[3] if status == 200 else []
            compare(failures, "API, filter=host A2", got_a2, want_a2)
            status, data_ex = api(b, coll.port, {**rng, "filter": f"host {A2_IP}", "exporter": "127.0.0.1"})
            if status != 200 or data_ex != data:
                failures.append(f"API with exporter=127.0.0.1: HTTP {status}, {len(data_ex)} bytes vs {len(data)}")
            # The time range cuts: from just after the first A2 packet.
            if len(got_a2) > 2:
                cut = got_a2[1][0]
                status, part = api(b, coll.port, {"from": rfc3339_ns(cut), "to": rng["to"],
                                                  "filter": f"host {A2_IP}"})
                n = len(read_pcap(part)[3]) if status == 200 else -1
                want_n = sum(1 for g in got_a2 if g[0] >= cut)
                if n != want_n:
                    failures.append(f"API from the second A2 packet: {n} packets, want {want_n}")

            for params, want_status, want_text in (
                    ({"from": "yesterday", "to": rng["to"]}, 400, "not an RFC 3339 time"),
                    ({"from": rng["to"], "to": rng["from"]}, 400, "empty time range"),
                    ({**rng, "filter": "host"}, 400, "not a valid pcap-filter expression"),
                    ({**rng, "exporter": "192.0.2.99"}, 404, "no packets stored for exporter"),
                    ({**rng, "colour": "red"}, 400, "unknown parameter"),
                    ({"to": rng["to"]}, 400, "give from= and to=")):
                status, msg = api(b, coll.port, params)
                if status != want_status or want_text.encode() not in msg:
                    failures.append(f"API {params}: HTTP {status} {msg[:200]!r}, want {want_status} '{want_text}'")
        finally:
            if not ex_stopped:
                ex.kill()
            rc = coll.stop()
            if tcpdump.poll() is None:
                tcpdump.terminate()
                tcpdump.wait()
        if rc != 0:
            failures.append(f"collector exit code {rc}:\n" + open(os.path.join(tmp, "collector.log")).read())

        # 3. The command line, on the finished files.
        cli = os.path.join(tmp, "cli.pcap")
        r = sh(os.path.join(build, "bin", "bpfix-collector"), "pcap", "--data-dir", out_dir, "--from", rng["from"],
               "--to", rng["to"], "--filter", f"host {A2_IP}", "-w", cli, check=False)
        if r.returncode != 0 or open(cli, "rb").read() != data:
            failures.append(f"CLI: rc {r.returncode} {r.stderr.strip()}; same bytes as the API: "
                            f"{os.path.exists(cli) and open(cli, 'rb').read() == data}")
        bad = os.path.join(tmp, "bad.pcap")
        r = sh(os.path.join(build, "bin", "bpfix-collector"), "pcap", "--data-dir", out_dir, "--from", rng["from"],
               "--to", rng["to"], "--filter", "tcp port", "-w", bad, check=False)
        if r.returncode == 0 or os.path.exists(bad) or os.path.exists(bad + ".partial") or \
                "not a valid pcap-filter expression" not in r.stderr:
            failures.append(f"CLI with a bad filter: rc {r.returncode}, {r.stderr.strip()}, file left: "
                            f"{os.path.exists(bad)}")
        summary = open(os.path.join(tmp, "collector.log")).read()
        m = re.search(r"pcap store: packets=(\d+) dropped_packets=(\d+)", summary)
        if not m or int(m.group(1)) != len(want_all) or int(m.group(2)) != 0:
            failures.append(f"collector pcap store summary: {m.group(0) if m else summary[-500:]}, want "
                            f"{len(want_all)} packets")

        # 5. UDP: a report holds what one datagram carries.
        out2 = os.path.join(tmp, "out-udp")
        os.makedirs(out2)
        full2 = os.path.join(tmp, "udp-full.pcap")
        tcpdump = subprocess.Popen(["ip", "netns", "exec", b, "tcpdump", "-i", if_b, "-s", "0", "-w", full2, "-U",
                                    "--immediate-mode", "-n", "udp port 53"], stdout=subprocess.DEVNULL,
                                   stderr=open(os.path.join(tmp, "tcpdump2.log"), "w"))
        lo_dump = os.path.join(tmp, "lo.pcap")
        lodump = subprocess.Popen(["ip", "netns", "exec", b, "tcpdump", "-i", "lo", "-s", "0", "-w", lo_dump, "-U",
                                   "--immediate-mode", "-n", "udp port 4739"], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "tcpdump3.log"), "w"))
        time.sleep(1)
        coll = Collector(build, b, out2, os.path.join(tmp, "collector2.log"), "udp://127.0.0.1:4739")
        conf2 = os.path.join(tmp, "exporter-udp.toml")
        with open(conf2, "w") as f:  # loopback's MTU is 64 KiB: ask for a usual path's
            f.write(open(conf).read().replace("[capture]", "[transport]\nmtu = 1500\n[capture]"))
        ex = Exporter(build, b, [if_b], "udp://127.0.0.1:4739", os.path.join(tmp, "exporter2.log"),
                      extra=["--config", conf2])
        t0 = time.time()
        try:
            ex.wait_log("capture: on for 1 interface")
            code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    f"s.sendto(bytes(range(256))*11+b'q'*184,('{B_IP}',53))\n")
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c", code)
            time.sleep(0.5)
            ex.stop()
            time.sleep(0.5)
            status, data = api(b, coll.port, {"from": rfc3339(t0 - 1), "to": rfc3339(time.time() + 1)})
        finally:
            ex.kill() if ex.p.poll() is None else None
            coll.stop()
            for p in (tcpdump, lodump):
                p.terminate()
                p.wait()
        got = read_pcap(data)[3] if status == 200 else []
        want = read_pcap(full2)[3]
        compare(failures, "UDP transport, cut reports", got, want, cut=True)
        limit = re.search(r"packet reports over udp://\S+ carry at most (\d+) bytes", ex.text())
        if not limit or not got or len(got[0][2]) != int(limit.group(1)) or got[0][1] != 3042:
            failures.append(f"UDP report: {[(len(g[2]), g[1]) for g in got]}, logged limit "
                            f"{limit.group(1) if limit else None}, want one of that many bytes of a 3042-byte frame")
        frags = int(sh("sh", "-c", f"tcpdump -r {lo_dump} -n 'ip[6:2] & 0x3fff != 0' 2>/dev/null | wc -l").stdout)
        sizes = [r[1] for r in read_pcap(lo_dump)[3]]
        if frags or not sizes or max(sizes) > 1500 + 14:
            failures.append(f"IPFIX over UDP: {frags} IP fragments, {len(sizes)} datagrams, largest frame "
                            f"{max(sizes) if sizes else 0} bytes")
        dnsmasq.terminate()
        dnsmasq.wait()
        return (f"{len(want_all)} DNS packets stored, {len(want_a2)} returned for host A2 in order; CLI identical; "
                f"UDP report cut to {len(got[0][2]) if got else 0} of {got[0][1] if got else 0} bytes, largest "
                f"IPFIX datagram {max(sizes) if sizes else 0} bytes")


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "capture_reports", body))
