#!/usr/bin/python3
"""Totals check: for every golden case pcap, the packetDeltaCount and
octetDeltaCount summed over the exported flow records, and the summary
line's ip_packets/ip_octets, equal what the pcap holds for IP packets,
computed here independently by reading the pcap back with scapy (IPv4
Total Length; IPv6 Payload Length + 40, or for a jumbogram the wire length
minus the link-layer header). Frames and non_ip are checked too.

usage: run_totals.py BUILD_DIR [-k SUBSTRING]
exit: 0 pass, 1 mismatch, 77 binaries not built (skip)
"""
import argparse
import os
import shutil
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

from golden_lib import (RunError, collector_path, describe_rc, exporter_path,  # noqa: E402
                        flow_records, parse_summary, read_records, run_exporter,
                        write_case_pcap)


def pcap_ip_totals(path):
    """(frames, ip packets, ip octets, non-IP frames) read with scapy."""
    from scapy.all import PcapReader, IP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo
    frames = pkts = octets = non_ip = 0
    with PcapReader(path) as rd:
        for p in rd:
            frames += 1
            ip = _first_ip(p)
            if ip is None:
                non_ip += 1
            elif isinstance(ip, IP):
                pkts += 1
                octets += ip.len
            else:
                pkts += 1
                if ip.plen == 0 and ip.haslayer(IPv6ExtHdrHopByHop) and ip.haslayer(Jumbo):
                    link_hdr = len(bytes(p)) - len(bytes(ip))
                    octets += p.wirelen - link_hdr
                else:
                    octets += ip.plen + 40
    return frames, pkts, octets, non_ip


def _first_ip(p):
    """The outermost IP/IPv6 layer (not the quoted header of an ICMP error,
    not a tunnelled packet), or None."""
    from scapy.all import IP
    from scapy.layers.inet6 import IPv6
    layer = p
    while layer is not None and layer.__class__ not in (IP, IPv6):
        layer = layer.payload if layer.payload else None
    return layer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("-k", dest="pattern", default="")
    a = ap.parse_args()
    for p in (exporter_path(a.build_dir), collector_path(a.build_dir)):
        if not os.access(p, os.X_OK):
            print("run_totals: %s not built; skipping" % p)
            return 77
    import cases
    failed = []
    tmp = tempfile.mkdtemp(prefix="bpfix-totals-")
    try:
        cs = [c for c in cases.all_cases() if a.pattern in c.name]
        for case in cs:
            problems = []
            pcap = write_case_pcap(case, os.path.join(tmp, case.name + ".pcap"))
            frames, pkts, octets, non_ip = pcap_ip_totals(pcap)
            # the case's own expectations must add up to the pcap (else: test bug)
            if (pkts, octets) != (sum(r.pkts for r in case.expected),
                                  sum(r.octets for r in case.expected)):
                problems.append("TEST BUG: case expectations sum to %d packets/%d octets, "
                                "pcap holds %d/%d" % (sum(r.pkts for r in case.expected),
                                                      sum(r.octets for r in case.expected),
                                                      pkts, octets))
            out = os.path.join(tmp, case.name + ".ipfix")
            try:
                cmd, rc, _o, stderr = run_exporter(a.build_dir, pcap, out, case.args)
                if rc != 0:
                    problems.append("exporter %s: %s" % (describe_rc(rc), stderr[-2000:]))
                else:
                    s = parse_summary(stderr)
                    fl = flow_records(read_records(a.build_dir, out))
                    got_p = sum(r.get("packetDeltaCount", 0) for r in fl)
                    got_o = sum(r.get("octetDeltaCount", 0) for r in fl)
                    for what, want, got in (
                            ("sum(packetDeltaCount)", pkts, got_p),
                            ("sum(octetDeltaCount)", octets, got_o),
                            ("summary ip_packets", pkts, s["ip_packets"]),
                            ("summary ip_octets", octets, s["ip_octets"]),
                            ("summary frames", frames, s["frames"]),
                            ("summary non_ip", non_ip, s["non_ip"]),
                            ("summary malformed", 0, s["malformed"])):
                        if want != got:
                            problems.append("%s: pcap says %d, got %d" % (what, want, got))
            except RunError as ex:
                problems.append(str(ex))
            if problems:
                failed.append(case.name)
                print("FAIL %s (pcap: %d frames, %d IP packets, %d IP octets, %d non-IP)"
                      % (case.name, frames, pkts, octets, non_ip))
                for l in problems:
                    print("    " + l)
            else:
                print("ok   %s: %d IP packets, %d octets" % (case.name, pkts, octets))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("run_totals: %d/%d cases passed%s" % (len(cs) - len(failed), len(cs),
          ("; failed: " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
