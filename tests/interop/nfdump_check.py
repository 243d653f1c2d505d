#!/usr/bin/python3
"""Checks what nfcapd stored against the totals of the exported pcap.

Usage: nfdump_check.py FLOW_DIR TOTALS_JSON [--nfcapd-log LOG] [--allow-sequence-errors]
                       [--records EXPECTED_JSONL]

Reads FLOW_DIR with `nfdump -R` three ways, because nfdump has two notions of
"flows": records stored, and the flows those records stand for (a record's
aggregated-flows counter, 1 unless the exporter sent deltaFlowCount):
  - `-o json`: every record; counts them and sums in_packets / in_bytes, per
    IP version, and the earliest first / latest last (milliseconds);
  - `-o null -N` (plain numbers, nfdump scales them otherwise): the
    "Summary: total flows: F, total bytes: B, total packets: P" line;
  - nfcapd's own line at exit (with --nfcapd-log): "Flows: F, Packets: P,
    Bytes: B, Sequence Errors: S, Bad Packets: X"; S and X must be 0.
All must equal the pcap's uniflows, IP packets and IP octets. With --records
(pcap_totals.py --records), every stored record must also match its uniflow:
packets, bytes, first/last (ms), TOS, TCP flags; VLAN (vlanId) is part of its key.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys


def nfdump(*args):
    env = dict(os.environ, TZ="UTC")  # nfdump prints local time
    out = subprocess.run(["nfdump", *args], capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"FAIL: nfdump {' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def ms(s):
    """'2024-01-02T03:04:05.100' (UTC, as nfdump prints with TZ=UTC) -> epoch ms."""
    main, _, frac = s.partition(".")
    dt = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + int((frac or "0")[:3].ljust(3, "0"))


def tcp_flags(s):
    """nfdump's 'CEUAPRSF' string ('...AP.SF') -> the flags byte."""
    return sum(1 << (7 - i) for i, c in enumerate(s or "") if c != ".") if len(s or "") == 8 else 0


def compare_records(flows, expected_path):
    """Per-record differences between nfdump's records and the expected ones."""
    expected = {}
    for line in open(expected_path):
        e = json.loads(line)
        # nfdump keeps vlanId (src_vlan) but not dot1qCustomerVlanId.
        key = (e["vlan"], e["ip_version"], e["src"], e["dst"], e["proto"], e["sport"], e["dport"],
               e["icmp_type_code"])
        if key in expected:
            raise SystemExit(f"FAIL: uniflows differing only in the customer VLAN: {key}")
        expected[key] = e
    problems, seen = [], set()
    for r in flows:
        ver = 6 if "src6_addr" in r else 4
        proto = int(r["proto"])
        if proto in (1, 58):
            sport, dport, icmp = 0, 0, int(r.get("icmp_type", 0)) << 8 | int(r.get("icmp_code", 0))
        else:
            sport, dport, icmp = int(r.get("src_port", 0)), int(r.get("dst_port", 0)), 0
        key = (int(r.get("src_vlan", 0)), ver, r[f"src{ver}_addr"], r[f"dst{ver}_addr"], proto, sport, dport, icmp)
        e = expected.get(key)
        if e is None or key in seen:
            problems.append(f"record for no (or an already seen) uniflow of the pcap: {key}")
            continue
        seen.add(key)
        got = {"packets": int(r["in_packets"]), "octets": int(r["in_bytes"]),
               "start_ms": ms(r["first"]), "end_ms": ms(r["last"]), "tos": int(r.get("src_tos", 0)),
               "tcp_flags": tcp_flags(r.get("tcp_flags")) if proto == 6 else 0}
        want = dict(e, tcp_flags=e["tcp_flags"] & 0xFF)
        for f, v in got.items():
            if v != want[f]:
                problems.append(f"{key}: {f} expected {want[f]}, got {v}")
    missing = [k for k in expected if k not in seen]
    if missing:
        problems.append(f"{len(missing)} uniflows have no record, e.g. {missing[0]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("flow_dir")
    ap.add_argument("totals")
    ap.add_argument("--nfcapd-log")
    ap.add_argument("--allow-sequence-errors", action="store_true")
    ap.add_argument("--records", help="expected records (pcap_totals.py --records): compare each one")
    args = ap.parse_args()
    want = json.load(open(args.totals))
    problems = []

    def cmp(what, got, exp):
        if got != exp:
            problems.append(f"{what}: pcap has {exp}, nfdump has {got}")

    records = json.loads(nfdump("-R", args.flow_dir, "-o", "json") or "[]")
    flows = [r for r in records if r.get("type") == "FLOW"]
    others = len(records) - len(flows)
    if others:
        problems.append(f"{others} stored records are not of type FLOW")
    per = {4: [0, 0, 0], 6: [0, 0, 0]}
    for r in flows:
        ver = 6 if "src6_addr" in r else 4
        per[ver][0] += 1
        per[ver][1] += int(r["in_packets"])
        per[ver][2] += int(r["in_bytes"])
        if r.get("out_packets") or r.get("out_bytes"):
            problems.append(f"record with out_packets/out_bytes (not a uniflow): {r}")
    cmp("records", len(flows), want["flows"])
    cmp("packets (records)", per[4][1] + per[6][1], want["ip_packets"])
    cmp("bytes (records)", per[4][2] + per[6][2], want["ip_octets"])
    for v in (4, 6):
        cmp(f"IPv{v} records", per[v][0], want[f"flows_v{v}"])
        cmp(f"IPv{v} packets", per[v][1], want[f"packets_v{v}"])
        cmp(f"IPv{v} bytes", per[v][2], want[f"octets_v{v}"])
    if flows:
        cmp("earliest first seen (ms)", min(ms(r["first"]) for r in flows), want["first_ms"])
        cmp("latest last seen (ms)", max(ms(r["last"]) for r in flows), want["last_ms"])

    if args.records:
        problems += compare_records(flows, args.records)

    summary_out = nfdump("-R", args.flow_dir, "-o", "null", "-N")
    m = re.search(r"Summary: total flows: (\d+), total bytes: (\d+), total packets: (\d+)", summary_out)
    if not m:
        problems.append(f"no summary line in nfdump output: {summary_out.strip()!r}")
        summary = None
    else:
        summary = [int(x) for x in m.groups()]
        cmp("summary total flows", summary[0], want["flows"])
        cmp("summary total bytes", summary[1], want["ip_octets"])
        cmp("summary total packets", summary[2], want["ip_packets"])

    if args.nfcapd_log:
        log = open(args.nfcapd_log, errors="replace").read()
        m = re.search(r"Flows: (\d+), Packets: (\d+), Bytes: (\d+), Sequence Errors: (\d+), Bad Packets: (\d+)", log)
        if not m:
            problems.append(f"no statistics line in nfcapd's log: {log.strip()!r}")
        else:
            f, p, b, seq, bad = (int(x) for x in m.groups())
            cmp("nfcapd Flows", f, want["flows"])
            cmp("nfcapd Packets", p, want["ip_packets"])
            cmp("nfcapd Bytes", b, want["ip_octets"])
            if seq and not args.allow_sequence_errors:
                problems.append(f"nfcapd counted {seq} sequence errors")
            if bad:
                problems.append(f"nfcapd counted {bad} bad packets")
        for line in log.splitlines():
            if re.search(r"error|unknown|skip|fail", line, re.I) and "Sequence Errors" not in line:
                problems.append(f"nfcapd complained: {line.strip()}")

    print(f"nfdump: {len(flows)} records (IPv4 {per[4][0]}, IPv6 {per[6][0]}), "
          f"summary flows/bytes/packets {summary}; pcap: flows {want['flows']}, "
          f"bytes {want['ip_octets']}, packets {want['ip_packets']}")
    if problems:
        print("FAIL: nfdump disagrees:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("ok: nfcapd stored every flow and the totals match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
