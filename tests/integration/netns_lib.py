"""Shared pieces of the integration tier: namespaces and veths the test
makes (and always removes), the live exporter started inside a namespace,
and our tc filters. /usr/bin/python3, standard library only."""
import json
import os
import signal
import subprocess
import time


# Waits are multiplied by this (the VM tier sets 4: software emulation runs
# everything several times slower).
TIME_SCALE = float(os.environ.get("BPFIX_TEST_TIME_SCALE", "1"))
# The exit code of a test that cannot apply on this kernel (ctest
# SKIP_RETURN_CODE); raise Skip("why") in a test body.
SKIP_CODE = 77


class Skip(Exception):
    pass


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


class Lab:
    """Network namespaces and veth pairs, removed on exit (processes in them
    are killed first)."""

    def __init__(self, prefix="bpfix"):
        self.tag = str(os.getpid())[-6:]
        self.prefix = prefix
        self.namespaces = []

    def ns(self, name):
        full = f"{self.prefix}{name}{self.tag}"
        sh("ip", "netns", "add", full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        self.namespaces.append(full)
        return full

    def veth(self, ns1, if1, addr1, ns2, if2, addr2):
        """A veth pair between ns1 and ns2 with IPv4 addresses (CIDR), IPv6
        off and static neighbours, so only the test's packets cross it."""
        sh("ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2)
        for ns, ifn, addr in ((ns1, if1, addr1), (ns2, if2, addr2)):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ifn}.disable_ipv6=1")
            sh("ip", "-n", ns, "addr", "add", addr, "dev", ifn)
            sh("ip", "-n", ns, "link", "set", ifn, "up")
        mac1, mac2 = mac(ns1, if1), mac(ns2, if2)
        sh("ip", "-n", ns1, "neigh", "replace", addr2.split("/")[0], "lladdr", mac2, "dev", if1)
        sh("ip", "-n", ns2, "neigh", "replace", addr1.split("/")[0], "lladdr", mac1, "dev", if2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for ns in self.namespaces:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)


def mac(ns, ifn):
    return json.loads(sh("ip", "-n", ns, "-j", "link", "show", ifn).stdout)[0]["address"]


def ifindex(ns, ifn):
    return int(sh("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{ifn}/ifindex").stdout)


def stat(ns, ifn, name):
    return int(sh("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{ifn}/statistics/{name}").stdout)


def our_filters(ns, ifn):
    """Our tc filters on the interface, and every TCX link of our programs
    (bpftool 7.1 cannot tell a TCX link's interface; the tests run one at a
    time, so any such link is a leftover once our exporters have stopped)."""
    out = ""
    for d in ("ingress", "egress"):
        out += sh("tc", "-n", ns, "filter", "show", "dev", ifn, d, check=False).stdout
    found = [l for l in out.splitlines() if "meter_" in l]
    return found + our_tcx_links()


def our_tcx_links(prefix="meter_"):
    links = json.loads(sh("bpftool", "-j", "link", "show", check=False).stdout or "[]")
    out = []
    for link in links:
        if link.get("type") not in ("tcx", 11):
            continue
        prog = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(link.get("prog_id")), check=False).stdout
                          or "{}")
        if str(prog.get("name", "")).startswith(prefix):
            out.append(f"TCX link {link.get('id')} of {prog.get('name')}")
    return out


def capture_hooks(ns, ifn):
    """The capture programs hooked anywhere: tc filters on the interface
    and TCX links (see our_filters)."""
    out = ""
    for d in ("ingress", "egress"):
        out += sh("tc", "-n", ns, "filter", "show", "dev", ifn, d, check=False).stdout
    return [l for l in out.splitlines() if "capture_" in l] + our_tcx_links("capture_")


def read_pcap(path_or_bytes):
    """A classic pcap file (little endian, as tcpdump and tshark -F pcap
    write here): (magic, snaplen, linktype, [(ts_ns, orig_len, data)])."""
    import struct
    data = path_or_bytes
    if isinstance(path_or_bytes, str):
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    magic, _, _, _, _, snap, link = struct.unpack("<IHHiIII", data[:24])
    if magic not in (0xa1b2c3d4, 0xa1b23c4d):
        raise ValueError(f"not a little-endian classic pcap: magic {magic:#x}")
    scale = 1 if magic == 0xa1b23c4d else 1000
    recs, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        off += 16
        recs.append((sec * 1_000_000_000 + frac * scale, orig, data[off:off + incl]))
        off += incl
    return magic, snap, link, recs


def send_udp(ns, src, dst, sport, dport, n, payload):
    code = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{src}',{sport}))\n"
            f"for i in range({n}): s.sendto(b'x'*{payload},('{dst}',{dport}))\n")
    sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code)


def tshark_flows(path):
    """Flow records of an IPFIX file as Wireshark decodes them (its RFC 5655
    file reader and cflow dissector), independent of our own decoder:
    ([{src, sport, dport, proto, direction, packets, octets}], [problems])."""
    out = subprocess.run(["tshark", "-r", path, "-T", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        return [], [f"tshark -r {path} failed: {out.stderr.strip()}"]
    flows, problems = [], []

    def walk(node):
        if isinstance(node, list):
            for v in node:
                yield from walk(v)
        elif isinstance(node, dict):
            for k, v in node.items():
                if k.startswith("_ws.malformed") or k == "_ws.expert":
                    problems.append(f"tshark: {k} {v}")
                elif k.startswith("Flow ") and isinstance(v, dict) and "cflow.packets" in v:
                    yield v
                else:
                    yield from walk(v)

    for frame in json.loads(out.stdout or "[]"):
        for r in walk(frame["_source"]["layers"].get("cflow", [])):
            flows.append({"src": r.get("cflow.srcaddr") or r.get("cflow.srcaddrv6"),
                          "sport": int(r.get("cflow.srcport", 0)), "dport": int(r.get("cflow.dstport", 0)),
                          "proto": int(r.get("cflow.protocol", 0)), "direction": int(r.get("cflow.direction", -1)),
                          "packets": int(r["cflow.packets"]), "octets": int(r.get("cflow.octets", 0))})
    return flows, problems


# Runs a command as nobody with only the capabilities the exporter documents.
LEAST_PRIVILEGE = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   "--inh-caps=-all,+bpf,+net_admin,+perfmon", "--ambient-caps=-all,+bpf,+net_admin,+perfmon",
                   "--bounding-set=-all,+bpf,+net_admin,+perfmon"]


class Exporter:
    """bpfix-exporter in live mode inside a namespace, writing an IPFIX file
    (`out` a path), or sending to a collector (`out` a tcp:// or udp:// URL)."""

    def __init__(self, build, ns, patterns, out, log, extra=(), wrap=(), env=None, config=None):
        """With `config` (a TOML file) the collector and the log level come
        from it, not from flags (a reload reads them again)."""
        self.build, self.out, self.log = build, out, log
        args = ["ip", "netns", "exec", ns, *wrap, os.path.join(build, "bin", "bpfix-exporter")]
        if config:
            args += ["--config", config]
        else:
            args += ["--collector", out if "://" in out else "file:" + out,
                     "--log-level", os.environ.get("BPFIX_TEST_LOG_LEVEL", "info")]
        for p in patterns:
            args += ["--interface", p]
        self.p = subprocess.Popen(args + list(extra), stderr=open(log, "w"), stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 10 * TIME_SCALE
        while time.monotonic() < deadline:
            if "exporting to" in self.text():
                return
            if self.p.poll() is not None:
                raise SystemExit("FAIL exporter exited at start:\n" + self.text())
            time.sleep(0.05)
        self.p.kill()
        raise SystemExit("FAIL exporter did not start within 10 s:\n" + self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    def kill(self):
        self.p.kill()
        self.p.wait()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=15 * TIME_SCALE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise SystemExit("FAIL exporter did not stop within 15 s after SIGTERM")

    def records(self):
        out = sh(os.path.join(self.build, "bin", "bpfix-collector"), "--read", self.out).stdout
        return [json.loads(l) for l in out.splitlines()]

    def summary(self):
        lines = self.text().strip().splitlines()
        return lines[-1] if lines else ""


def run_test(doc, name, body, max_args=0):
    """The frame of every test here: usage and root checks, a temp dir that
    is always removed, and the verdict. body(build, tmp, failures, extra)
    appends what went wrong to `failures` and returns the success line."""
    import sys
    import shutil
    import tempfile
    args = sys.argv[1:]
    if not 1 <= len(args) <= 1 + max_args:
        print(doc)
        return 2
    if os.geteuid() != 0:
        print(f"FAIL {name} needs root (network namespaces, eBPF)")
        return 1
    failures = []
    tmp = tempfile.mkdtemp(prefix=f"bpfix-{name}-")
    os.chmod(tmp, 0o755)
    try:
        ok = body(args[0], tmp, failures, args[1:])
    except Skip as e:
        print(f"SKIP {name}: {e}")
        return SKIP_CODE
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        for f in failures:
            print("FAIL " + f)
        return 1
    print(f"ok {name}: {ok}")
    return 0
