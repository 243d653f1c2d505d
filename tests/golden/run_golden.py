#!/usr/bin/python3
"""Golden end-to-end test: for every case in cases.py, build the pcap, run
bpfix-exporter --pcap ... --collector file:OUT, decode OUT with
bpfix-collector --read, and compare the flow records (those with
flowEndReason) with the expected ones as sorted multisets; also the summary
line and the statistics record.

usage: run_golden.py BUILD_DIR [-k SUBSTRING] [--keep]
exit: 0 all pass, 1 a mismatch, 2 usage, 77 binaries not built (skip)
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from golden_lib import RunError, collector_path, exporter_path, run_case  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("-k", dest="pattern", default="", help="only cases whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (pcaps, ipfix files)")
    a = ap.parse_args()
    for p in (exporter_path(a.build_dir), collector_path(a.build_dir)):
        if not os.access(p, os.X_OK):
            print("run_golden: %s not built; skipping" % p)
            return 77
    import cases
    selected = [c for c in cases.all_cases() if a.pattern in c.name]
    if not selected:
        print("run_golden: no case matches %r" % a.pattern)
        return 2
    tmp = tempfile.mkdtemp(prefix="bpfix-golden-")
    failed = []
    t_start = time.monotonic()
    try:
        for case in selected:
            try:
                problems, _summary, _recs = run_case(a.build_dir, case, tmp)
            except RunError as ex:
                problems = [str(ex)]
            if problems:
                failed.append(case.name)
                print("FAIL %s: %s" % (case.name, case.desc))
                if case.args:
                    print("    flags: %s" % " ".join(case.args))
                for line in problems:
                    print("    " + line)
            else:
                print("ok   %s" % case.name)
    finally:
        if a.keep:
            print("run_golden: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("run_golden: %d/%d cases passed in %.1f s%s" % (
        len(selected) - len(failed), len(selected), time.monotonic() - t_start,
        ("; failed: " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
