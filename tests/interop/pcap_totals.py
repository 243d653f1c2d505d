#!/usr/bin/python3
"""Prints, as one JSON object, what bpfix-exporter should export for a pcap
under docs/flow-semantics.md with default timeouts:

  {"frames": N, "ip_packets": N, "ip_octets": N, "non_ip": N,
   "flows": N, "flows_v4": N, "flows_v6": N, ...,
   "first_ms": N, "last_ms": N}  (first and last IP packet, epoch ms, truncated)

ip_octets counts the IPv4 Total Length or the IPv6 Payload Length + 40 of
every IP packet; flows is the number of distinct uniflow keys (VLANs, IP
version, addresses, protocol, ports or ICMP type/code).

It parses the frames itself (link types Ethernet with 802.1Q/802.1ad tags, raw
IP, Linux SLL and SLL2), independent of bpfix. Counting one record per key is
only right when no rule splits a flow, so it refuses (exit 2, with the reason)
pcaps with: a gap >= the idle timeout or a span >= the active timeout inside a
key, a TCP packet after RST, a packet later than the linger after a FIN, a SYN
after a FIN, IP fragments, malformed packets, or more keys than max_flows.

Classic pcap only (not pcapng).

Usage: pcap_totals.py FILE.pcap [--field NAME] [--records FILE]
  --field prints one number; --records writes the expected record of every
  uniflow (key, packets, octets, tcp_flags, tos, start_ms, end_ms,
  end_reason) as JSON lines.
"""
import argparse
import json
import socket
import struct
import sys

from scapy.utils import RawPcapReader

IDLE_TIMEOUT = 15.0
ACTIVE_TIMEOUT = 60.0
TCP_END_LINGER = 2.0
MAX_FLOWS = 65536  # far above anything a test pcap holds

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = {12, 14, 101}
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_SLL = 113
LINKTYPE_SLL2 = 276

PORT_PROTOCOLS = {6, 17, 33, 132, 136}  # TCP UDP DCCP SCTP UDP-Lite
IPV6_EXT = {0, 43, 60, 135, 139, 140, 253, 254}  # chained by (next, hdr-ext-len)


class Refuse(Exception):
    pass


def l3_offset(linktype, data):
    """Returns (ethertype, offset of the L3 header, outer vlan, inner vlan)."""
    if linktype == LINKTYPE_ETHERNET:
        off, ethertype = 14, struct.unpack_from("!H", data, 12)[0]
        vlans = []
        while ethertype in (0x8100, 0x88A8) and len(vlans) < 2:
            tci, ethertype = struct.unpack_from("!HH", data, off)
            vlans.append(tci & 0x0FFF)
            off += 4
        vlans += [0, 0]
        return ethertype, off, vlans[0], vlans[1]
    if linktype in LINKTYPE_RAW:
        return {4: 0x0800, 6: 0x86DD}.get(data[0] >> 4, 0), 0, 0, 0
    if linktype == LINKTYPE_IPV4:
        return 0x0800, 0, 0, 0
    if linktype == LINKTYPE_IPV6:
        return 0x86DD, 0, 0, 0
    if linktype == LINKTYPE_SLL:
        return struct.unpack_from("!H", data, 14)[0], 16, 0, 0
    if linktype == LINKTYPE_SLL2:
        return struct.unpack_from("!H", data, 0)[0], 20, 0, 0
    raise Refuse(f"link type {linktype} not handled")


def transport(proto, data, off, end):
    """Returns (sport, dport, icmp_type_code, tcp_flags) for the L4 header at off."""
    if proto in PORT_PROTOCOLS:
        if end - off < 4:
            raise Refuse("transport header cut")
        sport, dport = struct.unpack_from("!HH", data, off)
        flags = 0
        if proto == 6:
            if end - off < 14:
                raise Refuse("TCP header cut")
            flags = data[off + 13] | ((data[off + 12] & 1) << 8)
        return sport, dport, 0, flags
    if proto in (1, 58):
        if end - off < 2:
            raise Refuse("ICMP header cut")
        return 0, 0, data[off] << 8 | data[off + 1], 0
    return 0, 0, 0, 0


def parse_ip(data, off, ethertype):
    """Returns (version, ip_octets, key_without_vlans, tcp_flags, tos)."""
    if ethertype == 0x0800:
        if len(data) - off < 20 or data[off] >> 4 != 4:
            raise Refuse("malformed IPv4 header")
        ihl = (data[off] & 0x0F) * 4
        tos = data[off + 1]
        total, frag = struct.unpack_from("!H2xH", data, off + 2)
        if frag & 0x3FFF:
            raise Refuse("IPv4 fragment")
        proto = data[off + 9]
        src, dst = data[off + 12:off + 16], data[off + 16:off + 20]
        sport, dport, icmp, flags = transport(proto, data, off + ihl, off + total)
        return 4, total, (4, src, dst, proto, sport, dport, icmp), flags, tos
    if ethertype == 0x86DD:
        if len(data) - off < 40 or data[off] >> 4 != 6:
            raise Refuse("malformed IPv6 header")
        tos = (struct.unpack_from("!I", data, off)[0] >> 20) & 0xFF
        plen, nxt = struct.unpack_from("!HB", data, off + 4)
        if plen == 0:
            raise Refuse("IPv6 jumbogram")
        src, dst = data[off + 8:off + 24], data[off + 24:off + 40]
        p = off + 40
        for _ in range(16):
            if nxt == 44:
                raise Refuse("IPv6 fragment")
            if nxt not in IPV6_EXT:
                break
            nxt, hlen = data[p], data[p + 1]
            p += (hlen + 1) * 8
        sport, dport, icmp, flags = transport(nxt, data, p, off + 40 + plen)
        return 6, plen + 40, (6, src, dst, nxt, sport, dport, icmp), flags, tos
    return None


def totals(path):
    reader = RawPcapReader(path)
    if not hasattr(reader, "nano"):
        raise Refuse("not a classic pcap file (convert with: editcap -F pcap)")
    nano = reader.nano
    linktype = reader.linktype
    res = {"frames": 0, "ip_packets": 0, "ip_octets": 0, "non_ip": 0,
           "flows": 0, "flows_v4": 0, "flows_v6": 0,
           "packets_v4": 0, "octets_v4": 0, "packets_v6": 0, "octets_v6": 0,
           "first_ms": None, "last_ms": None}
    flows = {}  # key -> dict(first, last, fin, rst)
    clock = None
    for data, meta in reader:
        res["frames"] += 1
        # Integer nanoseconds: floats would misround the millisecond truncation.
        ts_ns = meta.sec * 10**9 + meta.usec * (1 if nano else 1000)
        ts = ts_ns / 1e9
        if clock is not None and ts < clock:
            raise Refuse(f"frame {res['frames']}: timestamp goes backwards")
        clock = ts
        ethertype, off, vlan, cvlan = l3_offset(linktype, data)
        parsed = parse_ip(data, off, ethertype)
        if parsed is None:
            res["non_ip"] += 1
            continue
        ver, octets, key, flags, tos = parsed
        key = (vlan, cvlan) + key
        res["ip_packets"] += 1
        if res["first_ms"] is None:
            res["first_ms"] = ts_ns // 10**6
        res["last_ms"] = ts_ns // 10**6
        res["ip_octets"] += octets
        res[f"packets_v{ver}"] += 1
        res[f"octets_v{ver}"] += octets
        f = flows.get(key)
        where = f"frame {res['frames']} ({ts:.6f})"
        if f is None:
            f = flows[key] = {"first": ts, "last": ts, "fin": None, "rst": False, "tos": tos,
                              "first_ms": ts_ns // 10**6, "packets": 0, "octets": 0, "flags": 0}
            res["flows"] += 1
            res[f"flows_v{ver}"] += 1
        elif ts - f["last"] >= IDLE_TIMEOUT:
            raise Refuse(f"{where}: idle gap would split a flow")
        elif ts - f["first"] >= ACTIVE_TIMEOUT:
            raise Refuse(f"{where}: active timeout would split a flow")
        elif f["rst"]:
            raise Refuse(f"{where}: packet after RST would start a new record")
        elif f["fin"] is not None and ts - f["fin"] >= TCP_END_LINGER:
            raise Refuse(f"{where}: packet after the FIN linger would start a new record")
        elif f["fin"] is not None and flags & 0x12 == 0x02:
            raise Refuse(f"{where}: SYN after FIN would start a new record")
        f["last"] = ts
        f["last_ms"] = ts_ns // 10**6
        f["packets"] += 1
        f["octets"] += octets
        f["flags"] |= flags
        if key[5] == 6:
            if flags & 0x01 and f["fin"] is None:
                f["fin"] = ts
            if flags & 0x04:
                f["rst"] = True
    if len(flows) > MAX_FLOWS:
        raise Refuse("more keys than max_flows")
    res["records"] = [record(k, f) for k, f in flows.items()]
    return res


def record(key, f):
    """The record bpfix should export for one uniflow key (no split)."""
    vlan, cvlan, ver, src, dst, proto, sport, dport, icmp = key
    fam = socket.AF_INET6 if ver == 6 else socket.AF_INET
    return {
        "vlan": vlan, "cvlan": cvlan, "ip_version": ver,
        "src": socket.inet_ntop(fam, src), "dst": socket.inet_ntop(fam, dst),
        "proto": proto, "sport": sport, "dport": dport, "icmp_type_code": icmp,
        "packets": f["packets"], "octets": f["octets"], "tcp_flags": f["flags"], "tos": f["tos"],
        "start_ms": f["first_ms"], "end_ms": f["last_ms"],
        # end of input: forced end (4), except flows that saw FIN (3); RST ends at once (3)
        "end_reason": 3 if proto == 6 and (f["fin"] is not None or f["rst"]) else 4,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--field", help="print only this number")
    ap.add_argument("--records", metavar="FILE",
                    help="also write the expected records, one JSON object a line")
    args = ap.parse_args()
    try:
        res = totals(args.pcap)
    except Refuse as e:
        print(f"pcap_totals: {args.pcap}: cannot predict records: {e}", file=sys.stderr)
        sys.exit(2)
    records = res.pop("records")
    if args.records:
        with open(args.records, "w") as out:
            for r in records:
                out.write(json.dumps(r) + "\n")
    if args.field:
        print(res[args.field])
    else:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
