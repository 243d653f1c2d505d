#!/usr/bin/python3
"""Integration (root): live eBPF metering on a veth pair in network
namespaces made here.

1. Exactly N UDP datagrams of known sizes each way across the veth: the
   exported records on the metered end show N packets and the right IP
   octets per direction (egress A->B, ingress B->A), decoded by
   bpfix-collector --read.
2. After SIGTERM no tc filter of ours is left on the interface.
3. After kill -9 our filter is left behind; a restart removes it, and after
   its SIGTERM none is left.
Everything made here (namespaces, veths, processes) is removed, also on
failure.

usage: live_veth.py BUILD_DIR
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

N_AB, PAYLOAD_AB = 120, 100   # A -> B: egress on the metered interface
N_BA, PAYLOAD_BA = 75, 333    # B -> A: ingress
PORT_A, PORT_B = 40001, 40002


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


class Namespaces:
    def __init__(self):
        tag = str(os.getpid())
        self.a, self.b = "bpfixA" + tag, "bpfixB" + tag
        self.if_a, self.if_b = "bpfa" + tag[-6:], "bpfb" + tag[-6:]

    def __enter__(self):
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        sh("ip", "link", "add", self.if_a, "netns", self.a, "type", "veth", "peer", "name", self.if_b,
           "netns", self.b)
        for ns, ifn, addr in ((self.a, self.if_a, "198.51.100.1/24"), (self.b, self.if_b, "198.51.100.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", ifn)
            sh("ip", "-n", ns, "link", "set", ifn, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # Static neighbours: no ARP in the middle of the counts.
        mac = lambda ns, ifn: json.loads(sh("ip", "-n", ns, "-j", "link", "show", ifn).stdout)[0]["address"]
        sh("ip", "-n", self.a, "neigh", "add", "198.51.100.2", "lladdr", mac(self.b, self.if_b), "dev", self.if_a)
        sh("ip", "-n", self.b, "neigh", "add", "198.51.100.1", "lladdr", mac(self.a, self.if_a), "dev", self.if_b)
        return self

    def __exit__(self, *exc):
        for ns in (self.a, self.b):
            sh("ip", "netns", "pids", ns, check=False)
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)


def send(ns, src, dst, sport, dport, n, payload):
    code = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{src}',{sport}))\n"
            f"for i in range({n}): s.sendto(b'x'*{payload},('{dst}',{dport}))\n")
    sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code)


def our_filters(ns, ifn):
    out = ""
    for d in ("ingress", "egress"):
        out += sh("tc", "-n", ns, "filter", "show", "dev", ifn, d, check=False).stdout
    return [l for l in out.splitlines() if "meter_" in l]


def start_exporter(build, ns, ifn, out, log):
    exe = os.path.join(build, "bin", "bpfix-exporter")
    p = subprocess.Popen(["ip", "netns", "exec", ns, exe, "--interface", ifn, "--collector", "file:" + out,
                          "--log-level", "info"], stderr=open(log, "w"), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "exporting to" in open(log).read():
            return p
        if p.poll() is not None:
            raise SystemExit("FAIL exporter exited at start:\n" + open(log).read())
        time.sleep(0.05)
    p.kill()
    raise SystemExit("FAIL exporter did not start within 10 s:\n" + open(log).read())


def stop(p, log, sig=signal.SIGTERM):
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        raise SystemExit("FAIL exporter did not stop within 15 s after SIGTERM")
    return rc


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    if os.geteuid() != 0:
        print("FAIL live_veth needs root (network namespaces, eBPF)")
        return 1
    failures = []
    tmp = tempfile.mkdtemp(prefix="bpfix-live-")
    try:
        with Namespaces() as ns:
            # 1. exact counts per direction
            out, log = os.path.join(tmp, "live.ipfix"), os.path.join(tmp, "live.log")
            p = start_exporter(build, ns.a, ns.if_a, out, log)
            send(ns.a, "198.51.100.1", "198.51.100.2", PORT_A, PORT_B, N_AB, PAYLOAD_AB)
            send(ns.b, "198.51.100.2", "198.51.100.1", PORT_B, PORT_A, N_BA, PAYLOAD_BA)
            time.sleep(0.3)
            rc = stop(p, log)
            if rc != 0:
                failures.append(f"exporter exit code {rc}:\n" + open(log).read())
            recs = [json.loads(l) for l in sh(os.path.join(build, "bin", "bpfix-collector"), "--read", out).stdout
                    .splitlines()]
            udp = [r for r in recs if r.get("protocolIdentifier") == 17 and
                   {r.get("sourceTransportPort"), r.get("destinationTransportPort")} == {PORT_A, PORT_B}]
            ifindex = int(sh("ip", "netns", "exec", ns.a, "cat", f"/sys/class/net/{ns.if_a}/ifindex").stdout)

            def total(src, direction):
                sel = [r for r in udp if r["sourceIPv4Address"] == src and r["flowDirection"] == direction]
                return (sum(r["packetDeltaCount"] for r in sel), sum(r["octetDeltaCount"] for r in sel), sel)

            pk, oc, sel = total("198.51.100.1", 1)
            if (pk, oc) != (N_AB, N_AB * (28 + PAYLOAD_AB)):
                failures.append(f"egress A->B: got {pk} packets {oc} octets, want {N_AB} and "
                                f"{N_AB * (28 + PAYLOAD_AB)}")
            if any(r["egressInterface"] != ifindex for r in sel):
                failures.append(f"egress records do not carry egressInterface {ifindex}: {sel}")
            pk, oc, sel = total("198.51.100.2", 0)
            if (pk, oc) != (N_BA, N_BA * (28 + PAYLOAD_BA)):
                failures.append(f"ingress B->A: got {pk} packets {oc} octets, want {N_BA} and "
                                f"{N_BA * (28 + PAYLOAD_BA)}")
            if any(r["ingressInterface"] != ifindex for r in sel):
                failures.append(f"ingress records do not carry ingressInterface {ifindex}: {sel}")
            if len(udp) != 2:
                failures.append(f"expected 2 UDP records (one per direction), got {len(udp)}: {udp}")
            summary = open(log).read().strip().splitlines()[-1]
            if "bpfix-exporter: summary: interfaces=1" not in summary:
                failures.append("no summary line: " + summary)
            left = our_filters(ns.a, ns.if_a)
            if left:
                failures.append("tc filters left after SIGTERM: " + "; ".join(left))

            # 3. kill -9 leaves a filter; a restart removes it
            out2, log2 = os.path.join(tmp, "kill.ipfix"), os.path.join(tmp, "kill.log")
            p = start_exporter(build, ns.a, ns.if_a, out2, log2)
            p.kill()
            p.wait()
            if not our_filters(ns.a, ns.if_a):
                failures.append("after kill -9 no filter was left: the leftover check below proves nothing")
            out3, log3 = os.path.join(tmp, "restart.ipfix"), os.path.join(tmp, "restart.log")
            p = start_exporter(build, ns.a, ns.if_a, out3, log3)
            if "left by an earlier run" not in open(log3).read():
                failures.append("restart did not report removing the leftover filter:\n" + open(log3).read())
            stop(p, log3)
            left = our_filters(ns.a, ns.if_a)
            if left:
                failures.append("tc filters left after restart + SIGTERM: " + "; ".join(left))
    finally:
        subprocess.run(["rm", "-rf", tmp])
    if failures:
        for f in failures:
            print("FAIL " + f)
        return 1
    print("ok live_veth: exact per-direction counts, no filters left after SIGTERM or kill -9 + restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
