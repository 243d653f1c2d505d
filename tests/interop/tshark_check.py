#!/usr/bin/python3
"""Decodes a loopback capture of an IPFIX export with tshark's own IPFIX
dissector (cflow) and checks it against the totals of the exported pcap.

Usage: tshark_check.py CAPTURE --decode udp.port==P|tcp.port==P --totals TOTALS_JSON
                       [--flow-templates 256,257] [--stats-template 258]
                       [--allow-expert FIELD]...

Fails (exit 1, every problem listed) when:
  - tshark reports anything malformed, or any expert info of severity warning
    or error (e.g. "no template found", unexpected sequence number, TCP
    segments missing), except the expert fields named with --allow-expert;
  - a message is not IPFIX (version 10);
  - the flow records' packetDeltaCount / octetDeltaCount sums or their count
    differ from the pcap's IP packets, IP octets and uniflows, also split by
    IP version;
  - the earliest flowStart / latest flowEnd (milliseconds) differ from the
    first / last IP packet of the pcap (when the records carry them);
  - with --flow-templates: data sets use other template ids than those,
    --stats-template and 259 (RFC 5610 type records), or IPv4 records are not in the first / IPv6 not in the
    second template; with --stats-template: not exactly one statistics record
    per export, or its exportedFlowRecordTotalCount differs from the number of
    flow records.
"""
import argparse
import collections
import datetime
import json
import subprocess
import sys

SEVERITY = {0x00200000: "chat", 0x00400000: "note", 0x00600000: "warn", 0x00800000: "error"}
WARN = 0x00600000


def as_list(v):
    return v if isinstance(v, list) else [v]


def walk_experts(node, found):
    """Collects (severity, message, specific_field) for every _ws.expert below node."""
    if isinstance(node, list):
        for v in node:
            walk_experts(v, found)
        return
    if not isinstance(node, dict):
        return
    for k, v in node.items():
        if k == "_ws.expert":
            for e in as_list(v):
                fields = [f for f in e if not f.startswith("_ws.expert")]
                found.append((int(e.get("_ws.expert.severity", 0)), e.get("_ws.expert.message", "?"),
                              fields[0] if fields else "?"))
        elif k.startswith("_ws.malformed"):
            found.append((0x00800000, "Malformed Packet", k))
        else:
            walk_experts(v, found)


def parse_abstime(s):
    """'Jan  2, 2024 03:04:05.100000000 UTC' -> epoch milliseconds (truncated)."""
    s = " ".join(s.split())
    if not s.endswith(" UTC"):
        raise ValueError(f"unexpected time format {s!r}")
    main, frac = s[:-4].rsplit(".", 1)
    dt = datetime.datetime.strptime(main, "%b %d, %Y %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + int(frac[:3].ljust(3, "0"))


def flow_time(rec, key):
    tree = rec.get("cflow.timedelta_tree", {})
    v = tree.get(key) or rec.get(key)
    return parse_abstime(v) if v else None


def num(rec, field, base=10):
    v = rec.get(field)
    return int(v, base) if v is not None else 0


def decoded_record(r):
    """A tshark-decoded flow record in pcap_totals.py --records form."""
    ver = 6 if "cflow.srcaddrv6" in r else 4
    if ver == 6:
        icmp = num(r, "cflow.icmp_ipv6_type") << 8 | num(r, "cflow.icmp_ipv6_code")
    else:
        icmp = num(r, "cflow.icmp_type_code_ipv4", 16)
    tree = r.get("cflow.timedelta_tree", {})
    return {
        "vlan": num(r, "cflow.vlanid"), "cvlan": num(r, "cflow.dot1q_customer_vlan_id"),
        "ip_version": ver,
        "src": r.get("cflow.srcaddrv6" if ver == 6 else "cflow.srcaddr"),
        "dst": r.get("cflow.dstaddrv6" if ver == 6 else "cflow.dstaddr"),
        "proto": num(r, "cflow.protocol"), "sport": num(r, "cflow.srcport"),
        "dport": num(r, "cflow.dstport"), "icmp_type_code": icmp,
        "packets": num(r, "cflow.packets"), "octets": num(r, "cflow.octets"),
        "tcp_flags": num(r, "cflow.tcpflags", 16), "tos": num(r, "cflow.tos", 16),
        "start_ms": parse_abstime(tree["cflow.abstimestart"]) if "cflow.abstimestart" in tree else None,
        "end_ms": parse_abstime(tree["cflow.abstimeend"]) if "cflow.abstimeend" in tree else None,
        "end_reason": num(r, "cflow.flow_end_reason") if "cflow.flow_end_reason" in r else None,
    }


KEY = ("vlan", "cvlan", "ip_version", "src", "dst", "proto", "sport", "dport", "icmp_type_code")
VALUES = ("packets", "octets", "tcp_flags", "tos", "start_ms", "end_ms", "end_reason")


def endpoint(r, addr, port):
    return f"[{r[addr]}]:{r[port]}" if r["ip_version"] == 6 else f"{r[addr]}:{r[port]}"


def compare_records(decoded, expected_path):
    """Per-record differences between decoded records and the expected ones."""
    expected = {}
    for line in open(expected_path):
        r = json.loads(line)
        expected[tuple(r[k] for k in KEY)] = r
    problems = []
    seen = collections.Counter()
    diffs = collections.defaultdict(list)
    for d in decoded:
        key = tuple(d[k] for k in KEY)
        seen[key] += 1
        e = expected.get(key)
        if e is None:
            problems.append(f"decoded a record with no such uniflow in the pcap: {d}")
            continue
        for f in VALUES:
            if d[f] != e[f]:
                diffs[f].append(f"{endpoint(e, 'src', 'sport')} > {endpoint(e, 'dst', 'dport')} proto {e['proto']}"
                                f"{' icmp 0x%04x' % e['icmp_type_code'] if e['icmp_type_code'] else ''}: "
                                f"expected {e[f]}, got {d[f]}")
    for f, lst in diffs.items():
        problems.append(f"{f} differs in {len(lst)} records, e.g. " + "; ".join(lst[:3]))
    for key, n in seen.items():
        if n > 1 and key in expected:
            problems.append(f"{n} records for one uniflow (expected 1): {dict(zip(KEY, key))}")
    missing = [k for k in expected if k not in seen]
    if missing:
        problems.append(f"{len(missing)} uniflows have no record, e.g. {dict(zip(KEY, missing[0]))}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--decode", required=True, help="e.g. udp.port==47710")
    ap.add_argument("--totals", required=True)
    ap.add_argument("--flow-templates", help="IPv4,IPv6 flow template ids, e.g. 256,257")
    ap.add_argument("--stats-template", type=int)
    ap.add_argument("--allow-expert", action="append", default=[])
    ap.add_argument("--records", help="expected records (pcap_totals.py --records): compare each one")
    args = ap.parse_args()
    want = json.load(open(args.totals))

    out = subprocess.run(["tshark", "-n", "-r", args.capture, "-d", f"{args.decode},cflow",
                          "-T", "json", "--no-duplicate-keys"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"FAIL: tshark exited {out.returncode}: {out.stderr.strip()}", file=sys.stderr)
        return 1
    frames = json.loads(out.stdout or "[]")

    problems = []
    experts = collections.Counter()
    templates = {}  # template id -> frame where defined
    data_sets = collections.Counter()  # set id -> records
    flows = {"records": 0, "packets": 0, "octets": 0}
    by_ver = {4: collections.Counter(), 6: collections.Counter()}
    ver_in_set = collections.defaultdict(set)
    starts, ends = [], []
    decoded = []
    stats_records = []
    messages = 0
    msg_lens = []  # IPFIX message lengths in capture order
    flow_ids = None
    if args.flow_templates:
        flow_ids = [int(x) for x in args.flow_templates.split(",")]

    for fr in frames:
        layers = fr["_source"]["layers"]
        fno = layers.get("frame", {}).get("frame.number", "?")
        found = []
        walk_experts(layers, found)
        for sev, msg, field in found:
            if sev >= WARN and field not in args.allow_expert:
                experts[(SEVERITY.get(sev, hex(sev)), field, msg)] += 1
        if "cflow" not in layers:
            continue
        for msg in as_list(layers["cflow"]):
            messages += 1
            msg_lens.append(num(msg, "cflow.len"))
            if msg.get("cflow.version") != "10":
                problems.append(f"frame {fno}: not an IPFIX message (version {msg.get('cflow.version')})")
            for name, s in msg.items():
                if not name.startswith("Set ") or not isinstance(s, dict):
                    continue
                sid = int(s.get("cflow.flowset_id", -1))
                if sid in (2, 3):
                    for tname, t in s.items():
                        if "Template" in tname and isinstance(t, dict) and "cflow.template_id" in t:
                            templates.setdefault(int(t["cflow.template_id"]), fno)
                    continue
                recs = [v for k, v in s.items() if k.startswith("Flow ") and isinstance(v, dict)]
                if sid >= 256 and not recs:
                    problems.append(f"frame {fno}: data set {sid} decoded no records (template unknown?)")
                data_sets[sid] += len(recs)
                for r in recs:
                    if sid == args.stats_template:
                        stats_records.append((len(msg_lens) - 1, r))
                        continue
                    if "cflow.packets" not in r and "cflow.octets" not in r:
                        if flow_ids is not None and sid in flow_ids:
                            problems.append(f"frame {fno}: record in set {sid} has no packet/octet counters")
                        continue  # an options record of some other kind
                    if flow_ids is not None and sid not in flow_ids:
                        problems.append(f"frame {fno}: flow record in unexpected set {sid}")
                    p, o = int(r.get("cflow.packets", 0)), int(r.get("cflow.octets", 0))
                    flows["records"] += 1
                    decoded.append(decoded_record(r))
                    flows["packets"] += p
                    flows["octets"] += o
                    ver = 6 if "cflow.srcaddrv6" in r else 4 if "cflow.srcaddr" in r else None
                    if ver is None:
                        problems.append(f"frame {fno}: flow record in set {sid} without source address")
                    else:
                        by_ver[ver].update(records=1, packets=p, octets=o)
                        ver_in_set[sid].add(ver)
                    if p == 0:
                        problems.append(f"frame {fno}: flow record with packetDeltaCount 0")
                    st, en = flow_time(r, "cflow.abstimestart"), flow_time(r, "cflow.abstimeend")
                    if st is not None:
                        starts.append(st)
                    if en is not None:
                        ends.append(en)
                    if st is not None and en is not None and st > en:
                        problems.append(f"frame {fno}: flowStart {st} after flowEnd {en}")

    for (sev, field, msg), n in sorted(experts.items()):
        problems.append(f"tshark {sev} x{n}: {msg} [{field}]")
    if messages == 0:
        problems.append("tshark decoded no IPFIX message in the capture")

    def cmp(what, got, exp):
        if got != exp:
            problems.append(f"{what}: pcap has {exp}, tshark decoded {got}")

    cmp("flow records", flows["records"], want["flows"])
    cmp("packetDeltaCount sum", flows["packets"], want["ip_packets"])
    cmp("octetDeltaCount sum", flows["octets"], want["ip_octets"])
    for v in (4, 6):
        cmp(f"IPv{v} flow records", by_ver[v]["records"], want[f"flows_v{v}"])
        cmp(f"IPv{v} packets", by_ver[v]["packets"], want[f"packets_v{v}"])
        cmp(f"IPv{v} octets", by_ver[v]["octets"], want[f"octets_v{v}"])
    if starts:
        cmp("earliest flowStart (ms)", min(starts), want["first_ms"])
    if ends:
        cmp("latest flowEnd (ms)", max(ends), want["last_ms"])
    if flow_ids is not None:
        # 259: RFC 5610 type records announcing the enterprise elements
        allowed = set(flow_ids) | ({args.stats_template} if args.stats_template else set()) | {259}
        for sid in sorted(set(data_sets) - allowed):
            problems.append(f"data set with unexpected template id {sid} ({data_sets[sid]} records)")
        for sid, vers in ver_in_set.items():
            exp_ver = {flow_ids[0]: 4, flow_ids[1]: 6}.get(sid)
            if exp_ver is not None and vers != {exp_ver}:
                problems.append(f"set {sid} holds IPv{sorted(vers)} records, expected only IPv{exp_ver}")
        for tid in sorted(set(data_sets) - set(templates)):
            problems.append(f"data set {tid} used but its template never appeared in the capture")
    if args.records:
        problems += compare_records(decoded, args.records)
    if args.stats_template is not None:
        if len(stats_records) != 1:
            problems.append(f"statistics records (set {args.stats_template}): expected 1, got {len(stats_records)}")
        for i, r in stats_records:
            exp_flows = r.get("cflow.flowsexp")
            if exp_flows is not None and int(exp_flows) != flows["records"]:
                problems.append(f"statistics exportedFlowRecordTotalCount {exp_flows} != "
                                f"{flows['records']} flow records decoded")
            # Counted up to the message before the one carrying the record, or including it.
            exp_msgs = r.get("cflow.packetsexp")
            if exp_msgs is not None and int(exp_msgs) not in (i, i + 1):
                problems.append(f"statistics exportedMessageTotalCount {exp_msgs}: the record is in "
                                f"message {i + 1} of the capture")
            exp_oct = r.get("cflow.octetsexp")
            if exp_oct is not None and int(exp_oct) not in (sum(msg_lens[:i]), sum(msg_lens[:i + 1])):
                problems.append(f"statistics exportedOctetTotalCount {exp_oct}: messages before it "
                                f"sum to {sum(msg_lens[:i])} octets, {sum(msg_lens[:i + 1])} with it")

    print(f"tshark: {messages} IPFIX messages, templates {sorted(templates)}, "
          f"data sets {dict(sorted(data_sets.items()))}, flow records {flows['records']}, "
          f"packets {flows['packets']}, octets {flows['octets']}; "
          f"pcap: flows {want['flows']}, packets {want['ip_packets']}, octets {want['ip_octets']}")
    if msg_lens:
        print(f"tshark: IPFIX message lengths {min(msg_lens)}..{max(msg_lens)} octets")
    for _, r in stats_records:
        print("tshark: statistics record: " +
              ", ".join(f"{k.removeprefix('cflow.')}={v}" for k, v in r.items() if not isinstance(v, dict)))
    if problems:
        # One line per kind of problem: "frame N: what" repeats for every record.
        kinds = collections.OrderedDict()
        for p in problems:
            where, _, what = p.partition(": ") if p.startswith("frame ") else ("", "", p)
            kinds.setdefault(what, []).append(where)
        lines = [what if not wh[0] else f"{what} ({len(wh)}x, first in {wh[0]})" for what, wh in kinds.items()]
        print("FAIL: tshark decode disagrees:\n  " + "\n  ".join(lines), file=sys.stderr)
        return 1
    print("ok: tshark decoded every record without complaint and the totals match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
