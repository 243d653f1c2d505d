#!/usr/bin/python3
"""Live-mode benchmark: what metering a flooded veth costs, per tool.

Run through bench/live/run.sh, which builds the helpers (flood, reap_run, the
TC floor object) and removes the namespaces whatever happens. Direct use:

  live_bench.py --build BUILD_DIR --helpers DIR [--runs 3] [--seconds 8]
      [--tools baseline,tcfloor,bpfix,softflowd,pmacctd,tcpdump] [--floor-obj F]
      [--diagnose] [--json FILE] [--markdown FILE]

Two network namespaces made here (TX and RX) are joined by a veth pair. In TX,
`flood` (pinned to --tx-cpu) sends small UDP frames through an AF_PACKET socket
for --seconds; in RX a UDP socket is their destination: with --sink drop (the
default) it is never read, so every packet is a kernel drop at the socket (the
worst case for the drop enricher); with --sink read a receiver pinned to
--tool-cpu reads it in batches and keeps up, so drops are rare (a host that is
not overloaded). Each run records the socket drops (UDP RcvbufErrors). The
received count is the RX veth's rx_packets. Each tool meters the RX veth,
pinned to --tool-cpu, started by `reap_run` (CPU and peak RSS of the whole
process tree). Configurations run round-robin, --runs rounds; medians shown.
"dropfloor" is a kfree_skb tracer that only counts (bpf/drop_floor.bpf.c): the
floor of any drop tracer. "tcfloor" is clsact with a count-only BPF program (no process): the floor of
any TC meter under classic tc; "tcxfloor" is the same program through a TCX link (kernels 6.6+, where
bpfix attaches with TCX), held by the small floor_run process. --diagnose adds one flood per configuration under perf on the
sender CPU (where all the per-packet kernel work runs) and the BPF program's
run-time statistics for bpfix.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from bench import commit_stamp  # noqa: E402  (bench/bench.py)
CLK_TCK = os.sysconf("SC_CLK_TCK")
TX_IP, RX_IP, SINK_PORT, IPFIX_PORT = "192.0.2.1", "192.0.2.2", 5001, 4739
ALL_TOOLS = ["baseline", "tcfloor", "tcxfloor", "dropfloor", "bpfix", "bpfix_off", "bpfix_drops", "bpfix_dns", "bpfix_rtt",
             "bpfix_capture_idle", "bpfix_capture_other", "bpfix_capture_flood", "softflowd", "pmacctd", "tcpdump"]


class Stop(Exception):
    pass


def on_signal(sig, _frame):
    raise Stop(f"signal {sig}")


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pinned(cpu):
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu >= 0 else None


# ---------------------------------------------------------------- namespaces
class Net:
    def __init__(self, tag):
        self.tx, self.rx = tag + "tx", tag + "rx"
        short = (re.sub(r"\D", "", tag) or "0")[-9:]
        self.if_tx, self.if_rx = "bpft" + short, "bpfr" + short  # at most 13 < IFNAMSIZ characters
        self.made = []
        self.procs = []  # Popen objects started here, killed at the end

    def setup(self):
        for ns in (self.tx, self.rx):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            # no IPv6 (router solicitations, MLD, DAD): the flood is the only traffic
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "link", "add", self.if_tx, "netns", self.tx, "type", "veth", "peer", "name", self.if_rx,
           "netns", self.rx)
        for ns, ifn, addr in ((self.tx, self.if_tx, TX_IP), (self.rx, self.if_rx, RX_IP)):
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", ifn)
            sh("ip", "-n", ns, "link", "set", ifn, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.mac_tx, self.mac_rx = self.mac(self.tx, self.if_tx), self.mac(self.rx, self.if_rx)
        # static neighbours: no ARP during a measurement
        sh("ip", "-n", self.tx, "neigh", "replace", RX_IP, "lladdr", self.mac_rx, "dev", self.if_tx, "nud",
           "permanent")
        sh("ip", "-n", self.rx, "neigh", "replace", TX_IP, "lladdr", self.mac_tx, "dev", self.if_rx, "nud",
           "permanent")

    @staticmethod
    def mac(ns, ifn):
        return json.loads(sh("ip", "-n", ns, "-j", "link", "show", ifn).stdout)[0]["address"]

    def udp_rcvbuf_errors(self):
        """Datagrams the RX namespace's UDP sockets dropped for a full buffer."""
        lines = [l.split() for l in sh("ip", "netns", "exec", self.rx, "cat", "/proc/net/snmp").stdout.splitlines()
                 if l.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])

    def rx_packets(self):
        st = json.loads(sh("ip", "-n", self.rx, "-s", "-j", "link", "show", self.if_rx).stdout)[0]["stats64"]
        return st["rx"]["packets"], st["tx"]["packets"]

    def spawn(self, ns, argv, cpu=-1, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns] + [str(a) for a in argv], preexec_fn=pinned(cpu),
                             **kw)
        self.procs.append(p)
        return p

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        for ns in self.made:
            # anything still running in our namespaces was started by this run
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)
        self.made = []


def bpf_prog_ids(ns, ifname, pids=()):
    """Ids of the BPF programs on an interface (classic tc filters) and of
    every program the processes `pids` hold open (TCX links, tracers: tc
    does not show them), the latter through /proc/PID/fdinfo of their
    program and link descriptors (tracers the kernel loaded are held by
    their links only)."""
    ids = set()
    for d in ("ingress", "egress"):
        for f in json.loads(sh("tc", "-n", ns, "-j", "filter", "show", "dev", ifname, d).stdout or "[]"):
            pid = f.get("options", {}).get("prog", {}).get("id")
            if pid:
                ids.add(int(pid))
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
            except OSError:
                continue
            if m:
                ids.add(int(m.group(1)))
    return sorted(ids)


# ------------------------------------------------------------ process stats
def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cpu_ticks(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    f = stat[stat.rindex(")") + 2:].split()
    return int(f[11]), int(f[12])  # utime, stime (whole process: all threads)


def vm_hwm_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_stat():
    """Per CPU: (busy, idle, steal) ticks from /proc/stat (busy: user, nice,
    system, irq, softirq; with tick accounting a tick in softirq also counts
    in the interrupted task's stime)."""
    out = {}
    for line in open("/proc/stat"):
        if line.startswith("cpu") and line[3].isdigit():
            f = line.split()
            v = [int(x) for x in f[1:]]
            out[f[0]] = (v[0] + v[1] + v[2] + v[5] + v[6], v[3] + v[4], v[7] if len(v) > 7 else 0)
    return out


def stat_delta(a, b):
    busy = sum(b[c][0] - a[c][0] for c in b if c in a) / CLK_TCK
    steal = sum(b[c][2] - a[c][2] for c in b if c in a) / CLK_TCK
    per_cpu = {c: round((b[c][0] - a[c][0]) / CLK_TCK, 2) for c in b if c in a}
    return busy, steal, per_cpu


def kthread_pids(prefix):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if open(f"/proc/{d}/comm").read().startswith(prefix):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def wait_quiet(limit_s, max_busy=0.05):
    """Waits (at most limit_s) for a 0.5 s stretch in which all CPUs together
    are busy less than max_busy of the time; returns (seconds waited, busy)."""
    t0 = time.monotonic()
    ncpu = len(cpu_stat())
    while True:
        a = cpu_stat()
        time.sleep(0.5)
        busy = stat_delta(a, cpu_stat())[0] / (0.5 * ncpu)
        waited = time.monotonic() - t0
        if busy < max_busy or waited >= limit_s:
            return round(waited, 1), round(busy, 3)


def tree_ticks(pids):
    return {p: cpu_ticks(p) for p in pids}


def run_ns(pids):
    """CPU time of all threads of these processes in ns (schedstat: finer than
    the 10 ms ticks of utime/stime); threads gone in between are not seen."""
    out = {}
    for p in pids:
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                out[(p, t)] = int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def run_ns_delta(a, b):
    return sum(v - a.get(k, 0) for k, v in b.items()) / 1e9


def window_cpu(t0, t1):
    """user, sys seconds spent between two samples by the processes in t1."""
    u = s = 0
    for p, v1 in t1.items():
        if v1 is None:
            continue
        v0 = t0.get(p) or (0, 0)
        u += v1[0] - v0[0]
        s += v1[1] - v0[1]
    return u / CLK_TCK, s / CLK_TCK


# ------------------------------------------------------------------- tools
class Tool:
    name = "?"
    label = "?"
    collector = False  # needs the IPFIX UDP counter

    def __init__(self, bench, work):
        self.b, self.work = bench, work

    def argv(self):
        raise NotImplementedError

    def ready(self, logtext):
        return packet_socket_count(self.b.net.rx) > 0

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)  # reap_run forwards it to the tool

    def counted(self, logtext, ipfix):
        raise NotImplementedError


def packet_socket_count(ns):
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/packet").stdout
    return max(0, len(out.strip().splitlines()) - 1)


class Bpfix(Tool):
    name, label = "bpfix", "bpfix-exporter (eBPF TC)"

    def argv(self):
        self.out = os.path.join(self.work, "bpfix.ipfix")
        return [self.b.exporter, "--interface", self.b.net.if_rx, "--collector", "file:" + self.out,
                "--log-level", "info"]

    def ready(self, logtext):
        return "exporting to" in logtext

    def extra_sample(self, pids):
        """Kernel memory of the BPF maps used by the programs attached to the
        interface and the exporter's tracers (not part of any process's RSS)."""
        ns, ifn = self.b.net.rx, self.b.net.if_rx
        try:
            map_ids, progs = set(), {}
            for pid in bpf_prog_ids(ns, ifn, pids):
                prog = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(pid)).stdout)
                progs[prog.get("name")] = {"bytes_jited": prog.get("bytes_jited"),
                                           "bytes_xlated": prog.get("bytes_xlated")}
                map_ids.update(prog.get("map_ids", []))
            maps = {}
            for mid in map_ids:
                m = json.loads(sh("bpftool", "-j", "map", "show", "id", mid).stdout)
                maps[m.get("name")] = {"bytes_memlock": int(m.get("bytes_memlock", 0)),
                                       "max_entries": m.get("max_entries"), "type": m.get("type")}
        except (OSError, subprocess.CalledProcessError, ValueError) as e:
            return {"bpf_error": str(e)}
        return {"bpf_map_bytes": sum(m["bytes_memlock"] for m in maps.values()), "bpf_maps": maps,
                "bpf_progs": progs}

    def counted(self, logtext, ipfix):
        r = sh(self.b.collector, "--read", self.out, check=False)
        by_dir = {}
        for line in r.stdout.splitlines():
            rec = json.loads(line)
            if "packetDeltaCount" in rec:
                d = rec.get("flowDirection")
                by_dir[d] = by_dir.get(d, 0) + rec["packetDeltaCount"]
        m = re.search(r"bpfix-exporter: summary: (.*)", logtext)
        summary = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
        return by_dir.get(0, 0), {"exported_packets_by_direction": {str(k): v for k, v in by_dir.items()},
                                  "summary": summary}


class Softflowd(Tool):
    name, label, collector = "softflowd", "softflowd 1.1.0", True

    def argv(self):
        self.ctl = os.path.join(self.work, "softflowd.ctl")
        return ["softflowd", "-i", self.b.net.if_rx, "-v", "10", "-n", f"127.0.0.1:{IPFIX_PORT}", "-d",
                "-c", self.ctl, "-p", os.path.join(self.work, "softflowd.pid")]

    def ready(self, logtext):
        return "Exporting flows" in logtext and packet_socket_count(self.b.net.rx) > 0

    def extra_sample(self, pids):
        st = sh("ip", "netns", "exec", self.b.net.rx, "softflowctl", "-c", self.ctl, "statistics",
                check=False).stdout
        out = {}
        for key, pat in (("processed", r"Packets processed: (\d+)"),
                         ("pcap_received", r"Packets received by libpcap: (\d+)"),
                         ("pcap_dropped", r"Packets dropped by libpcap: (\d+)")):
            m = re.search(pat, st)
            if m:
                out[key] = int(m.group(1))
        return {"softflowctl": out}

    def stop(self, proc):
        # softflowd 1.1.0 exits on SIGTERM without exporting its flows (seen here);
        # softflowctl "shutdown" is its graceful exit that expires and exports all.
        r = sh("ip", "netns", "exec", self.b.net.rx, "softflowctl", "-c", self.ctl, "shutdown", check=False)
        if r.returncode != 0:
            proc.send_signal(signal.SIGTERM)

    def counted(self, logtext, ipfix):
        return ipfix.get("packets", 0), {"ipfix": ipfix}


class Pmacctd(Tool):
    name, label, collector = "pmacctd", "pmacctd 1.7.7 + nfprobe", True

    def argv(self):
        conf = os.path.join(self.work, "pmacctd.conf")
        with open(conf, "w") as f:
            f.write(self.b.pmacctd_conf(self.work))
        return ["pmacctd", "-f", conf]

    def counted(self, logtext, ipfix):
        return ipfix.get("packets", 0), {"ipfix": ipfix}


class Tcpdump(Tool):
    name, label = "tcpdump", "tcpdump -w /dev/null"

    def argv(self):
        return ["tcpdump", "-i", self.b.net.if_rx, "-n", "-w", "/dev/null"]

    def ready(self, logtext):
        return "listening on" in logtext

    def counted(self, logtext, ipfix):
        got = {}
        for key, pat in (("captured", r"(\d+) packets? captured"), ("received_by_filter",
                                                                   r"(\d+) packets? received by filter"),
                         ("dropped_by_kernel", r"(\d+) packets? dropped by kernel")):
            m = re.search(pat, logtext)
            got[key] = int(m.group(1)) if m else None
        return got["captured"] or 0, {"tcpdump": got}


class DropFloor(Tool):
    """A kfree_skb tracer that only counts (bpf/drop_floor.bpf.c): what any
    drop tracer costs per dropped packet before doing any work. With the
    default sink every flood packet is a drop, so it counts them all."""
    name, label = "dropfloor", "kfree_skb tracer that only counts (floor of any drop tracer)"

    def argv(self):
        return [os.path.join(self.b.a.helpers, "floor_run"), "drop", self.b.a.drop_floor_obj]

    def ready(self, logtext):
        return os.path.exists(os.path.join(self.work, "tool.out")) and \
            "ready" in read(os.path.join(self.work, "tool.out"))

    def counted(self, logtext, ipfix):
        m = re.search(r"count (\d+)", read(os.path.join(self.work, "tool.out")))
        return (int(m.group(1)) if m else 0), {}


class TcxFloor(DropFloor):
    """The count-only TC program (bpf/tc_floor.bpf.c) on the RX veth's ingress
    through a TCX link, as bpfix attaches on kernels with TCX (6.6+): the floor
    of any TC meter there. "tcfloor" is the same program under clsact."""
    name, label = "tcxfloor", "floor: TCX link + count-only BPF program"

    def argv(self):
        return [os.path.join(self.b.a.helpers, "floor_run"), "tcx", self.b.a.floor_obj, self.b.net.if_rx]


class BpfixEnrichersOff(Bpfix):
    """bpfix with every enricher off ([enrich] drops, dns, rtt = false):
    the baseline for what the enrichers cost."""
    name, label = "bpfix_off", "bpfix-exporter, enrichers off"

    def argv(self):
        conf = os.path.join(self.work, "enrichers-off.toml")
        with open(conf, "w") as f:
            f.write("[enrich]\ndrops = false\ndns = false\nrtt = false\n")
        return super().argv() + ["--config", conf]


def only_enricher(which):
    """bpfix with one enricher on and the others off: what that one costs."""
    class BpfixOnly(Bpfix):
        name, label = f"bpfix_{which}", f"bpfix-exporter, only the {which} enricher"

        def argv(self):
            conf = os.path.join(self.work, f"only-{which}.toml")
            with open(conf, "w") as f:
                f.write("[enrich]\n" + "".join(f"{e} = {'true' if e == which else 'false'}\n"
                                              for e in ("drops", "dns", "rtt")))
            return super().argv() + ["--config", conf]
    return BpfixOnly


CAPTURE_PORT = 5741
CAPTURE_CLIENT = """
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
n = 0
try:
    c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    print('connected', flush=True)
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        n += len(d)
finally:
    print('bytes', n, flush=True)
"""


def capture_tool(which):
    """bpfix (enrichers as configured by default) with the packet capture
    agent: "idle" has the live PCAP server but no client (the capture
    programs are not attached); "other" has a client reading the stream and
    a kernel rule for UDP port 53, which the flood never uses (the capture
    program's parse and rule on every packet, nothing copied); "flood" has
    the client and a rule for the flooded port (every packet copied to the
    ring, read, and streamed as pcap; 96-byte snap length). The client runs
    on the tool CPU; its CPU time is not in the tool's."""
    rules = {"idle": 53, "other": 53, "flood": SINK_PORT}

    class BpfixCapture(Bpfix):
        name = f"bpfix_capture_{which}"
        label = {"idle": "bpfix-exporter, capture server, no client",
                 "other": "bpfix-exporter, capture on (client), rule for another port",
                 "flood": "bpfix-exporter, capture on (client), rule for the flooded port"}[which]
        client = None

        def argv(self):
            conf = os.path.join(self.work, f"capture-{which}.toml")
            with open(conf, "w") as f:
                f.write(f'[capture]\nlisten = "127.0.0.1:{CAPTURE_PORT}"\nsnaplen = 96\n'
                        f'[[capture.filter]]\naction = "accept"\nprotocol = "udp"\nport = {rules[which]}\n')
            return super().argv() + ["--config", conf]

        def ready(self, logtext):
            if not super().ready(logtext):
                return False
            if which == "idle":
                return True
            if self.client is None:
                self.client = self.b.net.spawn(self.b.net.rx, ["/usr/bin/python3", "-c", CAPTURE_CLIENT,
                                                               CAPTURE_PORT], cpu=self.b.a.tool_cpu,
                                               stdout=open(os.path.join(self.work, "client.out"), "w"))
            return "capture: on for 1 interface" in logtext

        def stop(self, proc):
            if self.client and self.client.poll() is None:
                self.client.send_signal(signal.SIGTERM)
                self.client.wait(timeout=10)
            super().stop(proc)

        def counted(self, logtext, ipfix):
            n, detail = super().counted(logtext, ipfix)
            m = re.search(r"bytes (\d+)", read(os.path.join(self.work, "client.out")))
            detail["capture_client_bytes"] = int(m.group(1)) if m else None
            return n, detail
    return BpfixCapture


TOOL_CLASSES = {c.name: c for c in (DropFloor, TcxFloor, Bpfix, BpfixEnrichersOff, only_enricher("drops"), only_enricher("dns"),
                                    only_enricher("rtt"), capture_tool("idle"), capture_tool("other"),
                                    capture_tool("flood"), Softflowd, Pmacctd, Tcpdump)}


# -------------------------------------------------------------- benchmark
class Bench:
    def __init__(self, a, net, work):
        self.a, self.net, self.work = a, net, work
        self.exporter = os.path.join(a.build, "bin", "bpfix-exporter")
        self.collector = os.path.join(a.build, "bin", "bpfix-collector")
        self.flood = os.path.join(a.helpers, "flood")
        self.reap = os.path.join(a.helpers, "reap_run")
        self.ksoftirqd = kthread_pids("ksoftirqd/")
        self.sink_pids = []  # a reading sink's CPU is not other load

    def pmacctd_conf(self, work):
        return ("daemonize: false\n"
                f"pcap_interface: {self.net.if_rx}\n"
                "plugins: nfprobe\n"
                f"nfprobe_receiver: 127.0.0.1:{IPFIX_PORT}\n"
                "nfprobe_version: 10\n"
                "aggregate: src_host, dst_host, src_port, dst_port, proto, tos\n"
                f"pidfile: {os.path.join(work, 'pmacctd.pid')}\n")

    def run_flood(self, perf_data=None):
        argv = self.flood_argv()
        if perf_data:  # sample the sender's CPU: the sender and all softirq work on the packets
            argv = ["perf", "record", "-q", "-o", perf_data, "-C", str(self.a.tx_cpu), "-g", "--"] + argv
        r = sh(*argv)
        m = re.search(r"sent (\d+) errors (\d+) seconds ([\d.]+) user ([\d.]+) sys ([\d.]+)", r.stdout)
        return int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)) + float(m.group(5))

    def measure(self, name, rnd, profile=False):
        work = os.path.join(self.work, f"{name}-{rnd}")
        os.makedirs(work)
        res = {"tool": name, "round": rnd}
        if self.a.quiet_wait > 0:
            res["quiet_wait_s"], res["busy_before"] = wait_quiet(self.a.quiet_wait)
        rx_start, tx_start = self.net.rx_packets()
        proc = coll = None
        tool = None
        logpath = os.path.join(work, "tool.log")
        ready_file = os.path.join(work, "collector.port")
        floor = None
        if name == "tcfloor":
            floor = self.floor_attach()
        elif name != "baseline":
            tool = TOOL_CLASSES[name](self, work)
            if tool.collector:
                coll = self.net.spawn(self.net.rx, ["/usr/bin/python3", os.path.join(HERE, "ipfix_sum.py"), "udp",
                                                    "127.0.0.1", IPFIX_PORT, ready_file],
                                      cpu=self.a.tool_cpu, stdout=subprocess.PIPE, text=True)
                wait_for(lambda: os.path.exists(ready_file), 10, "IPFIX counter did not start")
            rusage = os.path.join(work, "rusage")
            t_launch = time.monotonic()
            proc = self.net.spawn(self.net.rx, [self.reap, rusage, self.a.tool_cpu] + tool.argv(),
                                  stdout=open(os.path.join(work, "tool.out"), "w"),
                                  stderr=open(logpath, "w"))
            wait_for(lambda: tool.ready(read(logpath)) or proc.poll() is not None, 30,
                     f"{name} not ready in 30 s:\n{read(logpath)[-2000:]}")
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start (rc {proc.returncode}):\n{read(logpath)[-2000:]}")
            res["startup_s"] = round(time.monotonic() - t_launch, 3)
            time.sleep(self.a.settle_start)
        pids = descendants(proc.pid) if proc else []
        t0, n0 = tree_ticks(pids), run_ns(pids)
        rx0, _ = self.net.rx_packets()
        s0, k0 = cpu_stat(), tree_ticks(self.ksoftirqd + self.sink_pids)
        drops0 = self.net.udp_rcvbuf_errors()
        perf_data = os.path.join(work, "perf.data") if profile else None
        sent, errors, secs, sender_cpu = self.run_flood(perf_data)
        s1, k1 = cpu_stat(), tree_ticks(self.ksoftirqd + self.sink_pids)
        res["sink_drops"] = self.net.udp_rcvbuf_errors() - drops0
        t_mid = tree_ticks(descendants(proc.pid)) if proc else {}
        time.sleep(self.a.settle_end)  # let the tool catch up with what it has queued
        rx1, _ = self.net.rx_packets()
        res.update(sent=sent, send_errors=errors, flood_s=secs, rx=rx1 - rx0, rate_pps=(rx1 - rx0) / secs)
        # CPU time during the flood that neither the sender, the tool nor
        # ksoftirqd (our packets' softirq work) nor a reading sink used: other
        # load on the machine
        busy, steal, per_cpu = stat_delta(s0, s1)
        tool_mid = sum(window_cpu(t0, t_mid))
        ksoft = sum(window_cpu(k0, k1))
        res.update(sender_cpu_s=sender_cpu, ksoftirqd_cpu_s=ksoft, busy_cpu_s=per_cpu, steal_s=steal,
                   other_cpu_s=round(max(0.0, busy - sender_cpu - tool_mid - ksoft), 3))
        if proc:
            pids = descendants(proc.pid)
            t1, n1 = tree_ticks(pids), run_ns(pids)
            u, s = window_cpu(t0, t1)
            # total from schedstat (ns); the user/sys split from utime/stime (ticks)
            res.update(window_user_s=u, window_sys_s=s, window_cpu_s=run_ns_delta(n0, n1), window_ticks_s=u + s,
                       processes=len(pids), vm_hwm_kib=sum(vm_hwm_kib(p) for p in pids),
                       vm_hwm_each_kib=[vm_hwm_kib(p) for p in pids])
            if hasattr(tool, "extra_sample"):
                res.update(tool.extra_sample(pids))
            if profile and name.startswith("bpfix"):
                res["bpf_stats"] = self.bpf_stats_flood(pids)
            t_stop = time.monotonic()
            tool.stop(proc)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                res["stop_error"] = "did not exit within 30 s"
            res["stop_s"] = round(time.monotonic() - t_stop, 3)
            rc, ru_user, ru_sys, maxrss = open(rusage).read().split()
            res.update(exit=int(rc), total_user_s=float(ru_user), total_sys_s=float(ru_sys),
                       total_cpu_s=float(ru_user) + float(ru_sys), maxrss_kib=int(maxrss))
            res["peak_rss_kib"] = max(res["vm_hwm_kib"], res["maxrss_kib"])
            ipfix = {}
            if coll:
                time.sleep(0.5)
                coll.send_signal(signal.SIGTERM)
                out, _ = coll.communicate(timeout=10)
                ipfix = json.loads(out)
            rx_end, tx_end = self.net.rx_packets()
            # a clsact qdisc left on the interface (even empty) would put tc_run on
            # the path of the next configurations: note it and remove it
            qd = sh("tc", "-n", self.net.rx, "qdisc", "show", "dev", self.net.if_rx).stdout
            if "clsact" in qd:
                res["clsact_left_after_exit"] = True
                sh("tc", "-n", self.net.rx, "qdisc", "del", "dev", self.net.if_rx, "clsact", check=False)
            counted, detail = tool.counted(read(logpath), ipfix)
            res.update(detail)
            res["counted"] = counted
            res["rx_during_tool"] = rx_end - rx_start
            res["tx_during_tool"] = tx_end - tx_start
            res["monitoring"] = counted / (rx_end - rx_start) if rx_end > rx_start else 0.0
        if floor:
            counted = self.floor_count(floor)
            sh("tc", "-n", self.net.rx, "qdisc", "del", "dev", self.net.if_rx, "clsact")
            rx_end, tx_end = self.net.rx_packets()
            res.update(counted=counted, rx_during_tool=rx_end - rx_start, tx_during_tool=tx_end - tx_start,
                       monitoring=counted / (rx_end - rx_start) if rx_end > rx_start else 0.0)
        if perf_data:
            res.update(perf_profile(perf_data, name))
        return res

    # ------------------------------------------------------------ TC floor
    def floor_attach(self):
        """clsact + the count-only BPF program (bpf/tc_floor.bpf.c) on the RX veth."""
        ns, ifn = self.net.rx, self.net.if_rx
        sh("tc", "-n", ns, "qdisc", "add", "dev", ifn, "clsact")
        sh("tc", "-n", ns, "filter", "add", "dev", ifn, "ingress", "bpf", "direct-action", "obj", self.a.floor_obj,
           "sec", "tc")
        for f in json.loads(sh("tc", "-n", ns, "-j", "filter", "show", "dev", ifn, "ingress").stdout or "[]"):
            pid = f.get("options", {}).get("prog", {}).get("id")
            if pid:
                prog = json.loads(sh("bpftool", "-j", "prog", "show", "id", pid).stdout)
                return prog["map_ids"][0]
        raise RuntimeError("tc floor program not attached")

    def floor_count(self, map_id):
        dump = json.loads(sh("bpftool", "-j", "map", "dump", "id", map_id).stdout)
        return sum(v["value"] for e in dump for v in e["formatted"]["values"])

    # ------------------------------------------------------------ diagnosis
    def flood_argv(self):
        return ["ip", "netns", "exec", self.net.tx, self.flood, "raw", self.net.if_tx, self.net.mac_rx, TX_IP, RX_IP,
                SINK_PORT, self.a.flows, self.a.payload, self.a.seconds, self.a.tx_cpu]

    def bpf_stats_flood(self, pids=()):
        """One more flood with kernel.bpf_stats_enabled=1 (restored afterwards):
        the kernel's own ns per run of each program on the interface and of
        each program the processes `pids` hold (the drop tracer's ns per run
        is its cost per dropped packet)."""
        path = "/proc/sys/kernel/bpf_stats_enabled"
        if not os.path.exists(path) or not shutil.which("bpftool"):
            return {}
        prev = open(path).read().strip()
        try:
            with open(path, "w") as f:
                f.write("1")
            before = self.prog_stats(pids)
            r = sh(*self.flood_argv())
            after = self.prog_stats(pids)
        finally:
            with open(path, "w") as f:
                f.write(prev)
        out = {}
        for name, (ns1, n1) in after.items():
            ns0, n0 = before.get(name, (0, 0))
            if n1 > n0:
                out[name] = {"runs": n1 - n0, "ns_per_run": (ns1 - ns0) / (n1 - n0)}
        m = re.search(r"sent (\d+) errors \d+ seconds ([\d.]+)", r.stdout)
        if m:
            out["flood_pps"] = int(m.group(1)) / float(m.group(2))
        return out

    def prog_stats(self, pids=()):
        """run_time_ns and run_cnt of the programs bpf_prog_ids() finds."""
        ids = bpf_prog_ids(self.net.rx, self.net.if_rx, pids)
        stats = {}
        for i in sorted(ids):
            p = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(i)).stdout or "{}")
            if p.get("name"):
                stats[p["name"]] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
        return stats



def read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def wait_for(cond, timeout, msg):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise RuntimeError(msg)


# ------------------------------------------------------------------ report
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_vs(vs):
    return "–" if vs is None else f"{vs:.3f}"


def fmt_int(n):
    return f"{n:,.0f}"


def table(results, tools):
    base = med([r["rate_pps"] for r in results if r["tool"] == "baseline"])
    rows = []
    head = ("| configuration | received pkt/s | vs baseline | monitoring rate (counted / received) | "
            "tool CPU s, flood window | tool CPU s, whole run (user+sys) | peak RSS MiB |")
    rows.append(head)
    rows.append("|---|---|---|---|---|---|---|")
    summary = {}
    for t in tools:
        rs = [r for r in results if r["tool"] == t]
        if not rs:
            continue
        rate = med([r["rate_pps"] for r in rs])
        vs = rate / base if base else None
        if t == "baseline":
            rows.append(f"| nothing attached (baseline) | {fmt_int(rate)} | 1.000 | – | – | – | – |")
            summary[t] = {"rate_pps": rate}
            continue
        mon = med([r["monitoring"] for r in rs])
        mid = sorted(rs, key=lambda r: r["monitoring"])[len(rs) // 2]
        if t == "tcfloor":
            rows.append(f"| floor: clsact + count-only BPF program (no process) | {fmt_int(rate)} | {fmt_vs(vs)} | "
                        f"{100 * mon:.3f} % ({fmt_int(mid['counted'])} / {fmt_int(mid['rx_during_tool'])}) | "
                        "– | – | – |")
            summary[t] = {"rate_pps": rate, "vs_baseline": vs, "monitoring": mon}
            continue
        wu, ws = med([r["window_user_s"] for r in rs]), med([r["window_sys_s"] for r in rs])
        w = med([r["window_cpu_s"] for r in rs])
        tu, ts = med([r["total_user_s"] for r in rs]), med([r["total_sys_s"] for r in rs])
        tot = med([r["total_cpu_s"] for r in rs])
        rss = med([r["peak_rss_kib"] for r in rs]) / 1024
        label = TOOL_CLASSES[t].label
        if t == "pmacctd":
            label += " (core + plugin)"
        rows.append(f"| {label} | {fmt_int(rate)} | {fmt_vs(vs)} | {100 * mon:.3f} % "
                    f"({fmt_int(mid['counted'])} / {fmt_int(mid['rx_during_tool'])}) | "
                    f"{w:.3f} | {tot:.2f} ({tu:.2f}+{ts:.2f}) | {rss:.1f} |")
        summary[t] = {"rate_pps": rate, "vs_baseline": vs, "monitoring": mon,
                      "all_exact": all(r["counted"] == r["rx_during_tool"] for r in rs),
                      "window_cpu_s": w, "total_cpu_s": tot, "peak_rss_mib": rss,
                      "min_monitoring": min(r["monitoring"] for r in rs)}
    return "\n".join(rows), summary


def per_run_table(results):
    rows = ["| run | configuration | sent | received | pkt/s | vs the round's baseline | counted | monitoring | "
            "CPU s window | CPU s whole | peak RSS KiB | start s | other load CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {r["round"]: r["rate_pps"] for r in results if r["tool"] == "baseline"}
    for r in results:
        other = f"{r['other_cpu_s']:.2f}"
        vs = f"{r['rate_pps'] / base[r['round']]:.3f}" if r["round"] in base else "–"
        if r["tool"] == "baseline":
            rows.append(f"| {r['round']} | baseline | {r['sent']} | {r['rx']} | {fmt_int(r['rate_pps'])} | "
                        f"{vs} | – | – | – | – | – | – | {other} |")
        elif r["tool"] == "tcfloor":
            rows.append(f"| {r['round']} | tcfloor | {r['sent']} | {r['rx_during_tool']} | {fmt_int(r['rate_pps'])} | "
                        f"{vs} | {r['counted']} | {100 * r['monitoring']:.4f} % | – | – | – | – | {other} |")
        else:
            rows.append(f"| {r['round']} | {r['tool']} | {r['sent']} | {r['rx_during_tool']} | "
                        f"{fmt_int(r['rate_pps'])} | {vs} | {r['counted']} | {100 * r['monitoring']:.4f} % | "
                        f"{r['window_cpu_s']:.3f} | {r['total_cpu_s']:.2f} | {r['peak_rss_kib']} | "
                        f"{r.get('startup_s', 0):.2f} | {other} |")
    return "\n".join(rows)


def noisy(results, seconds):
    """Runs during whose flood other processes used more than 2 % of a CPU."""
    return [r for r in results if r["other_cpu_s"] > 0.02 * seconds]


HOOKS = ("tc_run", "tpacket_rcv", "packet_rcv")  # where a tool's kernel work on a received packet starts
TOOL_HOOKS = {"bpfix": ("tc_run",), "tcfloor": ("tc_run",), "tcxfloor": ("tc_run",), "softflowd": ("tpacket_rcv", "packet_rcv"),
              "pmacctd": ("tpacket_rcv", "packet_rcv"), "tcpdump": ("tpacket_rcv", "packet_rcv")}
DETAIL = ("cls_bpf_classify", "lookup_nulls_elem_raw", "__htab_map_lookup_elem", "htab_map_hash", "__pi_memcpy",
          "ktime_get_mono_fast_ns", "read_tsc", "skb_copy_bits", "sock_def_readable", "__wake_up_sync_key",
          "run_filter", "bpf_prog_run_generic_xdp")


def perf_profile(perf_data, tool):
    rep = sh("perf", "report", "-i", perf_data, "--children", "--sort", "sym", "-q", "--stdio", "-g", "none",
             check=False).stdout
    rows = []
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[k\]\s+(\S+)", line)
        if m:
            rows.append((float(m.group(1)), float(m.group(2)), m.group(3)))
    sel = {n: {"children_pct": c, "self_pct": se} for c, se, n in rows
           if n in HOOKS or n in DETAIL or "_meter_" in n}
    share = sum(v["children_pct"] for n, v in sel.items() if n in TOOL_HOOKS.get(tool, HOOKS)) / 100
    if tool.startswith("bpfix") and share == 0:
        # TCX runs the programs straight from the (inlined) ingress hook, with
        # no tc_run frame: their own samples, callees included, are the cost
        share = sum(v["children_pct"] for n, v in sel.items() if "_meter_" in n) / 100
    return {"perf": sel, "hook_share": share, "perf_samples_parsed": len(rows)}


def diagnosis_text(profiles):
    lines = ["Sender-CPU profile: one more flood per configuration under `perf record -C <sender CPU> -g`. All",
             "work on a packet (send, veth, receive, the tools' kernel hooks) runs on that CPU, so the share of",
             "its samples inside the tool's hook (callees included) predicts the rate the tool leaves,",
             "1 - share, without the run-to-run noise of the rates above. Hooks: tc_run for the floor (clsact",
             "and the BPF program) and for bpfix under classic tc; under TCX, bpfix's programs (no tc_run",
             "frame); tpacket_rcv for the libpcap tools (the copy into their ring).", "",
             "| configuration | flood pkt/s (perf on) | hook share of sender CPU | predicted vs baseline | "
             "notable kernel symbols (share of all samples, callees included) |", "|---|---|---|---|---|"]
    notes = []
    for r in profiles:
        perf = r.get("perf", {})
        hooks = TOOL_HOOKS.get(r["tool"], HOOKS)
        parts = sorted(((v["children_pct"], n) for n, v in perf.items() if n not in HOOKS), reverse=True)[:5]
        hook_txt = ", ".join(f"{n} {perf[n]['children_pct']:.1f} %" for n in hooks if n in perf) or "–"
        lines.append(f"| {r['tool']} | {fmt_int(r['rate_pps'])} | {100 * r.get('hook_share', 0):.1f} % ({hook_txt}) | "
                     f"{1 - r.get('hook_share', 0):.3f} | " + ", ".join(f"{n} {c:.1f} %" for c, n in parts) + " |")
        for name, st in sorted(r.get("bpf_stats", {}).items()):
            if name != "flood_pps":
                notes.append(f"kernel.bpf_stats_enabled (one more flood, {fmt_int(r['bpf_stats'].get('flood_pps', 0))}"
                             f" pkt/s): {name} {st['ns_per_run']:.0f} ns per run over {st['runs']} runs"
                             + (" (the drop tracer: its cost per dropped packet)" if name == "drop_kfree_skb" else ""))
    return "\n".join(lines + ([""] + notes if notes else []))


def targets(summary):
    out = []
    b = summary.get("bpfix")
    sf = summary.get("softflowd")
    if not b:
        return ["bpfix not measured"]

    def line(ok, text):
        out.append(("MET   " if ok else "MISSED") + " " + text)

    line(b["vs_baseline"] >= 0.95, f"bpfix rate >= 0.95 x baseline: {b['vs_baseline']:.3f}")
    line(b["all_exact"], f"bpfix monitoring rate 100.0 % in every run: median {100 * b['monitoring']:.4f} %, "
                         f"lowest {100 * b['min_monitoring']:.4f} %")
    if sf:
        rw = b["window_cpu_s"] / sf["window_cpu_s"] if sf["window_cpu_s"] else float("inf")
        # (window: from the start of the flood to --settle-end after it; whole: exec to exit)
        rt = b["total_cpu_s"] / sf["total_cpu_s"] if sf["total_cpu_s"] else float("inf")
        line(rw < 0.1, f"bpfix CPU < 1/10 of softflowd's, flood window: {b['window_cpu_s']:.3f} s vs "
                       f"{sf['window_cpu_s']:.3f} s = {rw:.4f}")
        line(rt < 0.1, f"bpfix CPU < 1/10 of softflowd's, whole run (start to exit): {b['total_cpu_s']:.3f} s vs "
                       f"{sf['total_cpu_s']:.3f} s = {rt:.3f}")
    line(b["peak_rss_mib"] < 16, f"bpfix peak RSS < 16 MiB: {b['peak_rss_mib']:.1f} MiB")
    off = summary.get("bpfix_off")
    if off:
        ratio = b["vs_baseline"] / off["vs_baseline"] if off["vs_baseline"] else float("inf")
        line(ratio >= 0.97, f"bpfix with its enrichers (drops, DNS, RTT as configured by default) >= 0.97 x "
                            f"enrichers off: {b['vs_baseline']:.3f} / {off['vs_baseline']:.3f} = {ratio:.3f}")
        for which in ("drops", "dns", "rtt"):
            one = summary.get(f"bpfix_{which}")
            if one and off["vs_baseline"]:
                out.append(f"INFO   only the {which} enricher on / enrichers off: {one['vs_baseline']:.3f} / "
                           f"{off['vs_baseline']:.3f} = {one['vs_baseline'] / off['vs_baseline']:.3f}, peak RSS "
                           f"{one['peak_rss_mib']:.1f} MiB")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--helpers", required=True, help="directory with the built flood and reap_run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--flows", type=int, default=100)
    ap.add_argument("--payload", type=int, default=18, help="UDP payload bytes (18: 60-byte frames)")
    ap.add_argument("--sink", choices=("drop", "read"), default="drop",
                    help="drop: the destination socket is never read (every packet a kernel drop); "
                         "read: a receiver on --tool-cpu keeps up (drops rare)")
    ap.add_argument("--tx-cpu", type=int, default=0)
    ap.add_argument("--tool-cpu", type=int, default=1)
    ap.add_argument("--settle-start", type=float, default=1.0, help="seconds between ready and flood")
    ap.add_argument("--settle-end", type=float, default=1.5, help="seconds between flood end and stop")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="before each measurement wait up to this long for an idle machine (0: don't)")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS))
    ap.add_argument("--tag", default=f"bpfixlive{os.getpid()}")
    ap.add_argument("--diagnose", action="store_true",
                    help="after the rounds, one flood per configuration under perf (sender CPU), plus the BPF "
                         "program's run-time statistics for bpfix")
    ap.add_argument("--floor-obj", help="build/bpf/tc_floor.bpf.o (the tcfloor configuration)")
    ap.add_argument("--drop-floor-obj", help="build/bpf/drop_floor.bpf.o (the dropfloor configuration)")
    ap.add_argument("--json")
    ap.add_argument("--markdown", help="also write the report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, exports)")
    ap.add_argument("--work-parent", help="where to make the work directory (default: the system's temp dir)")
    a = ap.parse_args()
    tools = [t for t in a.tools.split(",") if t]
    for t in tools:
        if t not in ALL_TOOLS:
            ap.error(f"unknown tool {t}")
    if os.geteuid() != 0:
        log("live_bench: needs root (network namespaces, eBPF)")
        return 2
    if "tcfloor" in tools and not (a.floor_obj and os.path.exists(a.floor_obj)):
        log("live_bench: no --floor-obj; the TC floor is left out")
        tools.remove("tcfloor")
    if "tcxfloor" in tools and not (a.floor_obj and os.path.exists(a.floor_obj)
                                    and os.access(os.path.join(a.helpers, "floor_run"), os.X_OK)):
        log("live_bench: no --floor-obj or floor_run helper; the TCX floor is left out")
        tools.remove("tcxfloor")
    if "dropfloor" in tools and not (a.drop_floor_obj and os.path.exists(a.drop_floor_obj)
                                     and os.access(os.path.join(a.helpers, "floor_run"), os.X_OK)):
        log("live_bench: no --drop-floor-obj or floor_run helper; the drop tracer floor is left out")
        tools.remove("dropfloor")
    for t in [t for t in tools if t.startswith("bpfix")]:
        if not os.access(os.path.join(a.build, "bin", "bpfix-exporter"), os.X_OK):
            log(f"live_bench: no {a.build}/bin/bpfix-exporter; {t} is left out")
            tools.remove(t)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    work = tempfile.mkdtemp(prefix="bpfix-live-", dir=a.work_parent)
    net = Net(a.tag)
    results = []
    diagnosis = None
    t_start = time.monotonic()
    try:
        net.setup()
        sink_argv = [os.path.join(a.helpers, "flood"), "sink", RX_IP, SINK_PORT]
        if a.sink == "read":
            sink_argv += ["read", a.tool_cpu]
        sink = net.spawn(net.rx, sink_argv, stdout=subprocess.PIPE, text=True)
        if sink.stdout.readline().strip() != "sink ready":
            raise RuntimeError("sink did not start")
        bench = Bench(a, net, work)
        if a.sink == "read":
            bench.sink_pids = [sink.pid] + descendants(sink.pid)
        log(f"live_bench: {a.runs} rounds of {', '.join(tools)}; {a.seconds:g} s floods of "
            f"{a.payload + 42}-byte frames, {a.flows} flows, sender on CPU {a.tx_cpu}, tools on CPU {a.tool_cpu}, "
            f"sink {'reading' if a.sink == 'read' else 'never reading'}")
        for rnd in range(1, a.runs + 1):
            for t in tools:
                r = bench.measure(t, rnd)
                results.append(r)
                msg = f"  round {rnd} {t:9s} {fmt_int(r['rate_pps']):>9s} pkt/s"
                if t == "tcfloor":
                    msg += f"  counted {r['counted']}/{r['rx_during_tool']}"
                elif t != "baseline":
                    msg += (f"  counted {r['counted']}/{r['rx_during_tool']} ({100 * r['monitoring']:.4f} %)"
                            f"  CPU window {r['window_cpu_s']:.3f} s whole {r['total_cpu_s']:.2f} s"
                            f"  RSS {r['peak_rss_kib'] / 1024:.1f} MiB")
                msg += f"  other load {r['other_cpu_s']:.2f} CPU s  socket drops {r['sink_drops']}"
                log(msg)
                if r.get("tx_during_tool"):
                    log(f"    note: the RX veth sent {r['tx_during_tool']} packets during this run")
        if a.diagnose:
            if not shutil.which("perf"):
                log("live_bench: no perf (package linux-perf); no sender-CPU profile")
            else:
                log("live_bench: one profiled flood per configuration (perf on the sender CPU)")
                diagnosis = []
                for t in tools:
                    r = bench.measure(t, "perf", profile=True)
                    diagnosis.append(r)
                    log(f"  perf {t:9s} {fmt_int(r['rate_pps']):>9s} pkt/s  hook share "
                        f"{100 * r.get('hook_share', 0):.1f} %")
    except Stop as e:
        log(f"live_bench: stopped by {e}; cleaning up")
        return 130
    finally:
        net.teardown()
        if a.keep:
            log(f"live_bench: logs and exports kept in {work}")
        else:
            subprocess.run(["rm", "-rf", work])

    tab, summary = table(results, tools)
    kern = os.uname().release
    bmaps = [r.get("bpf_map_bytes") for r in results if r["tool"] == "bpfix" and r.get("bpf_map_bytes")]
    out = []
    p = out.append
    p(f"commit {commit_stamp()}, {time.strftime('%Y-%m-%d')}, bench/live/run.sh, "
      f"{'sink reading' if a.sink == 'read' else 'sink never read'}, configurations {','.join(tools)}")
    p(f"Live benchmark: {a.runs} rounds, {a.seconds:g} s per flood, {a.payload + 42}-byte frames "
      f"({a.payload + 28}-byte IP packets), {a.flows} UDP flows; kernel {kern}; "
      f"{time.monotonic() - t_start:.0f} s in all")
    p("")
    drops = [r.get("sink_drops", 0) for r in results]
    rx = [r.get("rx", 0) for r in results]
    p(f"Sink: {'a receiver that reads (drops rare)' if a.sink == 'read' else 'never read (every packet a kernel drop)'}; "
      f"socket drops per flood: median {fmt_int(med(drops))} of a median {fmt_int(med(rx))} packets received")
    p("")
    p(tab)
    p("")
    brates = [r["rate_pps"] for r in results if r["tool"] == "baseline"]
    if len(brates) > 1:
        p(f"Baseline runs: {', '.join(fmt_int(x) for x in brates)} pkt/s (spread "
          f"{100 * (max(brates) - min(brates)) / med(brates):.0f} % of the median): run-to-run noise of this "
          "machine, to be read against the 5 % margin of the rate target.")
        p("")
    p("Per run:")
    p("")
    p(per_run_table(results))
    p("")
    if bmaps:
        last = [r for r in results if r["tool"] == "bpfix" and r.get("bpf_maps")][-1]
        parts = ", ".join(f"{n} {m['type']} {m['max_entries']} entries {m['bytes_memlock'] / 2**20:.1f} MiB"
                          for n, m in sorted(last["bpf_maps"].items()))
        p(f"bpfix BPF maps (kernel memory, not in RSS): {med(bmaps) / 2**20:.1f} MiB ({parts})")
    if any(r.get("clsact_left_after_exit") for r in results if r["tool"] == "bpfix"):
        p("bpfix left an (empty) clsact qdisc on the interface after SIGTERM; removed here before the next run.")
    steal = sum(r["steal_s"] for r in results)
    n = noisy(results, a.seconds)
    if n:
        p(f"WARNING: other load on the machine during {len(n)} of {len(results)} floods (> 2 % of a CPU): "
          + ", ".join(f"round {r['round']} {r['tool']} {r['other_cpu_s']:.2f} CPU s" for r in n)
          + "; their rates are not clean measurements")
    else:
        p("Machine quiet during every flood (other load <= 2 % of a CPU)" +
          (f"; hypervisor steal {steal:.2f} s in all" if steal else ""))
    p("")
    for line in targets(summary):
        p("target " + line)
    if diagnosis:
        p("")
        p(diagnosis_text(diagnosis))
    text = "\n".join(out)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text.replace("\ntarget ", "\n- target ").replace("\n\ntarget ", "\n\n- target ") + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"config": vars(a), "kernel": kern, "results": results, "summary": summary,
                       "diagnosis": diagnosis}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
