#!/usr/bin/python3
"""bpfix pcap benchmark driver; run it through bench/run.sh.

Meters one synthetic pcap (bench/make_bench_pcap.py, or with --mix dns|udp
bench/make_mix_pcap.py) with bpfix-exporter, softflowd and nfpcapd, a few
times each in round-robin order, and prints the median CPU time
(user+sys), wall time and peak RSS of every tool, headed by the commit.

CPU time and peak RSS come from wait4() on the tool's own process (all of
its threads; the UDP sink that receives exported IPFIX is a separate process
on the other CPU and is not counted). Every tool is pinned to one CPU
(--cpu), so multi-threaded tools cannot spread over both cores.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def pkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# --------------------------------------------------------------------------- pcap

def ensure_pcap(args):
    gen = os.path.join(HERE, "make_bench_pcap.py" if args.mix == "access" else "make_mix_pcap.py")
    with open(gen, "rb") as f:
        gen_hash = hashlib.sha256(f.read()).hexdigest()[:10]
    prefix = "bench-" if args.mix == "access" else f"mix-{args.mix}-"
    waves = f"x{args.waves}" if args.waves > 1 else ""
    name = f"{prefix}{args.packets}p-{args.flows}f{waves}-{args.seed}-{gen_hash}.pcap"
    path = os.path.join(args.work, name)
    info_path = path + ".info"
    os.makedirs(args.work, exist_ok=True)
    for old in os.listdir(args.work):  # only one cached capture per mix
        if old.startswith(prefix) and not old.startswith(name):
            os.unlink(os.path.join(args.work, old))
    if args.regen or not (os.path.exists(path) and os.path.exists(info_path)):
        log(f"generating {path} ...")
        t0 = time.monotonic()
        tmp = path + ".tmp"
        r = subprocess.run([PY, gen, "-o", tmp, "--packets", str(args.packets), "--flows",
                            str(args.flows), "--seed", str(args.seed)]
                           + ([] if args.mix == "access" else ["--mix", args.mix])
                           + (["--waves", str(args.waves)] if args.waves > 1 else []),
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench: generator failed:\n{r.stderr}")
        os.rename(tmp, path)
        with open(info_path, "w") as f:
            f.write(r.stderr)
        log(f"generated in {time.monotonic() - t0:.1f} s")
    with open(info_path) as f:
        info = f.read()
    m = re.search(r"packets=(\d+) uniflows=(\d+) connections=(\d+) ipv6_connections=(\d+) "
                  r"ip_octets=(\d+) span_s=([\d.]+)", info)
    meta = {"path": path, "bytes": os.path.getsize(path), "packets": int(m.group(1)),
            "uniflows": int(m.group(2)), "connections": int(m.group(3)),
            "ipv6_connections": int(m.group(4)), "ip_octets": int(m.group(5)),
            "span_s": float(m.group(6)), "info": info.strip()}
    # Warm the page cache so no tool pays for the disk.
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass
    return meta


# --------------------------------------------------------------------------- processes

def pin(cpu):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def build_c(work, name):
    """Compiles bench/NAME.c into WORK/NAME; returns (path, error)."""
    out = os.path.join(work, name)
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler (build-essential)"
    r = subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, name + ".c"), "-lpcap"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"cannot build {name}.c: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return out, None


def run_measured(runner, cmd, cpu, timeout, run_dir):
    """Runs cmd under rusage_run; returns dict(rc, wall, user, sys, cpu, maxrss_kib)."""
    res = os.path.join(run_dir, "rusage")
    with open(os.path.join(run_dir, "stdout"), "wb") as fo, \
            open(os.path.join(run_dir, "stderr"), "wb") as fe:
        p = subprocess.Popen([runner, res, str(-1 if cpu is None else cpu)] + cmd, stdout=fo,
                             stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return {"rc": f"timeout {timeout:g}s", "wall": timeout, "user": 0, "sys": 0, "cpu": 0,
                    "maxrss_kib": 0}
        except BaseException:  # Ctrl-C: do not leave the tool running
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
    try:
        with open(res) as f:
            rc, wall, user, sys_, rss = f.read().split()
    except (OSError, ValueError):
        return {"rc": f"rusage_run exit {p.returncode}", "wall": 0, "user": 0, "sys": 0, "cpu": 0,
                "maxrss_kib": 0}
    return {"rc": int(rc), "wall": float(wall), "user": float(user), "sys": float(sys_),
            "cpu": float(user) + float(sys_), "maxrss_kib": int(rss)}


class Sink:
    """ipfix_count.py receiving on a free UDP port of 127.0.0.1."""

    def __init__(self, run_dir, cpu):
        self.ready = os.path.join(run_dir, "sink.port")
        self.out = open(os.path.join(run_dir, "sink.json"), "w+")
        self.p = subprocess.Popen([PY, os.path.join(HERE, "ipfix_count.py"), "udp", "0", self.ready],
                                  stdout=self.out, preexec_fn=pin(cpu))
        deadline = time.monotonic() + 10
        while not os.path.exists(self.ready):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("UDP sink did not start")
            time.sleep(0.01)
        with open(self.ready) as f:
            self.port = int(f.read())

    def result(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.out.seek(0)
        text = self.out.read()
        self.out.close()
        return json.loads(text) if text.strip() else None

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        if not self.out.closed:
            self.out.close()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def grab(pattern, text, cast=int):
    m = re.search(pattern, text)
    return cast(m.group(1)) if m else None


# --------------------------------------------------------------------------- tools

class Tool:
    name = ""
    uses_sink = False

    def available(self):
        return None  # None if usable, else the reason it is missing

    def command(self, pcap, run_dir, port):
        raise NotImplementedError

    def post(self, run_dir, sink):
        """-> (packets the tool says it read or None, flow records, note)"""
        return None, None, ""


class Floor(Tool):
    def __init__(self, work):
        self.name = "libpcap read only (floor)"
        self.bin, self.err = build_c(work, "pcap_floor")

    def available(self):
        return self.err

    def command(self, pcap, run_dir, port):
        return [self.bin, pcap]

    def post(self, run_dir, sink):
        return grab(r"packets=(\d+)", read(os.path.join(run_dir, "stderr"))), None, ""


class Softflowd(Tool):
    uses_sink = True

    def __init__(self):
        self.name = f"softflowd {pkg_version('softflowd')}"

    def available(self):
        return None if shutil.which("softflowd") else "softflowd not installed"

    def command(self, pcap, run_dir, port):
        # -c none: without it softflowd 1.1.0 blocks in accept() on its control
        # socket and never reads the file. -m: room for every flow, so none is
        # force-expired (reading a file, softflowd expires flows only when the
        # table is full, and flushes all of them at EOF).
        return ["softflowd", "-d", "-r", pcap, "-v", "10", "-n", f"127.0.0.1:{port}",
                "-m", "4000000", "-p", os.path.join(run_dir, "softflowd.pid"), "-c", "none"]

    def post(self, run_dir, sink):
        err = read(os.path.join(run_dir, "stderr")) + read(os.path.join(run_dir, "stdout"))
        pk = grab(r"Packets processed: (\d+)", err)
        rec = grab(r"Flows exported: \d+ \((\d+) records\)", err)
        note = ""
        if sink is not None:
            note = f"collector got {sink['flow_records']}"
        return pk, rec, note


class Nfpcapd(Tool):
    def __init__(self, active, idle):
        self.name = f"nfpcapd {pkg_version('nfdump')}"
        self.active, self.idle = active, idle

    def available(self):
        for b in ("nfpcapd", "nfdump"):
            if not shutil.which(b):
                return f"{b} not installed"
        return None

    def command(self, pcap, run_dir, port):
        d = os.path.join(run_dir, "nf")
        os.mkdir(d)
        return ["nfpcapd", "-r", pcap, "-w", d, "-e", f"{self.active:g},{self.idle:g}"]

    def post(self, run_dir, sink):
        err = read(os.path.join(run_dir, "stderr")) + read(os.path.join(run_dir, "stdout"))
        pk = grab(r"Total: Processed: (\d+)", err)
        r = subprocess.run(["nfdump", "-R", os.path.join(run_dir, "nf"), "-I"],
                           capture_output=True, text=True)
        flows = grab(r"(?m)^Flows: (\d+)", r.stdout)
        return pk, flows, "nfcapd files"


class Bpfix(Tool):
    def __init__(self, exe, mode, active, idle):
        self.exe, self.mode = exe, mode
        self.active, self.idle = active, idle
        self.uses_sink = mode != "file"
        self.name = {"file": "bpfix-exporter (file:)", "udp": "bpfix-exporter (udp://)",
                     "udp1500": "bpfix-exporter (udp://, mtu 1500)"}[mode]

    def available(self):
        if not os.access(self.exe, os.X_OK):
            return f"missing: {self.exe}"
        return None

    def command(self, pcap, run_dir, port):
        if self.mode == "file":
            url = "file:" + os.path.join(run_dir, "out.ipfix")
        else:
            url = f"udp://127.0.0.1:{port}"
        extra = []
        if self.mode == "udp1500":
            # The default sizes datagrams to the route's MTU (64 KiB on
            # loopback); this row shows the cost at an Ethernet MTU, as
            # softflowd's ~1400-byte datagrams.
            cfg = os.path.join(run_dir, "mtu1500.toml")
            with open(cfg, "w") as f:
                f.write("[transport]\nmtu = 1500\n")
            extra = ["--config", cfg]
        return [self.exe, "--pcap", pcap, "--collector", url, "--idle-timeout", f"{self.idle:g}",
                "--active-timeout", f"{self.active:g}", "--log-level", "warn"] + extra

    def post(self, run_dir, sink):
        err = read(os.path.join(run_dir, "stderr"))
        lines = [l for l in err.splitlines() if l.strip()]
        last = lines[-1] if lines else ""
        pk = grab(r"frames=(\d+)", last) if "summary:" in last else None
        flows = grab(r" flows=(\d+)", last) if "summary:" in last else None
        note = ""
        if self.mode == "file":
            r = subprocess.run([PY, os.path.join(HERE, "ipfix_count.py"), "file",
                                os.path.join(run_dir, "out.ipfix")], capture_output=True, text=True)
            if r.returncode == 0:
                c = json.loads(r.stdout)
                note = f"file has {c['flow_records']}"
        elif sink is not None:
            note = f"collector got {sink['flow_records']}"
        if "summary:" not in last:
            note = (note + "; " if note else "") + "no summary line"
        return pk, flows, note


# --------------------------------------------------------------------------- main

def commit_stamp():
    """The commit a table measured (git describe; "-dirty" with local changes)."""
    return subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty", "--abbrev=7"],
                          capture_output=True, text=True).stdout.strip() or "unknown"


def fmt_int(n):
    return f"{n:,}" if isinstance(n, int) else str(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)))
    ap.add_argument("--cpu", default=os.environ.get("BENCH_CPU", "1"),
                    help="CPU to pin every tool to, or 'none'")
    ap.add_argument("--packets", type=int, default=int(os.environ.get("BENCH_PACKETS", 1_000_000)))
    ap.add_argument("--flows", type=int, default=int(os.environ.get("BENCH_FLOWS", 100_000)))
    ap.add_argument("--waves", type=int, default=1, help="udp: groups of --flows flows one after the other")
    ap.add_argument("--seed", type=int, default=20261101)
    ap.add_argument("--mix", choices=("access", "dns", "udp"), default="access",
                    help="access: make_bench_pcap.py's access link (default); dns, udp: make_mix_pcap.py")
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/bpfix-bench"),
                    help="cache dir for the generated pcap and scratch files")
    ap.add_argument("--regen", action="store_true", default=os.environ.get("BENCH_REGEN") == "1")
    ap.add_argument("--timeout", type=float, default=120.0, help="per run")
    ap.add_argument("--idle", type=float, default=15.0)
    ap.add_argument("--active", type=float, default=60.0)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--tools", default="floor,softflowd,nfpcapd,bpfix-file,bpfix-udp,bpfix-udp1500",
                    help="which to run, comma-separated (default: all)")
    args = ap.parse_args()
    if args.waves > 1 and args.mix != "udp":
        ap.error("--waves is for --mix udp")

    ncpu = os.cpu_count() or 1
    cpu = None if args.cpu == "none" else int(args.cpu)
    if cpu is not None and cpu >= ncpu:
        cpu = ncpu - 1
    sink_cpu = None
    if cpu is not None and ncpu > 1:
        sink_cpu = 0 if cpu != 0 else 1

    t_start = time.monotonic()
    meta = ensure_pcap(args)
    runner, err = build_c(args.work, "rusage_run")
    if err:
        sys.exit(f"bench: {err}")
    exe = os.path.join(args.build, "bin", "bpfix-exporter")
    every = {
        "floor": lambda: Floor(args.work),
        "softflowd": Softflowd,
        "nfpcapd": lambda: Nfpcapd(args.active, args.idle),
        "bpfix-file": lambda: Bpfix(exe, "file", args.active, args.idle),
        "bpfix-udp": lambda: Bpfix(exe, "udp", args.active, args.idle),
        "bpfix-udp1500": lambda: Bpfix(exe, "udp1500", args.active, args.idle),
    }
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in every]
    if unknown:
        sys.exit(f"bench: unknown tool {', '.join(unknown)}; choose from {', '.join(every)}")
    tools = [every[t]() for t in wanted]
    missing = {t.name: t.available() for t in tools}
    for n, why in missing.items():
        if why:
            log(f"{n}: {why}")
    active = [t for t in tools if not missing[t.name]]

    scratch = os.path.join(args.work, f"runs-{os.getpid()}")
    os.makedirs(scratch)
    results = {t.name: [] for t in tools}
    failures = []
    try:
        for rnd in range(1, args.runs + 1):
            for ti, t in enumerate(active):
                run_dir = os.path.join(scratch, f"tool{ti}-round{rnd}")
                os.makedirs(run_dir)
                sink = Sink(run_dir, sink_cpu) if t.uses_sink else None
                sres = None
                try:
                    cmd = t.command(meta["path"], run_dir, sink.port if sink else 0)
                    m = run_measured(runner, cmd, cpu, args.timeout, run_dir)
                    if sink:
                        time.sleep(0.2)  # let the last datagrams land
                        sres = sink.result()
                finally:
                    if sink:
                        sink.close()
                pk, flows, note = t.post(run_dir, sres)
                m.update(packets=pk, flows=flows, note=note)
                results[t.name].append(m)
                log(f"round {rnd} {t.name}: rc={m['rc']} cpu={m['cpu']:.3f}s wall={m['wall']:.3f}s "
                    f"rss={m['maxrss_kib'] // 1024}MiB packets={pk} flows={flows} {note}")
                if m["rc"] != 0:
                    failures.append(f"{t.name} round {rnd}: exit {m['rc']}; stderr tail:\n"
                                    + "\n".join(read(os.path.join(run_dir, "stderr")).splitlines()[-5:]))
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # ---- table
    rows = []
    med = {}
    for t in tools:
        rs = [r for r in results[t.name] if r["rc"] == 0]
        if missing[t.name]:
            rows.append((t.name, "missing", "", "", "", "", "", "", "", "", missing[t.name]))
            continue
        if not rs:
            rows.append((t.name, "FAILED", "", "", "", "", "", "", "", "", "see stderr above"))
            continue
        c = statistics.median(r["cpu"] for r in rs)
        med[t.name] = {
            "cpu": c, "user": statistics.median(r["user"] for r in rs),
            "sys": statistics.median(r["sys"] for r in rs),
            "wall": statistics.median(r["wall"] for r in rs),
            "rss_mib": statistics.median(r["maxrss_kib"] for r in rs) / 1024,
            "pps": meta["packets"] / c if c > 0 else float("inf"),
            "packets": rs[-1]["packets"], "flows": rs[-1]["flows"], "note": rs[-1]["note"],
            "runs": len(rs), "all_cpu": [round(r["cpu"], 3) for r in rs],
        }
    sf = next((v for k, v in med.items() if k.startswith("softflowd")), None)
    sf_runs = next((v for k, v in results.items() if k.startswith("softflowd")), None)
    for t in tools:
        v = med.get(t.name)
        if not v:
            continue
        ratio = f"{v['pps'] / sf['pps']:.2f}x" if sf else "n/a"
        # The same ratio within each round (the two ran minutes apart at
        # most), then the median: this host's speed drifts by tens of per
        # cent within a series, which the ratio of the medians carries.
        paired = [a["cpu"] / b["cpu"] for a, b in zip(sf_runs or [], results[t.name])
                  if a["rc"] == 0 and b["rc"] == 0 and b["cpu"] > 0]
        v["paired_ratio"] = statistics.median(paired) if paired else None
        per_round = f"{v['paired_ratio']:.2f}x" if paired else "n/a"
        rows.append((t.name, fmt_int(v["packets"] if v["packets"] is not None else "?"),
                     f"{v['cpu']:.3f} ({v['user']:.2f}+{v['sys']:.2f})",
                     f"{min(v['all_cpu']):.2f}-{max(v['all_cpu']):.2f}", f"{v['wall']:.3f}",
                     fmt_int(int(v["pps"])), ratio, per_round, f"{v['rss_mib']:.1f}",
                     fmt_int(v["flows"]) if v["flows"] is not None else "-", v["note"]))
    order = {t.name: i for i, t in enumerate(tools)}
    rows.sort(key=lambda r: order[r[0]])

    hdr = ("tool", "packets", "CPU s (user+sys)", "CPU s range", "wall s", "packets/CPU-s", "vs softflowd",
           "per round", "peak RSS MiB", "flow records", "sanity")
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    cpu_desc = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    commit = commit_stamp()
    print()
    print(f"commit {commit}, {time.strftime('%Y-%m-%d')}, bench/run.sh --mix {args.mix} (defaults of every tool "
          f"but softflowd's -m 4000000 -c none)")
    print(f"bpfix benchmark: {meta['packets']:,} packets, {meta['uniflows']:,} uniflows "
          f"({meta['connections']:,} connections, {meta['ipv6_connections']:,} IPv6), "
          f"{meta['span_s']:.0f} s of traffic, {meta['ip_octets'] / 1e6:.0f} MB IP, "
          f"pcap {meta['bytes'] / 2**20:.0f} MiB")
    print(f"median of {args.runs} runs, {cpu_desc}; timeouts idle {args.idle:g} s / active "
          f"{args.active:g} s (bpfix, nfpcapd); softflowd reading a file only expires at EOF")
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(f"(total benchmark time {time.monotonic() - t_start:.0f} s)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pcap": meta, "cpu": cpu, "runs": args.runs, "median": med,
                       "missing": {k: v for k, v in missing.items() if v},
                       "raw": results}, f, indent=1, default=str)
    if failures:
        print("\nFAILURES:\n" + "\n\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
