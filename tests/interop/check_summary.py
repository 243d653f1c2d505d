#!/usr/bin/python3
"""Compares bpfix-exporter's summary line (the last line of its stderr) with
the totals pcap_totals.py computed for the pcap it read.

Usage: check_summary.py EXPORTER_STDERR TOTALS_JSON
"""
import json
import re
import sys


def main():
    log_path, totals_path = sys.argv[1:3]
    lines = [l for l in open(log_path, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    m = re.fullmatch(r"bpfix-exporter: summary:((?: \w+=\d+)+)", last)
    if not m:
        print(f"FAIL: exporter's last stderr line is not the summary: {last!r}", file=sys.stderr)
        return 1
    got = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
    want = json.load(open(totals_path))
    expect = {
        "frames": want["frames"],
        "ip_packets": want["ip_packets"],
        "ip_octets": want["ip_octets"],
        "non_ip": want["non_ip"],
        "malformed": 0,
        "flows": want["flows"],
        "not_sent_records": 0,
    }
    bad = [f"{k}: expected {v}, got {got.get(k)}" for k, v in expect.items() if got.get(k) != v]
    if "records" not in got or got["records"] <= got.get("flows", 0):
        bad.append(f"records: expected flows + statistics (> {got.get('flows')}), got {got.get('records')}")
    # flows and metadata apart (statistics, sampling, RFC 5610 type records)
    if not got.get("metadata_records") or got.get("records") != got.get("flows", 0) + got["metadata_records"]:
        bad.append(f"metadata_records: expected records - flows > 0, got {got.get('metadata_records')} "
                   f"(records {got.get('records')}, flows {got.get('flows')})")
    if not got.get("messages"):
        bad.append(f"messages: expected > 0, got {got.get('messages')}")
    if bad:
        print("FAIL: exporter summary disagrees with the pcap:\n  " + "\n  ".join(bad) +
              f"\n  summary line: {last}", file=sys.stderr)
        return 1
    print(f"ok: exporter summary: {m.group(1).strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
