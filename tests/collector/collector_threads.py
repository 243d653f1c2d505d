#!/usr/bin/python3
"""One busy exporter does not starve another (no root: loopback only).

bpfix-collector listens on one UDP port with --threads 2 (two sockets on
the port, SO_REUSEPORT) and a small receive buffer, writing JSONL. A flood
(bpfix_ipfix_udp_blast, far more records per second than one thread
formats) comes from one source port. A quiet exporter (observation domain
7) picks a source port the kernel hashes to the other socket (it sends a
template from candidate ports and reads in the log which thread each one's
session landed on), then sends 300 messages of 10 records while the flood
goes on. Checks: every quiet record is in the files, the summary shows no
output drops, and the flood did overflow its socket (kernel drops > 0:
the test was a real flood).

For comparison (printed, not checked: with one socket the outcome depends
on timing) the same with --threads 1, where both exporters share one
socket buffer.

usage: collector_threads.py BUILD_DIR
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (2, 8), (1, 8), (152, 8), (153, 8)]
QUIET_DOMAIN, QUIET_MESSAGES, QUIET_PER_MESSAGE = 7, 300, 10


def template_set():
    rec = struct.pack("!HH", 256, len(FIELDS)) + b"".join(struct.pack("!HH", i, l) for i, l in FIELDS)
    return struct.pack("!HH", 2, 4 + len(rec)) + rec


def data_set(n):
    recs = b"".join(struct.pack("!4s4sHHBBBQQQQ", bytes([10, 7, 0, i]), bytes([192, 0, 2, 7]), 2000 + i, 53, 17, 0, 0,
                                1, 100, 1_700_000_000_000, 1_700_000_000_001) for i in range(n))
    return struct.pack("!HH", 256, 4 + len(recs)) + recs


def message(seq, sets):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, QUIET_DOMAIN) + body


def wait_log(path, pattern, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, open(path, errors="replace").read())
        if m:
            return m
        time.sleep(0.02)
    raise AssertionError(f"no '{pattern}' in the log:\n" + open(path).read()[-3000:])


def scenario(build, threads):
    """Returns (quiet records sent, quiet records stored, summary dict)."""
    work = tempfile.mkdtemp(prefix="bpfix-threads-")
    try:
        out = os.path.join(work, "out")
        os.mkdir(out)
        conf = os.path.join(work, "collector.toml")
        with open(conf, "w") as f:
            # a small socket buffer overflows at once under the flood; a
            # large output queue keeps the shared writer out of the picture
            f.write("[listen]\nudp_receive_buffer = 1048576\n[output]\nmax_queued_bytes = 2147483648\n")
        log = os.path.join(work, "collector.log")
        col = subprocess.Popen([os.path.join(build, "bin", "bpfix-collector"), "--config", conf, "--listen",
                                "udp://127.0.0.1:0", "--output-dir", out, "--metrics", "off", "--format", "jsonl",
                                "--threads", str(threads)], stderr=open(log, "w"))
        try:
            port = int(wait_log(log, r"listening on udp://127\.0\.0\.1:(\d+)").group(1))
            quiet = None
            if threads == 1:  # one socket: nothing to choose
                quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                quiet.sendto(message(0, [template_set()]), ("127.0.0.1", port))
            flood = subprocess.Popen([os.path.join(build, "bin", "bpfix_ipfix_udp_blast"), "127.0.0.1", str(port),
                                      "4000000", "3"], stdout=subprocess.PIPE, text=True)
            flood_re = r"new UDP exporter 127\.0\.0\.1:(\d+) \(thread (\d+)\)"
            if quiet:
                flood_re = rf"new UDP exporter 127\.0\.0\.1:(?!{quiet.getsockname()[1]}\b)(\d+) \(thread (\d+)\)"
            flood_thread = int(wait_log(log, flood_re).group(2))
            # A quiet source port on another socket: a probe the kernel puts
            # into the flood's (full) socket is dropped and never logged.
            for _ in range(40):
                if quiet:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                s.sendto(message(0, [template_set()]), ("127.0.0.1", port))
                try:
                    m = wait_log(log, rf"new UDP exporter 127\.0\.0\.1:{s.getsockname()[1]} \(thread (\d+)\)", 1)
                    if int(m.group(1)) != flood_thread:
                        quiet = s
                        break
                except AssertionError:
                    pass
                s.close()
            assert quiet, "no source port hashed to another socket in 40 tries"
            seq = 0
            for k in range(QUIET_MESSAGES):
                sets = [template_set(), data_set(QUIET_PER_MESSAGE)] if k % 50 == 0 else [data_set(QUIET_PER_MESSAGE)]
                quiet.sendto(message(seq, sets), ("127.0.0.1", port))
                seq += QUIET_PER_MESSAGE
                time.sleep(0.003)
            flood_out = flood.communicate(timeout=30)[0]
            assert flood.returncode == 0, flood_out
        finally:
            col.send_signal(signal.SIGTERM)
            col.wait(timeout=120)
        text = open(log).read()
        assert col.returncode == 0, text[-3000:]
        summary = dict(kv.split("=") for kv in re.search(r"summary: (.*)", text).group(1).split())
        stored = 0
        for n in os.listdir(out):
            if n.endswith(".jsonl"):
                with open(os.path.join(out, n)) as f:
                    stored += sum(1 for line in f if f'"observationDomainId":{QUIET_DOMAIN},' in line)
        print(f"threads={threads}: flood {flood_out.strip()}; quiet exporter: sent "
              f"{QUIET_MESSAGES * QUIET_PER_MESSAGE} records, stored {stored}; collector: {summary}")
        return QUIET_MESSAGES * QUIET_PER_MESSAGE, stored, summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    build = sys.argv[1]
    sent, stored, summary = scenario(build, 2)
    assert stored == sent, f"with 2 threads the quiet exporter lost {sent - stored} of {sent} records"
    assert summary["output_dropped"] == "0", summary
    assert int(summary["udp_kernel_drops"]) > 0, "the flood did not overflow its socket: not a test of starvation"
    sent1, stored1, _ = scenario(build, 1)
    print(f"for comparison, one thread and one socket: the quiet exporter lost {sent1 - stored1} of {sent1} records")
    print("collector_threads: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
