#!/usr/bin/python3
"""Malformed-input test for bpfix-exporter.

1. exact cases (malformed_cases.exact_cases): a few valid packets mixed with
   frames of one malformed kind. The exporter must exit 0 (not a signal), the
   summary must report exactly the expected malformed/non_ip counts, the
   valid packets must be exported exactly, and the statistics record's
   ignoredPacketTotalCount must equal the malformed count.
2. fuzz cases (seeded): no crash, exit 0, frames = ip_packets + non_ip +
   malformed, flow records add up to ip_packets/ip_octets, the marker flows
   are exported exactly.
3. a file that is not a pcap (text, empty, missing): non-zero exit (not a
   signal) with an error message on stderr that names the file.

usage: run_malformed.py BUILD_DIR [-k SUBSTRING] [--keep]
exit: 0 pass, 1 failure, 77 binaries not built (skip)
"""
import argparse
import ipaddress
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from golden_lib import (MISSING, RunError, collector_path, compare_records,  # noqa: E402
                        describe_rc, exporter_path, flow_records, normalize_got,
                        parse_summary, read_records, run_case, run_exporter,
                        stats_records, write_case_pcap)


def run_fuzz(build_dir, case, tmp):
    import malformed_cases as mc
    from refmodel import run_model
    pcap = write_case_pcap(case, os.path.join(tmp, case.name + ".pcap"))
    out = os.path.join(tmp, case.name + ".ipfix")
    cmd, rc, _o, stderr = run_exporter(build_dir, pcap, out, case.args, timeout=40)
    if rc != 0:
        return ["exporter %s\n      command: %s\n      stderr tail: %s"
                % (describe_rc(rc), " ".join(cmd), stderr[-1500:])], None
    problems = []
    s = parse_summary(stderr)
    recs = read_records(build_dir, out)
    fl = flow_records(recs)
    n = len(case.frames)
    if s["frames"] != n:
        problems.append("summary frames expected %d got %d" % (n, s["frames"]))
    if s["ip_packets"] + s["non_ip"] + s["malformed"] != s["frames"]:
        problems.append("summary: ip_packets + non_ip + malformed = %d != frames %d"
                        % (s["ip_packets"] + s["non_ip"] + s["malformed"], s["frames"]))
    if case.linktype == 101 or case.name == "fuzz_random_ip":
        if s["non_ip"] != 0:
            problems.append("summary non_ip expected 0 (every frame is IP-typed) got %d"
                            % s["non_ip"])
    gp = sum(r.get("packetDeltaCount", 0) for r in fl)
    go = sum(r.get("octetDeltaCount", 0) for r in fl)
    if gp != s["ip_packets"] or go != s["ip_octets"]:
        problems.append("flow records sum to %d packets/%d octets, summary says %d/%d"
                        % (gp, go, s["ip_packets"], s["ip_octets"]))
    if s["flows"] != len(fl) or s["records"] != len(recs) or s["not_sent_records"] != 0:
        problems.append("summary flows/records/not_sent = %d/%d/%d, file has %d/%d, want not_sent 0"
                        % (s["flows"], s["records"], s["not_sent_records"], len(fl), len(recs)))
    st = stats_records(recs)
    if not st:
        problems.append("no statistics record")
    elif st[-1].get("ignoredPacketTotalCount") != s["malformed"]:
        problems.append("statistics ignoredPacketTotalCount %s != summary malformed %d"
                        % (st[-1].get("ignoredPacketTotalCount", MISSING), s["malformed"]))
    markers = {str(ipaddress.ip_address(a)) for r in case.expected for a in (r.src, r.dst)}
    got_m = [normalize_got(r) for r in fl]
    got_m = [g for g in got_m if g.src in markers or g.dst in markers]
    problems += compare_records([r.norm() for r in case.expected], got_m)
    _recs, c = run_model(case)
    info = ("summary: frames=%d ip_packets=%d non_ip=%d malformed=%d flows=%d "
            "(reference model: ip_packets=%d non_ip=%d malformed=%d)"
            % (s["frames"], s["ip_packets"], s["non_ip"], s["malformed"], s["flows"],
               c["ip_packets"], c["non_ip"], c["malformed"]))
    if problems:
        problems.append("  command: " + " ".join(cmd))
    return problems, info


def run_not_pcap(build_dir, name, content, tmp):
    path = os.path.join(tmp, name)
    if content is not None:
        with open(path, "wb") as fh:
            fh.write(content)
    out = os.path.join(tmp, name + ".ipfix")
    cmd, rc, _o, stderr = run_exporter(build_dir, path, out, [], timeout=20)
    problems = []
    if rc == 0:
        problems.append("exporter exited 0 for %s; want a non-zero exit" % name)
    elif rc < 0:
        problems.append("exporter %s for %s; want a clean non-zero exit" % (describe_rc(rc), name))
    if path not in stderr:
        problems.append("stderr does not name the file %s; stderr was: %r" % (path, stderr[-600:]))
    first = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return problems, "exit %d, stderr: %s" % (rc, first)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("-k", dest="pattern", default="")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    for p in (exporter_path(a.build_dir), collector_path(a.build_dir)):
        if not os.access(p, os.X_OK):
            print("run_malformed: %s not built; skipping" % p)
            return 77
    import malformed_cases as mc
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bpfix-malformed-")
    failed, total = [], 0
    try:
        def report(name, desc, problems, info=None):
            if problems:
                failed.append(name)
                print("FAIL %s: %s" % (name, desc))
                for l in problems:
                    print("    " + l)
                if info:
                    print("    " + info)
            else:
                print("ok   %s%s" % (name, (" (" + info + ")") if info else ""))

        for case in mc.exact_cases():
            if a.pattern not in case.name:
                continue
            total += 1
            try:
                problems, _s, _r = run_case(a.build_dir, case, tmp)
            except RunError as ex:
                problems = [str(ex)]
            report(case.name, case.desc + " [expect malformed=%d non_ip=%d]"
                   % (case.malformed, case.non_ip), problems)
        for case in mc.fuzz_cases():
            if a.pattern not in case.name:
                continue
            total += 1
            try:
                problems, info = run_fuzz(a.build_dir, case, tmp)
            except RunError as ex:
                problems, info = [str(ex)], None
            report(case.name, case.desc, problems, info)
        for name, content in mc.not_a_pcap_files():
            if a.pattern not in name:
                continue
            total += 1
            try:
                problems, info = run_not_pcap(a.build_dir, name, content, tmp)
            except RunError as ex:
                problems, info = [str(ex)], None
            report("not_a_pcap/" + name, "input that is not a pcap", problems, info)
    finally:
        if a.keep:
            print("run_malformed: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("run_malformed: %d/%d passed in %.1f s%s" % (
        total - len(failed), total, time.monotonic() - t0,
        ("; failed: " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
