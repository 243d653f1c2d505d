#!/usr/bin/python3
"""Helper of replay_equivalence.py: the deterministic pcap it replays, and a
reference reading of each frame under docs/flow-semantics.md (used only to
name the frames behind a disagreement, never to decide pass or fail).

The capture is tests/interop/make_pcap.py's interop pcap (TCP, UDP, ICMP
over IPv4 and IPv6, 802.1Q and QinQ, 2 ARP frames; about 6 s) followed by
labelled edge frames at 7 s and later: VLAN variants (PCP/DEI bits, priority
tags, legacy 0x9100, 3 to 5 tags), IPv4/IPv6 fragments in and out of order,
IPv4 options, IPv6 extension headers and jumbograms, Ethernet padding, RST
and SYN-after-FIN, a snap-length-cut packet, malformed packets and LLDP.
Every frame fits a 1500-byte veth (at most MTU + 14 + 4 bytes for a tagged
frame is what a veth forwards) and none needs an answer.

usage: replay_pcap.py OUT.pcap   (writes it and prints one line per frame)
"""
import ipaddress
import os
import random
import struct
import sys
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import make_pcap  # noqa: E402

from scapy.all import (ICMP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Padding, Raw, fragment,  # noqa: E402
                       wrpcap)
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,  # noqa: E402
                                IPv6ExtHdrHopByHop, fragment6)

START = make_pcap.DEFAULT_START
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0a:02"


def _tags(spec, inner=None):
    """spec: list of (tpid, tci) outermost first -> Ether with those tags;
    inner: EtherType after the last tag (default: from the payload)."""
    frame = Ether(src=MAC_A, dst=MAC_B, type=spec[0][0] if spec else 0x0800)
    for i, (tpid, tci) in enumerate(spec):
        nxt = spec[i + 1][0] if i + 1 < len(spec) else inner
        kw = dict(prio=tci >> 13, id=(tci >> 12) & 1, vlan=tci & 0xfff)
        if nxt is not None:
            kw["type"] = nxt
        frame = frame / Dot1Q(**kw)
    return frame


def edge_frames():
    """[(label, frame)] in send order; payloads from a fixed seed."""
    rng = random.Random(20261122)
    pay = lambda n: Raw(bytes(rng.randrange(256) for _ in range(n)))  # noqa: E731
    Q, AD, LEG = 0x8100, 0x88A8, 0x9100
    out = []

    def add(label, frame):
        out.append((label, frame))

    def udp4(s, d, sp, dp, n):
        return IP(src=s, dst=d) / UDP(sport=sp, dport=dp) / pay(n)

    # VLAN variants. On the receiving veth the kernel moves the outermost
    # 802.1Q/802.1ad tag into skb metadata (skb_vlan_untag) before the TC
    # hook runs; 0x9100 is not untagged. The datapath must give the same key.
    for i in range(3):
        add("802.1Q VID 10 with PCP 7 and DEI, IPv6 UDP",
            _tags([(Q, 0xF00A)]) / IPv6(src="2001:db8:e::1", dst="2001:db8:f::1") / UDP(sport=41000, dport=4789)
            / pay(60 + 30 * i))
    for flags in ("S", "A", "PA", "FA"):
        add("802.1ad 20 / 802.1Q 21, IPv6 TCP",
            _tags([(AD, 20), (Q, 21)]) / IPv6(src="2001:db8:e::2", dst="2001:db8:f::2")
            / TCP(sport=41001, dport=443, flags=flags, seq=1000) / (pay(100) if flags == "PA" else b""))
    for i in range(2):
        add("802.1Q VID 10, ICMPv6 echo request",
            _tags([(Q, 10)]) / IPv6(src="2001:db8:e::3", dst="2001:db8:f::3") / ICMPv6EchoRequest(id=7, seq=i)
            / pay(32))
    for i in range(2):
        add("priority tag (802.1Q VID 0, PCP 5), IPv4 UDP",
            _tags([(Q, 0xA000)]) / udp4("10.9.0.1", "192.0.2.201", 41002, 5000, 40 + i))
    add("802.1Q VID 4094, IPv4 UDP", _tags([(Q, 4094)]) / udp4("10.9.0.2", "192.0.2.202", 41003, 5000, 64))
    for i in range(2):
        add("legacy QinQ 0x9100 40 / 802.1Q 41, IPv4 ICMP echo",
            _tags([(LEG, 40), (Q, 41)]) / IP(src="10.9.0.3", dst="192.0.2.203") / ICMP(type=8, id=9, seq=i) / pay(24))
    for i in range(2):
        add("3 tags: 802.1ad 50 / 802.1Q 51 / 802.1Q 52, IPv4 UDP",
            _tags([(AD, 50), (Q, 51), (Q, 52)]) / udp4("10.9.0.4", "192.0.2.204", 41004, 5000, 50 + i))
    add("802.1ad 60 / priority-tagged 802.1Q VID 0, IPv4 UDP",
        _tags([(AD, 60), (Q, 0)]) / udp4("10.9.0.5", "192.0.2.205", 41005, 5000, 70))
    add("3 tags with a VID-0 middle tag: 802.1ad 70 / 802.1Q 0 / 802.1Q 72, IPv4 UDP",
        _tags([(AD, 70), (Q, 0), (Q, 72)]) / udp4("10.9.0.6", "192.0.2.206", 41006, 5000, 80))
    add("4 tags: 802.1ad 80 / 802.1Q 81 / 82 / 83, IPv4 UDP",
        _tags([(AD, 80), (Q, 81), (Q, 82), (Q, 83)]) / udp4("10.9.0.7", "192.0.2.207", 41007, 5000, 90))
    add("5 tags: 802.1ad 90 / 802.1Q 91 / 92 / 93 / 94, IPv4 UDP (more than 4 tags: malformed)",
        _tags([(AD, 90), (Q, 91), (Q, 92), (Q, 93), (Q, 94)]) / udp4("10.9.0.8", "192.0.2.208", 41008, 5000, 100))

    # Fragments: in order, non-first before first, IPv6, on a VLAN.
    big = udp4("10.9.1.1", "192.0.2.211", 41010, 6000, 1200)
    big[IP].id = 0x1111
    for f in fragment(big, fragsize=480):
        add("IPv4 UDP in 3 fragments, in order", Ether(src=MAC_A, dst=MAC_B) / f)
    big = udp4("10.9.1.2", "192.0.2.212", 41011, 6000, 900)
    big[IP].id = 0x2222
    fr = fragment(big, fragsize=600)
    add("IPv4 UDP non-first fragment BEFORE its first fragment", Ether(src=MAC_A, dst=MAC_B) / fr[1])
    add("IPv4 UDP first fragment after its non-first one", Ether(src=MAC_A, dst=MAC_B) / fr[0])
    big6 = (IPv6(src="2001:db8:e::4", dst="2001:db8:f::4") / IPv6ExtHdrFragment(id=0x33333333)
            / UDP(sport=41012, dport=6000) / pay(1000))
    for f in fragment6(big6, 600):
        add("IPv6 UDP in fragments (fragment header), 802.1Q VID 12", _tags([(Q, 12)]) / f)

    # IP options, extension headers, jumbograms, other protocols.
    add("IPv4 with options (IHL 6), TCP SYN",
        Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.2.1", dst="192.0.2.221", options=b"\x01\x01\x01\x00")
        / TCP(sport=41020, dport=22, flags="S"))
    add("IPv6 hop-by-hop + destination options, TCP",
        Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8:e::5", dst="2001:db8:f::5") / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt() / TCP(sport=41021, dport=80, flags="S"))
    # Hop-by-hop headers written out: next header 17 (UDP), then options.
    jumbo = b"\xc2\x04" + struct.pack("!I", 70000)
    hbh_first = b"\x11\x00" + jumbo                                     # 8 bytes: Jumbo at offset 2
    hbh_padded = b"\x11\x01" + b"\x01\x02\x00\x00" + jumbo + b"\x01\x02\x00\x00"  # 16: Jumbo at 6
    for label, hbh, host in (("first in hop-by-hop", hbh_first, 6), ("after a 4-byte PadN, offset 4n+2", hbh_padded, 7)):
        add(f"IPv6 jumbogram (Payload Length 0, Jumbo Payload option 70000 {label}), UDP, 40-byte frame tail",
            Ether(src=MAC_A, dst=MAC_B) / IPv6(src=f"2001:db8:e::{host}", dst=f"2001:db8:f::{host}", plen=0, nh=0)
            / Raw(hbh + bytes(UDP(sport=41022, dport=7000, len=0, chksum=0)) + bytes(pay(40))))
    add("IPv4 GRE (protocol 47, no ports)",
        Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.2.2", dst="192.0.2.222", proto=47) / pay(36))
    add("IPv6 no next header (59)",
        Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8:e::8", dst="2001:db8:f::8", nh=59) / pay(8))
    add("IPv4 UDP 1 byte, Ethernet padding to 60 bytes",
        Ether(src=MAC_A, dst=MAC_B) / udp4("10.9.2.3", "192.0.2.223", 41024, 7000, 1) / Padding(b"\0" * 17))

    # TCP record ends (pcap mode splits records; the sums must not change).
    for flags in ("S", "R"):
        add("TCP SYN then RST",
            Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.3.1", dst="192.0.2.231") / TCP(sport=41030, dport=25,
                                                                                       flags=flags))
    for flags in ("S", "A", "FA", "A", "S", "A"):
        add("TCP FIN then a new SYN on the same 5-tuple",
            Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.3.2", dst="192.0.2.232") / TCP(sport=41031, dport=25,
                                                                                       flags=flags))

    # Cut by the snap length: the pcap keeps 100 of 1042 bytes; tcpreplay
    # sends the 100 captured bytes. Both engines count the IP Total Length.
    cut = Ether(src=MAC_A, dst=MAC_B) / udp4("10.9.4.1", "192.0.2.241", 41040, 8000, 1000)
    cut.wirelen = len(cut)
    cut = Ether(bytes(cut)[:100])
    cut.wirelen = 14 + 20 + 8 + 1000
    add("IPv4 UDP cut by the snap length (100 of 1042 bytes captured)", cut)

    # Malformed and non-IP: compared through the exporters' summary counters.
    add("malformed: IPv4 TCP with a 10-byte TCP header",
        Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.5.1", dst="192.0.2.251", proto=6) / pay(10))
    add("malformed: IPv6 header under EtherType 0x0800",
        Ether(src=MAC_A, dst=MAC_B, type=0x0800) / IPv6(src="2001:db8:e::9", dst="2001:db8:f::9") / UDP() / pay(8))
    bad_ihl = bytearray(bytes(IP(src="10.9.5.2", dst="192.0.2.252") / UDP(sport=41050, dport=8000) / pay(8)))
    bad_ihl[0] = 0x44
    add("malformed: 802.1Q VID 13, IPv4 UDP with an IHL of 4 (16 bytes)", _tags([(Q, 13)], 0x0800) / Raw(bytes(bad_ihl)))
    add("non-IP: LLDP", Ether(src=MAC_A, dst="01:80:c2:00:00:0e", type=0x88CC) / pay(40))
    return out


def frames():
    """[(label, frame)] of the whole capture, timestamps set."""
    base = [("interop: " + f.summary(), f) for f in make_pcap.build(START)]
    edge = edge_frames()
    for i, (_, f) in enumerate(edge):
        f.time = Decimal(START) + Decimal(7) + Decimal(i) / 100
    return base + edge


def write(path):
    fr = frames()
    wrpcap(path, [f for _, f in fr])
    return [label for label, _ in fr]


# ---- reference reading of docs/flow-semantics.md, for diagnostics only ----

def _be16(b, o):
    return b[o] << 8 | b[o + 1]


def reference(path):
    """For each frame of the pcap: ("flow", key, octets) or ("malformed"|"non_ip", None, 0).
    key = (ipver, src, dst, proto, sport, dport, icmp, vlan, inner_vlan)."""
    from scapy.utils import RawPcapReader
    frag = {}
    return [_ref_frame(bytes(raw), frag) for raw, _meta in RawPcapReader(path)]


def loose_keys(path):
    """For diagnosis: each frame's key read without the 4-tag limit (None if
    it still cannot be read), to find the frame behind a key no frame has."""
    from scapy.utils import RawPcapReader
    frag = {}
    return [_ref_frame(bytes(raw), frag, max_tags=64)[1] for raw, _meta in RawPcapReader(path)]


TPORT = {6: 20, 17: 8, 136: 8, 132: 12, 33: 12, 1: 8, 58: 4}


def _ref_frame(b, frag, max_tags=4):
    bad = ("malformed", None, 0)
    if len(b) < 14:
        return bad
    off, tags, vl = 12, 0, [0, 0]
    t = _be16(b, off)
    while t in (0x8100, 0x88A8, 0x9100):
        if tags >= max_tags or off + 6 > len(b):
            return bad
        if tags < 2:
            vl[tags] = _be16(b, off + 2) & 0xFFF
        tags += 1
        off += 4
        t = _be16(b, off)
    p = b[off + 2:]
    if t == 0x0800:
        if len(p) < 20 or p[0] >> 4 != 4:
            return bad
        ihl, total = (p[0] & 15) * 4, _be16(p, 2)
        if ihl < 20 or total < ihl or len(p) < ihl:
            return bad
        ver, proto, src, dst, octets = 4, p[9], p[12:16], p[16:20], total
        fo = _be16(p, 6)
        is_frag, first, fid = bool(fo & 0x3FFF), (fo & 0x1FFF) == 0, _be16(p, 4)
        th, end = ihl, min(total, len(p))
    elif t == 0x86DD:
        if len(p) < 40 or p[0] >> 4 != 6:
            return bad
        ver, src, dst = 6, p[8:24], p[24:40]
        plen, nxt = _be16(p, 4), p[6]
        payload = plen
        if plen == 0 and nxt == 0 and len(p) >= 48:
            payload = 0
            hl = (p[41] + 1) * 8
            o = 2
            while o < hl and 40 + o < len(p):
                if p[40 + o] == 0:
                    o += 1
                    continue
                if p[40 + o] == 0xC2 and p[41 + o] == 4:
                    payload = struct.unpack("!I", p[42 + o:46 + o])[0]
                    break
                o += 2 + p[41 + o]
        octets = 40 + payload
        end, th, is_frag, first, fid = min(40 + payload, len(p)), 40, False, True, 0
        for i in range(17):
            if nxt in (0, 43, 60, 135, 139, 140, 253, 254, 51, 44):
                if i >= 16 or th + 8 > end:
                    return bad
                if nxt == 44:
                    is_frag, first = True, (_be16(p, th + 2) >> 3) == 0
                    fid = struct.unpack("!I", p[th + 4:th + 8])[0]
                    nxt, th = p[th], th + 8
                    if not first:
                        break
                    continue
                hl = (p[th + 1] + 2) * 4 if nxt == 51 else (p[th + 1] + 1) * 8
                nxt, th = p[th], th + hl
                if th > end:
                    return bad
                continue
            break
        proto = nxt
    else:
        return ("non_ip", None, 0)
    sp = dp = icmp = 0
    fk = (ver, bytes(src), bytes(dst), proto if ver == 4 else 0, fid)
    if is_frag and not first:
        sp, dp, icmp = frag.get(fk, (0, 0, 0))
    elif not (ver == 6 and proto == 59):
        need = TPORT.get(proto, 0)
        if th + need > end:
            return bad
        if proto in (1, 58):
            icmp = p[th] << 8 | p[th + 1]
        elif need:
            sp, dp = _be16(p, th), _be16(p, th + 2)
        if is_frag:
            frag[fk] = (sp, dp, icmp)
    a = lambda x: str(ipaddress.ip_address(bytes(x)))  # noqa: E731
    return ("flow", (ver, a(src), a(dst), proto, sp, dp, icmp, vl[0], vl[1]), octets)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    labels = write(sys.argv[1])
    for i, (label, ref) in enumerate(zip(labels, reference(sys.argv[1]))):
        print(i, label, ref)
