#!/usr/bin/python3
"""How pcap mode's cost grows with the number of concurrent flows (issue 20):
the UDP bulk mix of make_mix_pcap.py at a small and a large number of
concurrent flows, bpfix-exporter (defaults) and softflowd, measured by
bench/bench.py in interleaved rounds.

Both captures hold the same packets and the same flows (--large flows,
--packets / --large packets each), so both runs export the same records;
only how many flows are alive at once differs: the small capture sends its
flows in --large / --small waves of --small flows, 30 s of silence between
waves, so that a wave's flows end on the idle timeout before the next
begins (softflowd, reading a file, ends flows only at the end of the file,
so for it both captures hold --large flows at once).

Prints, per tool: CPU per packet at each size, their ratio, peak RSS at
each size, and bytes of peak RSS per added concurrent flow
((RSS large - RSS small) / (flows large - flows small)).

  bench/scale.py [--build DIR] [--runs N] [--packets N] [--small N] [--large N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import commit_stamp  # noqa: E402  (bench/bench.py)


def measure(args, flows, waves):
    out = os.path.join(args.work, f"scale-{flows}x{waves}.json")
    cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--build", args.build, "--work", args.work, "--mix", "udp",
           "--runs", str(args.runs), "--packets", str(args.packets), "--flows", str(flows),
           "--waves", str(waves),
           "--tools", "softflowd,bpfix-file", "--json", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    sys.stderr.write(r.stdout)
    if r.returncode != 0:
        sys.exit(f"scale: bench/bench.py failed (exit {r.returncode})")
    with open(out) as f:
        return json.load(f)["median"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/bpfix-bench"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--packets", type=int, default=3_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    t0 = time.monotonic()
    if args.large % args.small:
        ap.error("--large must be a multiple of --small")
    small, large = measure(args, args.small, args.large // args.small), measure(args, args.large, 1)
    commit = commit_stamp()
    print()
    print(f"commit {commit}, {time.strftime('%Y-%m-%d')}, bench/scale.py: UDP bulk mix, {args.packets:,} packets "
          f"and {args.large:,} flows at {args.small:,} (10 s waves) and {args.large:,} (one 10 s wave) "
          f"concurrent flows, median of {args.runs} rounds")
    print(f"| tool | ns/packet at {args.small:,} | ns/packet at {args.large:,} | ratio | peak RSS MiB at "
          f"{args.small:,} | at {args.large:,} | bytes per added flow |")
    print("|---|---|---|---|---|---|---|")
    for name in small:
        if name not in large:
            continue
        s, l = small[name], large[name]
        ns_s = s["cpu"] / args.packets * 1e9
        ns_l = l["cpu"] / args.packets * 1e9
        per_flow = (l["rss_mib"] - s["rss_mib"]) * 2**20 / (args.large - args.small)
        print(f"| {name} | {ns_s:.0f} | {ns_l:.0f} | {ns_l / ns_s:.2f}x | {s['rss_mib']:.1f} | {l['rss_mib']:.1f} | "
              f"{per_flow:.0f} |")
    print(f"(total {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
