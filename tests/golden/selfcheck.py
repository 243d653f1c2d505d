#!/usr/bin/python3
"""Cross-checks the hand-written expectations of the golden and malformed
cases against refmodel.py (an independent model of docs/flow-semantics.md),
and, when tshark is installed, checks that tshark reads every golden pcap
without a malformed-packet warning. Needs no bpfix binary.

usage: selfcheck.py [BUILD_DIR]   (BUILD_DIR is accepted and ignored)
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases  # noqa: E402
import malformed_cases  # noqa: E402
from golden_lib import compare_records, write_case_pcap  # noqa: E402
from refmodel import run_model  # noqa: E402


def check(case):
    recs, c = run_model(case)
    problems = compare_records([r.norm() for r in case.expected], [r.norm() for r in recs])
    frames = case.frames_total if case.frames_total is not None else len(case.frames)
    # a trailer (cut record) is not seen by the model: count it as the case says
    want = dict(frames=frames, non_ip=case.non_ip, malformed=case.malformed,
                ip_packets=sum(r.pkts for r in case.expected),
                ip_octets=sum(r.octets for r in case.expected))
    if case.trailer:
        c = dict(c, frames=c["frames"] + 1, malformed=c["malformed"] + 1)
    for k, v in want.items():
        if c[k] != v:
            problems.append("model %s=%s, case says %s" % (k, c[k], v))
    return problems


def tshark_check(case, tmp):
    pcap = write_case_pcap(case, os.path.join(tmp, case.name + ".pcap"))
    # application dissectors would complain about the filler payloads: off
    noapp = []
    for proto in ("dns", "mdns", "dhcp", "enip", "cip", "cipio"):
        noapp += ["--disable-protocol", proto]
    p = subprocess.run(["tshark", "-n", "-r", pcap] + noapp + ["-Y", "_ws.malformed || _ws.expert.severity >= error"],
                       capture_output=True, text=True, timeout=60)
    out = "\n".join(l for l in p.stdout.splitlines() if "Running as user" not in l).strip()
    if p.returncode != 0 or out:
        return ["tshark rc=%d: %s %s" % (p.returncode, out[:2000], p.stderr[:500])]
    return []


def main():
    failed = 0
    tmp = tempfile.mkdtemp(prefix="bpfix-selfcheck-")
    try:
        have_tshark = shutil.which("tshark") is not None
        groups = [("golden", cases.all_cases(), True),
                  ("malformed", malformed_cases.exact_cases(), False)]
        for label, cs, ts in groups:
            for case in cs:
                problems = check(case)
                if ts and have_tshark:
                    problems += tshark_check(case, tmp)
                if problems:
                    failed += 1
                    print("FAIL %s/%s: %s" % (label, case.name, case.desc))
                    for l in problems:
                        print("    " + l)
                else:
                    print("ok   %s/%s" % (label, case.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("selfcheck: %d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
