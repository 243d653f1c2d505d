#!/usr/bin/python3
"""Writes a deterministic interop pcap: 60 uniflows of TCP, UDP and ICMP over
IPv4 and IPv6 (a few on 802.1Q and QinQ VLANs), 221 IP packets, plus two ARP
frames (not IP, not flows).

Usage: make_pcap.py OUT.pcap [--start EPOCH_SECONDS] [--no-vlans]

Every packet has a fixed timestamp; the whole capture spans about 6 s, so under
docs/flow-semantics.md with default timeouts no flow is split by the idle,
active or TCP-end rules: each uniflow key gives exactly one record. TCP
connections close with FIN and their last ACK comes well within the 2 s linger;
no RST and no SYN after FIN. Run pcap_totals.py on the output for the expected
packet, octet and flow counts.
"""
import argparse
import random
import sys
from decimal import Decimal

from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, IPv6, Raw, wrpcap
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest

DEFAULT_START = 1704164645  # 2024-01-02T03:04:05Z

MAC_CLIENT = "02:00:00:00:00:01"
MAC_SERVER = "02:00:00:00:00:02"


class Builder:
    """Collects (timestamp, frame) pairs; timestamps are fixed microseconds."""

    def __init__(self, start, rng):
        self.start = start
        self.rng = rng
        self.frames = []

    def add(self, t_offset, l3, from_client=True, vlans=()):
        """vlans: () untagged, (vid,) 802.1Q, (outer, inner) 802.1ad QinQ."""
        src, dst = (MAC_CLIENT, MAC_SERVER) if from_client else (MAC_SERVER, MAC_CLIENT)
        frame = Ether(src=src, dst=dst)
        if len(vlans) == 2:
            frame = frame / Dot1AD(vlan=vlans[0]) / Dot1Q(vlan=vlans[1])
        elif vlans:
            frame = frame / Dot1Q(vlan=vlans[0])
        frame = frame / l3
        # Whole microseconds so the pcap stores exactly this time.
        usec = round(t_offset * 1e6)
        frame.time = Decimal(self.start) + Decimal(usec) / 1000000
        self.frames.append((usec, len(self.frames), frame))

    def payload(self, n):
        return Raw(bytes(self.rng.randrange(256) for _ in range(n)))


def ip_layer(v6, src, dst, **kw):
    return IPv6(src=src, dst=dst, **kw) if v6 else IP(src=src, dst=dst, **kw)


def tcp_connection(b, t, v6, cli, srv, cport, sport, nreq, nresp):
    """Handshake, nreq client segments, nresp server segments, FIN both ways,
    final ACK: two uniflows."""
    seq_c, seq_s = b.rng.randrange(1 << 32), b.rng.randrange(1 << 32)
    c = lambda: ip_layer(v6, cli, srv)  # noqa: E731
    s = lambda: ip_layer(v6, srv, cli)  # noqa: E731
    dt = 0.004
    b.add(t, c() / TCP(sport=cport, dport=sport, flags="S", seq=seq_c)); t += dt
    b.add(t, s() / TCP(sport=sport, dport=cport, flags="SA", seq=seq_s, ack=seq_c + 1), False); t += dt
    seq_c += 1
    seq_s += 1
    b.add(t, c() / TCP(sport=cport, dport=sport, flags="A", seq=seq_c, ack=seq_s)); t += dt
    for _ in range(nreq):
        n = b.rng.randrange(20, 600)
        b.add(t, c() / TCP(sport=cport, dport=sport, flags="PA", seq=seq_c, ack=seq_s) / b.payload(n))
        seq_c += n
        t += dt
    for _ in range(nresp):
        n = b.rng.randrange(200, 1400)
        b.add(t, s() / TCP(sport=sport, dport=cport, flags="PA", seq=seq_s, ack=seq_c) / b.payload(n), False)
        seq_s += n
        t += dt
    b.add(t, c() / TCP(sport=cport, dport=sport, flags="A", seq=seq_c, ack=seq_s)); t += dt
    b.add(t, c() / TCP(sport=cport, dport=sport, flags="FA", seq=seq_c, ack=seq_s)); t += dt
    seq_c += 1
    b.add(t, s() / TCP(sport=sport, dport=cport, flags="FA", seq=seq_s, ack=seq_c), False); t += dt
    seq_s += 1
    b.add(t, c() / TCP(sport=cport, dport=sport, flags="A", seq=seq_c, ack=seq_s))


def udp_exchange(b, t, v6, cli, srv, cport, sport, rounds, one_way=False, vlans=()):
    """rounds request/response datagrams: two uniflows (one if one_way)."""
    for i in range(rounds):
        q = b.rng.randrange(20, 120)
        b.add(t + i * 0.05, ip_layer(v6, cli, srv) / UDP(sport=cport, dport=sport) / b.payload(q), vlans=vlans)
        if not one_way:
            r = b.rng.randrange(40, 900)
            b.add(t + i * 0.05 + 0.002, ip_layer(v6, srv, cli) / UDP(sport=sport, dport=cport) / b.payload(r), False,
                  vlans=vlans)


def ping(b, t, v6, cli, srv, ident, count, tos=0):
    """count echo requests and replies: two uniflows (type 8/0, or 128/129)."""
    for i in range(count):
        data = b.payload(56)
        if v6:
            req = IPv6(src=cli, dst=srv, tc=tos) / ICMPv6EchoRequest(id=ident, seq=i) / data
            rep = IPv6(src=srv, dst=cli, tc=tos) / ICMPv6EchoReply(id=ident, seq=i) / data
        else:
            req = IP(src=cli, dst=srv, tos=tos) / ICMP(type=8, id=ident, seq=i) / data
            rep = IP(src=srv, dst=cli, tos=tos) / ICMP(type=0, id=ident, seq=i) / data
        b.add(t + i * 0.5, req)
        b.add(t + i * 0.5 + 0.001, rep, False)


def build(start, with_vlans=True):
    rng = random.Random(20240102)
    b = Builder(start, rng)

    # IPv4 TCP: 8 connections, 16 uniflows.
    for i in range(8):
        tcp_connection(b, 0.10 + i * 0.37, False, f"10.0.0.{10 + i}", f"192.0.2.{1 + i % 3}",
                       40000 + i, (80, 443, 22)[i % 3], 1 + i % 3, 2 + i % 4)
    # IPv6 TCP: 4 connections, 8 uniflows.
    for i in range(4):
        tcp_connection(b, 0.25 + i * 0.61, True, f"2001:db8:a::{10 + i}", f"2001:db8:b::{1 + i % 2}",
                       50000 + i, (443, 8080)[i % 2], 2, 3)
    # IPv4 UDP: 6 DNS exchanges (12 uniflows) and one one-way syslog stream (1 uniflow).
    for i in range(6):
        udp_exchange(b, 0.30 + i * 0.45, False, f"10.0.1.{20 + i}", "192.0.2.53", 33000 + i, 53, 1 + i % 2)
    udp_exchange(b, 0.50, False, "10.0.1.99", "192.0.2.14", 514, 514, 5, one_way=True)
    # IPv6 UDP: 3 exchanges, 6 uniflows.
    for i in range(3):
        udp_exchange(b, 0.70 + i * 0.9, True, f"2001:db8:a::{40 + i}", "2001:db8:b::53", 34000 + i, 53, 2)
    # ICMP echo: 3 IPv4 sessions (6 uniflows, one with a TOS) and 2 IPv6 (4 uniflows).
    for i in range(3):
        ping(b, 0.15 + i * 0.8, False, f"10.0.2.{30 + i}", f"198.51.100.{1 + i}", 100 + i, 3,
             tos=0x28 if i == 1 else 0)
    for i in range(2):
        ping(b, 0.45 + i * 0.9, True, f"2001:db8:a::{60 + i}", f"2001:db8:c::{1 + i}", 200 + i, 2)
    # VLANs are part of the key: the same UDP exchange untagged, on 802.1Q VLAN
    # 100 and on QinQ 200/300 is three pairs of uniflows (6).
    for vlans in ((), (100,), (200, 300)) if with_vlans else ((),):
        udp_exchange(b, 2.9 + 0.01 * len(vlans), False, "10.0.3.1", "192.0.2.123", 40123, 123, 2, vlans=vlans)
    # ICMP destination unreachable (port) carrying the offending datagram: 1 uniflow.
    quoted = IP(src="10.0.1.20", dst="192.0.2.54") / UDP(sport=33333, dport=53) / b.payload(30)
    b.add(3.2, IP(src="192.0.2.54", dst="10.0.1.20") / ICMP(type=3, code=3) / quoted, False)
    # Two ARP frames: not IP, no flow.
    b.frames.append((round(0.05 * 1e6), len(b.frames), Ether(src=MAC_CLIENT, dst="ff:ff:ff:ff:ff:ff") /
                     ARP(op=1, hwsrc=MAC_CLIENT, psrc="10.0.0.10", pdst="10.0.0.1")))
    b.frames.append((round(0.051 * 1e6), len(b.frames), Ether(src=MAC_SERVER, dst=MAC_CLIENT) /
                     ARP(op=2, hwsrc=MAC_SERVER, psrc="10.0.0.1", hwdst=MAC_CLIENT, pdst="10.0.0.10")))
    for usec, _, f in b.frames:
        f.time = Decimal(start) + Decimal(usec) / 1000000

    b.frames.sort(key=lambda x: (x[0], x[1]))
    return [f for _, _, f in b.frames]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--start", type=int, default=DEFAULT_START,
                    help="epoch seconds of the capture start (default %(default)s)")
    ap.add_argument("--no-vlans", action="store_true",
                    help="leave out the VLAN-tagged copies (for peers that cannot parse QinQ)")
    args = ap.parse_args()
    frames = build(args.start, not args.no_vlans)
    wrpcap(args.out, frames)  # classic pcap, Ethernet, microsecond timestamps
    print(f"make_pcap: wrote {len(frames)} frames to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
