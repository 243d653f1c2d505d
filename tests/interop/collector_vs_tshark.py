#!/usr/bin/python3
"""Compares what bpfix-collector wrote (JSONL files in a directory) with
what Wireshark's own IPFIX dissector decodes from a capture of the same
stream: the same flow records, field by field (addresses, ports,
protocol, packets, octets, start and end in milliseconds), as multisets.

Usage: collector_vs_tshark.py CAPTURE --decode udp.port==P --out-dir DIR
Exit 1 listing the differences, 0 with a one-line summary.
"""
import argparse
import collections
import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_check import as_list, decoded_record  # noqa: E402

FIELDS = ("src", "dst", "proto", "sport", "dport", "packets", "octets", "start_ms", "end_ms")


def ms(text):
    if text is None:
        return None
    dt = datetime.datetime.strptime(text[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + dt.microsecond // 1000


def from_jsonl(r):
    v6 = "sourceIPv6Address" in r
    return {"src": r.get("sourceIPv6Address" if v6 else "sourceIPv4Address"),
            "dst": r.get("destinationIPv6Address" if v6 else "destinationIPv4Address"),
            "proto": r.get("protocolIdentifier", 0), "sport": r.get("sourceTransportPort", 0),
            "dport": r.get("destinationTransportPort", 0), "packets": r.get("packetDeltaCount", 0),
            "octets": r.get("octetDeltaCount", 0), "start_ms": ms(r.get("flowStartMilliseconds")),
            "end_ms": ms(r.get("flowEndMilliseconds"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--decode", required=True)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    out = subprocess.run(["tshark", "-n", "-r", a.capture, "-d", f"{a.decode},cflow", "-T", "json",
                          "--no-duplicate-keys"], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL tshark: {out.stderr.strip()}")
        return 1
    theirs = collections.Counter()
    for fr in json.loads(out.stdout or "[]"):
        for msg in as_list(fr["_source"]["layers"].get("cflow", [])):
            for name, s in msg.items():
                if not name.startswith("Set ") or not isinstance(s, dict):
                    continue
                for k, r in s.items():
                    if k.startswith("Flow ") and isinstance(r, dict) and "cflow.packets" in r:
                        d = decoded_record(r)
                        theirs[tuple(d[f] for f in FIELDS)] += 1
    ours = collections.Counter()
    for name in sorted(os.listdir(a.out_dir)):
        if name.endswith(".jsonl"):
            for line in open(os.path.join(a.out_dir, name)):
                r = json.loads(line)
                if "packetDeltaCount" in r:
                    d = from_jsonl(r)
                    ours[tuple(d[f] for f in FIELDS)] += 1
    problems = []
    if not theirs:
        problems.append("tshark decoded no flow records: the comparison proves nothing")
    only_tshark, only_ours = theirs - ours, ours - theirs
    for k in list(only_tshark)[:3]:
        problems.append(f"decoded by tshark, not written by the collector: {dict(zip(FIELDS, k))}")
    for k in list(only_ours)[:3]:
        problems.append(f"written by the collector, not decoded by tshark: {dict(zip(FIELDS, k))}")
    if only_tshark or only_ours:
        problems.append(f"{sum(only_tshark.values())} records only in tshark, {sum(only_ours.values())} only in ours")
    for p in problems:
        print("FAIL " + p)
    if problems:
        return 1
    print(f"ok: {sum(ours.values())} flow records, every field equal to tshark's decode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
