#!/usr/bin/python3
"""--check-config says what the start would say (issue 21, item 5): for each
configuration the daemon refuses at start, --check-config refuses it too,
with the same message; systemd's ExecStartPre and ExecReload rely on it.
No root: the refusals come before anything is attached or bound.

Exporter: nothing to meter; an exact interface that does not exist; a
file: collector in a directory that does not exist; an sctp:// collector
on a kernel without SCTP (when this host has none). Collector: an output
directory that does not exist; an sctp:// listener without SCTP (likewise).
A usage error (unknown flag, bad value) exits 2 as the man pages say. And a
good configuration passes both ways.

usage: check_config.py BUILD_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def run(argv, timeout=15):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return None, "still running after the timeout (the start did not refuse)"


def sctp_missing():
    import socket
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()
        return False
    except OSError:
        return True


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    exporter = os.path.join(build, "bin", "bpfix-exporter")
    collector = os.path.join(build, "bin", "bpfix-collector")
    tmp = tempfile.mkdtemp(prefix="bpfix-check-config-")
    failures = []
    checked = 0
    try:
        pcap = os.path.join(tmp, "in.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "..", "interop", "make_pcap.py"),
                        pcap], check=True, capture_output=True)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        cases = [
            ("exporter, nothing to meter", [exporter, "--collector", "file:" + out + "/x.ipfix"], "nothing to meter"),
            ("exporter, missing exact interface", [exporter, "--interface", "bpfixnosuch0", "--collector",
                                                   "file:" + out + "/x.ipfix"], "interface 'bpfixnosuch0' does not exist"),
            ("exporter, file: in a missing directory", [exporter, "--pcap", pcap, "--collector",
                                                        "file:" + tmp + "/nosuch/x.ipfix"],
             "cannot write in the directory"),
            ("collector, missing output directory", [collector, "--output-dir", tmp + "/nosuch", "--listen",
                                                     "udp://127.0.0.1:0", "--metrics", "off"],
             "output directory " + tmp + "/nosuch does not exist"),
        ]
        if sctp_missing():
            cases += [
                ("exporter, sctp:// without SCTP", [exporter, "--pcap", pcap, "--collector", "sctp://127.0.0.1:47761"],
                 "has no SCTP"),
                ("collector, sctp:// listener without SCTP", [collector, "--output-dir", out, "--listen",
                                                              "sctp://127.0.0.1:47762", "--metrics", "off"],
                 "has no SCTP"),
            ]
        for what, argv, says in cases:
            c_rc, c_text = run(argv + ["--check-config"])
            s_rc, s_text = run(argv)
            checked += 1
            if c_rc != 2 or says not in c_text:
                failures.append(f"{what}: --check-config exit {c_rc}, said {c_text.strip()[-300:]!r}; want exit 2 "
                                f"with {says!r}")
            if s_rc != 2 or says not in s_text:
                failures.append(f"{what}: the start exit {s_rc}, said {s_text.strip()[-300:]!r}; want exit 2 with "
                                f"{says!r}")
        # A usage error exits 2, as the man pages say (CLI11 itself exits 105, 109, ...)
        for prog in (exporter, collector):
            for bad in (["--no-such-flag"], ["--threads", "x"] if prog == collector else ["--sampling", "0"]):
                rc, text = run([prog] + bad)
                if rc != 2:
                    failures.append(f"{os.path.basename(prog)} {' '.join(bad)}: exit {rc}, want 2: {text.strip()[-200:]!r}")
            rc, _ = run([prog, "--help"])
            if rc != 0:
                failures.append(f"{os.path.basename(prog)} --help: exit {rc}, want 0")
        # A good configuration passes, and its start runs (pcap mode to a file ends by itself).
        good = [exporter, "--pcap", pcap, "--collector", "file:" + out + "/x.ipfix"]
        c_rc, c_text = run(good + ["--check-config"])
        s_rc, s_text = run(good)
        if c_rc != 0 or s_rc != 0:
            failures.append(f"a good configuration: --check-config exit {c_rc} ({c_text.strip()[-200:]!r}), the run "
                            f"exit {s_rc} ({s_text.strip()[-200:]!r})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if failures:
        return 1
    print(f"ok check-config: {checked} refusals said the same by --check-config and the start; a good configuration "
          "passes both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
