#!/usr/bin/python3
"""Integration (root): the live eBPF datapath and the offline pcap mode give
the same flows for the same frames.

A deterministic pcap (replay_pcap.py: the interop capture of TCP/UDP/ICMP
over IPv4 and IPv6 with 802.1Q and QinQ frames, plus labelled edge frames)
is
  1. metered offline: bpfix-exporter --pcap FILE, and
  2. replayed with tcpreplay from one namespace across a veth pair into a
     second namespace, where bpfix-exporter --interface meters the
     receiving end live until SIGTERM.
Compared, per uniflow key (addresses, ports, protocol, ICMP type/code,
outer and inner VLAN id): the set of keys, and the sums of packetDeltaCount
and octetDeltaCount and the OR of tcpControlBits over the key's records;
also the exporters' summary totals (IP packets, IP octets, non-IP,
malformed). Live records must be ingress (flowDirection 0) on the receiving
veth.

Not compared, on purpose:
- timestamps: pcap mode takes them from the capture (2024), live mode from
  the kernel clock at the moment the frame crosses the hook (now, and
  compressed to about a millisecond by --topspeed);
- flowEndReason and how a key is split into records: pcap mode applies the
  timers to packet time and ends at end of input (4) or after the FIN linger
  (3), splits at RST and at a SYN after FIN; live mode applies them to wall
  clock time between drains and ends everything still open at SIGTERM. So
  the same key may be 2 records offline and 1 live, or the other way
  round: only the sums over a key's records are the same by definition.

The receiving veth has no addresses and IPv6 disabled (before link up, so no
link-local address, DAD, MLD or router solicitation), the sending one too:
no frame on the wire but the replayed ones, and frames are addressed to MACs
that are not the veth's, so the kernel answers none of them (ingress TC runs
before the stack drops them). Generic receive offload must be off on the
receiving veth (the veth default): with GRO one skb could carry several
TCP segments and packet counts would differ for a reason outside bpfix.
On the receiving veth the kernel moves the outermost 802.1Q/802.1ad tag
into skb metadata (skb_vlan_untag, before the TC hook); the datapath reads
it from skb->vlan_tci, so tagged frames test that path.

On a disagreement the diff names each key, what each engine said, and the
pcap frames behind the key (by a reference reading of
docs/flow-semantics.md in replay_pcap.py, for diagnosis only).

usage: replay_equivalence.py BUILD_DIR [--realtime]
  --realtime: replay at the capture's own pace (about 8 s) instead of
              --topspeed, so the live timers run between packets.
Needs root, tcpreplay and python3-scapy. Everything made here (namespaces,
veths, processes, files) is removed, also on failure.
"""
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay_pcap  # noqa: E402

STEP_TIMEOUT = 20  # seconds for any one step (start, replay, stop)


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


class Veth:
    """Two namespaces joined by a veth pair; sender and receiver ends have no
    addresses and IPv6 disabled."""

    def __init__(self):
        tag = str(os.getpid())
        self.tx_ns, self.rx_ns = "bpfixRtx" + tag, "bpfixRrx" + tag
        self.tx_if, self.rx_if = "bprt" + tag[-6:], "bprr" + tag[-6:]
        self.made = []

    def __enter__(self):
        try:
            for ns in (self.tx_ns, self.rx_ns):
                sh("ip", "netns", "add", ns)
                self.made.append(ns)
            sh("ip", "link", "add", self.tx_if, "netns", self.tx_ns, "type", "veth", "peer", "name", self.rx_if,
               "netns", self.rx_ns)
            for ns, ifn in ((self.tx_ns, self.tx_if), (self.rx_ns, self.rx_if)):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ifn}.disable_ipv6=1")
                sh("ip", "-n", ns, "link", "set", ifn, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for ns in self.made:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)  # deletes the veth pair with it

    def rx_packets(self):
        return int(sh("ip", "netns", "exec", self.rx_ns, "cat",
                      f"/sys/class/net/{self.rx_if}/statistics/rx_packets").stdout)

    def rx_ifindex(self):
        return int(sh("ip", "netns", "exec", self.rx_ns, "cat", f"/sys/class/net/{self.rx_if}/ifindex").stdout)


def gro_active(ns, ifn):
    """Whether generic receive offload ("rx-gro") is active on ifn, read with
    the ethtool ioctl in a child that joins the namespace (no ethtool
    package needed)."""
    code = r'''
import array, fcntl, socket, struct, sys
ifn = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ioc(buf):
    b = array.array("B", buf)
    fcntl.ioctl(s.fileno(), 0x8946, struct.pack("16sP", ifn, b.buffer_info()[0]))
    return bytes(b)
n = struct.unpack_from("I", ioc(struct.pack("IIQI", 0x37, 0, 1 << 4, 0)), 16)[0]     # GSSET_INFO features
r = ioc(struct.pack("III", 0x1b, 4, n) + bytes(32 * n))                              # GSTRINGS
names = [r[12 + 32 * i:44 + 32 * i].split(b"\0")[0].decode() for i in range(n)]
blocks = (n + 31) // 32
f = ioc(struct.pack("II", 0x3a, blocks) + bytes(16 * blocks))                        # GFEATURES
i = names.index("rx-gro")
print(struct.unpack_from("IIII", f, 8 + 16 * (i // 32))[2] >> (i % 32) & 1)
'''
    return sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code, ifn).stdout.strip() == "1"


def read_records(build, path):
    out = sh(os.path.join(build, "bin", "bpfix-collector"), "--read", path).stdout
    recs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in recs if "protocolIdentifier" in r]


def key_of(r):
    v6 = "sourceIPv6Address" in r
    fam = "IPv6" if v6 else "IPv4"
    return (6 if v6 else 4, str(ipaddress.ip_address(r["source" + fam + "Address"])),
            str(ipaddress.ip_address(r["destination" + fam + "Address"])), r["protocolIdentifier"],
            r.get("sourceTransportPort", 0), r.get("destinationTransportPort", 0), r.get("icmpTypeCode" + fam, 0),
            r.get("vlanId", 0), r.get("dot1qCustomerVlanId", 0))


def fmt_key(k):
    ver, src, dst, proto, sp, dp, icmp, vlan, inner = k
    s = f"IPv{ver} {src} -> {dst} proto {proto}"
    if proto in (1, 58):
        s += f" icmp {icmp >> 8}/{icmp & 255}"
    else:
        s += f" ports {sp} -> {dp}" + (f" icmp {icmp}" if icmp else "")
    return s + f" vlan {vlan}/{inner}"


def per_key(records):
    """key -> [packets, octets, tcp flags OR, number of records]"""
    agg = {}
    for r in records:
        a = agg.setdefault(key_of(r), [0, 0, 0, 0])
        a[0] += r["packetDeltaCount"]
        a[1] += r["octetDeltaCount"]
        a[2] |= r.get("tcpControlBits", 0)
        a[3] += 1
    return agg


def summary(log):
    lines = [l for l in open(log).read().splitlines() if "bpfix-exporter: summary:" in l]
    if not lines:
        return None
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


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


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise SystemExit(f"FAIL exporter did not stop within {STEP_TIMEOUT} s after SIGTERM")


def run_live(build, pcap, tmp, nframes, realtime):
    """Replays pcap across the veth into the metered end. Returns
    (records, summary, ifindex, harness failures)."""
    out, log = os.path.join(tmp, "live.ipfix"), os.path.join(tmp, "live.log")
    problems = []
    with Veth() as v:
        if gro_active(v.rx_ns, v.rx_if):
            raise SystemExit(f"FAIL GRO is on on {v.rx_if}: packet counts would not be per frame")
        ifindex = v.rx_ifindex()
        p = start_exporter(build, v.rx_ns, v.rx_if, out, log)
        try:
            rx0 = v.rx_packets()
            speed = [] if realtime else ["--topspeed"]
            rep = sh("ip", "netns", "exec", v.tx_ns, "tcpreplay", "-i", v.tx_if, *speed, pcap, check=False,
                     timeout=STEP_TIMEOUT)
            sent = re.search(r"Successful packets:\s+(\d+)", rep.stdout)
            failed = re.search(r"Failed packets:\s+(\d+)", rep.stdout)
            if rep.returncode != 0 or not sent or int(sent.group(1)) != nframes or int(failed.group(1)) != 0:
                problems.append(f"tcpreplay did not send all {nframes} frames (rc {rep.returncode}):\n"
                                + rep.stdout + rep.stderr)
            # The veth counts a frame for the receiver when it hands it to the
            # receive backlog; ingress TC runs when the backlog is processed,
            # in the softirq that follows at once. Wait for the count, then a
            # little for that processing.
            deadline = time.monotonic() + 5
            while v.rx_packets() - rx0 < nframes and time.monotonic() < deadline:
                time.sleep(0.05)
            got = v.rx_packets() - rx0
            if got != nframes:
                problems.append(f"the receiving veth counted {got} frames, {nframes} were replayed: frames lost "
                                "before the hook (not a metering difference)")
            time.sleep(0.3)
        finally:
            rc = stop(p)
    if rc != 0:
        problems.append(f"live exporter exit code {rc}:\n" + open(log).read())
    return read_records(build, out), summary(log), ifindex, problems


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    realtime = "--realtime" in sys.argv[1:]
    if len(args) != 1 or any(a not in ("--realtime",) for a in sys.argv[1:] if a.startswith("--")):
        print(__doc__)
        return 2
    build = args[0]
    if os.geteuid() != 0:
        print("FAIL replay_equivalence needs root (network namespaces, eBPF)")
        return 1
    if not shutil.which("tcpreplay"):
        print("FAIL tcpreplay not found (apt-get install tcpreplay)")
        return 1
    # ctest and friends stop a test with SIGTERM: run the cleanups then too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL interrupted by SIGTERM"))
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bpfix-replay-")
    failures = []
    try:
        pcap = os.path.join(tmp, "replay.pcap")
        labels = replay_pcap.write(pcap)
        nframes = len(labels)

        # Offline.
        out, log = os.path.join(tmp, "pcap.ipfix"), os.path.join(tmp, "pcap.log")
        with open(log, "w") as lf:
            rc = subprocess.run([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", pcap, "--collector",
                                 "file:" + out], stderr=lf, stdout=subprocess.DEVNULL, timeout=STEP_TIMEOUT).returncode
        if rc != 0:
            print(f"FAIL pcap exporter exit code {rc}:\n" + open(log).read())
            return 1
        off_recs, off_sum = read_records(build, out), summary(log)

        # Live.
        live_all, live_sum, ifindex, problems = run_live(build, pcap, tmp, nframes, realtime)
        failures += problems
        live_recs = [r for r in live_all if r.get("flowDirection") == 0 and r.get("ingressInterface") == ifindex]
        others = [r for r in live_all if r not in live_recs]
        egress = [r for r in others if r.get("flowDirection") == 1]
        if len(egress) != len(others):
            failures.append("live records that are neither ingress on the receiving veth (ifindex "
                            f"{ifindex}) nor egress:\n  " + "\n  ".join(json.dumps(r) for r in others
                                                                        if r not in egress))
        if egress:
            # The receiver sent something itself: not the replay, not compared.
            print("note: the receiving namespace sent traffic of its own (egress, not compared):\n  "
                  + "\n  ".join(fmt_key(key_of(r)) + f" {r['packetDeltaCount']} pkts" for r in egress))

        # Per key.
        off, live = per_key(off_recs), per_key(live_recs)
        ref = replay_pcap.reference(pcap)
        frames_of = {}
        for i, (kind, k, _) in enumerate(ref):
            if kind == "flow":
                frames_of.setdefault(k, []).append(i)

        loose = replay_pcap.loose_keys(pcap)

        def frames_note(k):
            idx, head = frames_of.get(k), "frames (per docs/flow-semantics.md):"
            if not idx:
                idx = [i for i, kk in enumerate(loose) if kk is not None and kk[:7] == k[:7]]
                head = ("no frame has this key under docs/flow-semantics.md; frames with the same addresses, "
                        "ports and protocol:")
            lines = [f"      #{i} {labels[i]} [{ref[i][0]}" + (f", key {fmt_key(ref[i][1])}]" if ref[i][1] else "]")
                     for i in idx[:8]] + (["      ..."] if len(idx) > 8 else [])
            return f"    {head}\n" + "\n".join(lines) if idx else "    no frame of the pcap matches it"

        def says(a):
            return "absent" if a is None else f"{a[0]} packets, {a[1]} octets, tcpControlBits {a[2]:#x} " \
                                              f"({a[3]} record{'s' if a[3] != 1 else ''})"

        for k in sorted(set(off) | set(live)):
            a, b = off.get(k), live.get(k)
            if a is None or b is None or a[:3] != b[:3]:
                failures.append(f"key {fmt_key(k)}\n    pcap mode: {says(a)}\n    live mode: {says(b)}\n"
                                + frames_note(k))

        # Totals from the summary lines (malformed and non-IP frames are not flows).
        if off_sum is None or live_sum is None:
            failures.append(f"missing summary line: pcap {off_sum}, live {live_sum}")
        else:
            eg_p = sum(r["packetDeltaCount"] for r in egress)
            eg_o = sum(r["octetDeltaCount"] for r in egress)
            pairs = (("IP packets", off_sum.get("ip_packets"), live_sum.get("packets", 0) - eg_p),
                     ("IP octets", off_sum.get("ip_octets"), live_sum.get("octets", 0) - eg_o),
                     ("non-IP frames", off_sum.get("non_ip"), live_sum.get("non_ip")),
                     ("malformed frames", off_sum.get("malformed"), live_sum.get("malformed")))
            for what, x, y in pairs:
                if x != y:
                    kind = {"non-IP frames": "non_ip", "malformed frames": "malformed"}.get(what)
                    note = ""
                    if kind:
                        idx = [i for i, (kd, _, _) in enumerate(ref) if kd == kind]
                        note = f"\n    frames that are {kind} per docs/flow-semantics.md:\n" + "\n".join(
                            f"      #{i} {labels[i]}" for i in idx)
                    failures.append(f"{what}: pcap mode {x}, live mode {y} (ingress){note}")
            for s, name in ((off_sum, "pcap"), (live_sum, "live")):
                for c in ("map_full", "not_sent_records"):
                    if s.get(c, 0):
                        failures.append(f"{name} exporter summary: {c}={s[c]}")
        elapsed = time.monotonic() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        for f in failures:
            print("FAIL " + f)
        print(f"summary, pcap mode: {off_sum}\nsummary, live mode: {live_sum}")
        print(f"replay_equivalence: {len(failures)} difference(s) between live ({'realtime' if realtime else 'topspeed'}"
              f" replay over a veth) and pcap mode on {nframes} frames")
        return 1
    print(f"ok replay_equivalence: {nframes} frames replayed ({'realtime' if realtime else 'topspeed'}), "
          f"{len(off)} keys, same packets/octets/TCP flags per key and same totals live and offline "
          f"({len(live_recs)} live records, {len(off_recs)} pcap records, {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
