#!/usr/bin/python3
"""Runs the ctest tests whose labels match a regular expression, one after
the other, with each test's own TIMEOUT multiplied by
BPFIX_TEST_TIME_SCALE (the VM tier runs under software emulation, several
times slower than the host) and its SKIP_RETURN_CODE honoured. Prints one
line per test and a summary; exits 1 when any test failed or timed out.

usage: run_tier.py BUILD_DIR LABEL_REGEX [EXCLUDE_REGEX]

EXCLUDE_REGEX leaves out tests by name (ctest -E); each one left out is
named in the output.
"""
import json
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    build, labels = sys.argv[1], sys.argv[2]
    exclude = sys.argv[3] if len(sys.argv) == 4 else None
    scale = float(os.environ.get("BPFIX_TEST_TIME_SCALE", "1"))
    listing = subprocess.run(["ctest", "--test-dir", build, "-N", "-L", labels, "--show-only=json-v1"],
                             capture_output=True, text=True, check=True)
    tests = json.loads(listing.stdout).get("tests", [])
    if exclude:
        import re
        left_out = [t["name"] for t in tests if re.search(exclude, t["name"])]
        tests = [t for t in tests if not re.search(exclude, t["name"])]
        for name in left_out:
            print(f"LEFT OUT {name} (matches '{exclude}')", flush=True)
    if not tests:
        print(f"FAIL run_tier: no test matches the labels '{labels}'")
        return 1
    failed, skipped = [], []
    t_all = time.monotonic()
    for t in tests:
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        timeout = float(props.get("TIMEOUT", 1500)) * scale
        skip_code = props.get("SKIP_RETURN_CODE")
        cwd = props.get("WORKING_DIRECTORY", build)
        t0 = time.monotonic()
        try:
            r = subprocess.run(t["command"], cwd=cwd, capture_output=True, text=True, timeout=timeout)
            rc, out = r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            rc, out = None, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        secs = time.monotonic() - t0
        if rc == 0:
            print(f"PASS {t['name']} ({secs:.1f} s)", flush=True)
        elif skip_code is not None and rc == int(skip_code):
            skipped.append(t["name"])
            print(f"SKIP {t['name']} ({secs:.1f} s): {out.strip().splitlines()[-1] if out.strip() else ''}", flush=True)
        else:
            failed.append(t["name"])
            why = f"timed out after {timeout:.0f} s" if rc is None else f"exit {rc}"
            print(f"FAIL {t['name']} ({secs:.1f} s, {why}):\n{out[-4000:]}", flush=True)
    print(f"run_tier: {len(tests) - len(failed) - len(skipped)} passed, {len(skipped)} skipped, {len(failed)} failed "
          f"of {len(tests)} in {time.monotonic() - t_all:.0f} s (timeouts x{scale:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
