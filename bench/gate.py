#!/usr/bin/python3
"""The benchmark gate (issue 20): CI's guard against the project's speed
and memory figures quietly becoming untrue. In one run, on this machine:

  offline  bench/bench.py: bpfix-exporter (pcap mode, default configuration,
           enrichers on) against softflowd on the same capture (the access
           mix of make_bench_pcap.py, deterministic from its seed), CPU
           seconds, the median of --runs interleaved rounds' ratios; and the
           same on the DNS mix of make_mix_pcap.py (--dns-packets packets, a
           flow each, 10 % of the queries never answered: the enrichers'
           worst case, where the regression the gate was made for came from).
  live     bench/live/run.sh: received packet rate of a flooded veth with
           bpfix-exporter live (default configuration) against nothing
           attached, a sink that reads, --runs rounds, each bpfix flood
           against the faster of the baseline floods just before and just
           after it; the best round is the figure (this host's rate can
           halve from one flood to the next); the live exporter's peak RSS
           and that every packet was counted.

It prints one table and exits 1 when a figure is past its limit:
offline < 2.0x softflowd (DNS mix < 0.8x), live < 0.85x baseline, live peak RSS > 16 MiB,
or a live packet not counted. The limits are coarse on purpose (this is a
noisy 2-core VM; the regression the gate exists for was 30x). A rate below
its limit is measured once more before the gate fails, and both figures
are printed. Exit 77 (skipped) without root or without softflowd.

  bench/gate.py [--build DIR] [--work DIR] [--runs N] [--json OUT]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import commit_stamp  # noqa: E402  (bench/bench.py)

OFFLINE_MIN = 2.0    # x softflowd's packets per CPU-second
DNS_MIN = 0.8       # x softflowd on the DNS mix (1.2-1.3x on this VM at 300,000 packets)
LIVE_MIN = 0.85      # x the baseline's received packet rate
LIVE_RSS_MAX = 16.0  # MiB, the live exporter's peak (issue 20: < 16; 10-11 since 5be70b1)


def log(msg):
    print(f"gate: {msg}", file=sys.stderr, flush=True)


def offline(args, attempt, mix="access"):
    out = os.path.join(args.work, f"offline-{mix}-{attempt}.json")
    packets = args.dns_packets if mix == "dns" else args.packets
    cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--build", args.build, "--work", args.work,
           "--runs", str(args.runs), "--packets", str(packets), "--flows", str(args.flows), "--mix", mix,
           "--tools", "softflowd,bpfix-file", "--json", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=600)
    sys.stderr.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError(f"bench/bench.py failed (exit {r.returncode})")
    with open(out) as f:
        med = json.load(f)["median"]
    sf = next(v for k, v in med.items() if k.startswith("softflowd"))
    bp = next(v for k, v in med.items() if k.startswith("bpfix-exporter"))
    # softflowd's CPU over bpfix's in each round, the median of those (the
    # host's drift within the series cancels out; bench.py "per round").
    ratio = bp.get("paired_ratio") or sf["cpu"] / bp["cpu"]
    return {"ratio": ratio, "bpfix_cpu": bp["cpu"], "softflowd_cpu": sf["cpu"],
            "bpfix_rss_mib": bp["rss_mib"], "flows": bp["flows"]}


def live(args, attempt):
    out = os.path.join(args.work, f"live-{attempt}.json")
    env = dict(os.environ, LIVE_TOOLS="baseline,bpfix", LIVE_RUNS=str(args.runs),
               LIVE_SECONDS=str(args.seconds), LIVE_DIAGNOSE="0", LIVE_SINK="read")
    cmd = ["bash", os.path.join(HERE, "live", "run.sh"), args.build, "--json", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, timeout=600)
    sys.stderr.write(r.stdout)
    if not os.path.exists(out):
        raise RuntimeError(f"bench/live/run.sh failed (exit {r.returncode}) before writing its results")
    with open(out) as f:
        d = json.load(f)
    s = d["summary"]["bpfix"]
    # Each bpfix flood against the baseline floods around it (its round's,
    # just before, and the next round's, just after), the faster of the two:
    # this host's rate can halve between floods seconds apart, so a ratio of
    # medians across rounds says little, and a baseline that happened to be
    # slow must not flatter bpfix. The gate takes the best round: a
    # regression of the kind the gate is for shows in every round, noise
    # only in some.
    base = {r["round"]: r["rate_pps"] for r in d["results"] if r["tool"] == "baseline" and r.get("rate_pps")}
    paired = [r["rate_pps"] / max(base[r["round"]], base.get(r["round"] + 1, 0)) for r in d["results"]
              if r["tool"] == "bpfix" and r.get("rate_pps") and base.get(r["round"])]
    if not paired:
        raise RuntimeError("bench/live/run.sh measured no bpfix flood beside a baseline flood")
    return {"ratio": max(paired), "rounds": [round(x, 3) for x in paired], "median_ratio": s["vs_baseline"],
            "rss_mib": s["peak_rss_mib"], "exact": bool(s.get("all_exact")),
            "monitoring": s["monitoring"], "total_cpu_s": s["total_cpu_s"], "window_cpu_s": s["window_cpu_s"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", help="scratch and pcap cache (default: BUILD/bench-gate)")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--flows", type=int, default=50_000)
    ap.add_argument("--dns-packets", type=int, default=300_000)
    ap.add_argument("--seconds", type=float, default=2.0, help="per live flood")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.work = os.path.abspath(args.work or os.path.join(args.build, "bench-gate"))

    if os.geteuid() != 0:
        print("gate: SKIPPED: needs root (the live half makes network namespaces and loads eBPF)")
        return 77
    if not shutil.which("softflowd"):
        print("gate: SKIPPED: softflowd is not installed (scripts/install-deps installs it)")
        return 77
    os.makedirs(args.work, exist_ok=True)
    t0 = time.monotonic()

    off = [offline(args, 1)]
    if off[-1]["ratio"] < OFFLINE_MIN:
        log(f"offline {off[-1]['ratio']:.2f}x is below {OFFLINE_MIN}x: measuring once more")
        off.append(offline(args, 2))
    dns = [offline(args, 1, "dns")]
    if dns[-1]["ratio"] < DNS_MIN:
        log(f"DNS mix {dns[-1]['ratio']:.2f}x is below {DNS_MIN}x: measuring once more")
        dns.append(offline(args, 2, "dns"))
    liv = [live(args, 1)]
    if liv[-1]["ratio"] < LIVE_MIN:
        log(f"live {liv[-1]['ratio']:.3f}x is below {LIVE_MIN}x: measuring once more")
        liv.append(live(args, 2))

    o, d, l = off[-1], dns[-1], liv[-1]
    checks = [
        (f"pcap mode vs softflowd (CPU-s, median of {args.runs} rounds' ratios)", f"{o['ratio']:.2f}x",
         " then ".join(f"{x['ratio']:.2f}x" for x in off), f">= {OFFLINE_MIN}x", o["ratio"] >= OFFLINE_MIN),
        (f"pcap mode vs softflowd, DNS mix ({args.dns_packets:,} packets, a flow each)", f"{d['ratio']:.2f}x",
         " then ".join(f"{x['ratio']:.2f}x" for x in dns), f">= {DNS_MIN}x", d["ratio"] >= DNS_MIN),
        (f"live rate vs nothing attached (best of {args.runs} rounds, each against the faster neighbouring baseline)", f"{l['ratio']:.3f}x",
         " then ".join("rounds " + ", ".join(f"{r:.3f}" for r in x["rounds"]) for x in liv), f">= {LIVE_MIN}x",
         l["ratio"] >= LIVE_MIN),
        ("live exporter peak RSS", f"{l['rss_mib']:.1f} MiB", "", f"<= {LIVE_RSS_MAX:g} MiB",
         l["rss_mib"] <= LIVE_RSS_MAX),
        ("live packets counted", f"{100 * l['monitoring']:.4f} %", "", "every packet", l["exact"]),
    ]
    commit = commit_stamp()
    print()
    print(f"commit {commit}, {time.strftime('%Y-%m-%d')}, bench/gate.py: {args.packets:,} packets "
          f"({args.flows:,} connections, access mix) and {args.dns_packets:,} (DNS mix) offline; "
          f"{args.seconds:g} s floods, sink reading, live")
    print(f"bpfix CPU {o['bpfix_cpu']:.3f} s, softflowd {o['softflowd_cpu']:.3f} s offline; live exporter "
          f"CPU {l['window_cpu_s']:.3f} s in the flood window, {l['total_cpu_s']:.2f} s start to exit")
    print("| check | figure | measurements | limit | result |")
    print("|---|---|---|---|---|")
    for name, fig, all_, lim, ok in checks:
        print(f"| {name} | {fig} | {all_ or fig} | {lim} | {'pass' if ok else 'FAIL'} |")
    print(f"(gate time {time.monotonic() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"commit": commit, "offline": off, "offline_dns": dns, "live": liv,
                       "checks": [{"name": c[0], "figure": c[1], "limit": c[3], "pass": c[4]} for c in checks]},
                      f, indent=1)
    failed = [c[0] for c in checks if not c[4]]
    if failed:
        print(f"gate: FAILED: {'; '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
