#!/usr/bin/python3
"""pcap mode says what it will not do (issue 21, item 10): a setting only
live mode has is refused with a message naming it, not ignored; without a
collector it refuses to send to the built-in default; an IPFIX file that
exists is replaced with a warning saying so. And `bpfix-collector --read`
of the export prints the flows before the options records.

usage: run_pcap_mode_says.py BUILD_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

from golden_lib import exporter_path


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = exporter_path(sys.argv[1])
    here = os.path.dirname(os.path.abspath(__file__))
    tmp = tempfile.mkdtemp(prefix="bpfix-pcap-says-")
    failures = []
    try:
        pcap = os.path.join(tmp, "in.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(here, "..", "interop", "make_pcap.py"), pcap], check=True,
                       capture_output=True)
        out = os.path.join(tmp, "out.ipfix")

        def run(*args):
            return subprocess.run([exe, "--pcap", pcap, *args], capture_output=True, text=True, timeout=30)

        refused = [((), "no collector given"),
                   (("--collector", "file:" + out, "--sampling", "10"), "sampling 1 in 10"),
                   (("--collector", "file:" + out, "--metrics", "127.0.0.1:47799"), "metrics on 127.0.0.1:47799")]
        for args, says in refused:
            r = run(*args)
            if r.returncode != 2 or says not in r.stderr or os.path.exists(out):
                failures.append(f"--pcap {' '.join(args)}: exit {r.returncode}, file written {os.path.exists(out)}, "
                                f"stderr {r.stderr.strip()[-300:]!r}; want exit 2 saying {says!r}, no file")

        # the collector named in the config counts as given
        conf = os.path.join(tmp, "exporter.toml")
        with open(conf, "w") as f:
            f.write(f'[export]\ncollector = "file:{out}"\n')
        r = run("--config", conf)
        if r.returncode != 0 or not os.path.exists(out) or "exists" in r.stderr:
            failures.append(f"--config with [export] collector: exit {r.returncode}, stderr {r.stderr[-300:]!r}")

        # a second run replaces the file, and says so
        before = os.path.getsize(out) if os.path.exists(out) else 0
        r = run("--collector", "file:" + out)
        if r.returncode != 0 or f"IPFIX file {out} exists: this run replaces it" not in r.stderr or \
                os.path.getsize(out) != before:
            failures.append(f"a second run to file:{out}: exit {r.returncode}, stderr {r.stderr[-300:]!r}; want the "
                            "warning and a file of the same size")

        # bpfix-collector --read: flows first (a newcomer's `| head` shows
        # flows), every options record after the last flow
        rd = subprocess.run([os.path.join(os.path.dirname(exe), "bpfix-collector"), "--read", out],
                            capture_output=True, text=True, timeout=30)
        kinds = ["flow" if '"packetDeltaCount"' in line else "meta" for line in rd.stdout.splitlines()]
        if rd.returncode != 0 or "flow" not in kinds or "meta" not in kinds or \
                kinds != sorted(kinds, key=lambda k: k == "meta"):
            failures.append(f"bpfix-collector --read: exit {rd.returncode}, record order {''.join(k[0] for k in kinds)} "
                            "(f flow, m metadata); want every flow before the first options record")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if failures:
        return 1
    print("ok pcap mode: no collector, --sampling and --metrics refused with their names; config collector used; "
          "an existing IPFIX file replaced with a warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
