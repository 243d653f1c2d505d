"""Golden cases for bpfix-exporter: pcap recipes (scapy) + exact expected
flow records, written by hand from docs/flow-semantics.md.

Every octet count below is an IP length (IPv4 Total Length, or IPv6 Payload
Length + 40) worked out by hand in the comments; Ethernet frames are padded
to 60 bytes like on the wire, so the link-layer length never equals the
expected count by accident. Times are offsets in seconds from T0
(1700000000.000000); flowStart/EndMilliseconds are truncated to ms.

`python3 cases.py --list` lists the cases; `selfcheck.py` cross-checks these
literal expectations against an independent reference model of the rules.
"""

import struct
import sys
import warnings

warnings.filterwarnings("ignore")
import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
logging.getLogger("scapy.loading").setLevel(logging.ERROR)

from scapy.all import (ARP, Dot1AD, Dot1Q, Dot3, Ether, GRE, ICMP, IP, LLC,  # noqa: E402
                       IPerror, IPOption_Router_Alert, IPOption_RR, Raw, SCTP,
                       SCTPChunkInit, STP, TCP, UDP, UDPerror, CookedLinux,
                       fragment, conf)
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,  # noqa: E402
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS,
                                ICMPv6NDOptSrcLLAddr, ICMPv6MLReport2,
                                RouterAlert, Jumbo, fragment6)

from golden_lib import (Case, Frame, Rec, ns,  # noqa: E402
                        LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2)

conf.verb = 0

MAC_C = "02:00:00:00:00:01"
MAC_S = "02:00:00:00:00:02"

# TCP flag values
F, S, R, P, A, U, E, C, N = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100


def pad60(b):
    return b + b"\x00" * (60 - len(b)) if len(b) < 60 else b


def eth(l3, tags=(), src=MAC_C, dst=MAC_S):
    """Ethernet frame (padded to 60 bytes) around an IP packet or bytes.
    tags: list of ("ad"|"q", vid, prio) outermost first."""
    p = Ether(src=src, dst=dst)
    for kind, vid, prio in tags:
        p = p / (Dot1AD(vlan=vid, prio=prio) if kind == "ad" else Dot1Q(vlan=vid, prio=prio))
    return pad60(bytes(p / l3))


def q(vid, prio=0):
    return ("q", vid, prio)


def ad(vid, prio=0):
    return ("ad", vid, prio)


def v4(src, dst, **kw):
    kw.setdefault("id", 1)
    return IP(src=src, dst=dst, **kw)


def v6(src, dst, **kw):
    return IPv6(src=src, dst=dst, **kw)


def tcp(sport, dport, flags, payload=0, **kw):
    p = TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=2000 if flags & A else 0,
            window=65535, **kw)
    return p / Raw(b"d" * payload) if payload else p


def udp(sport, dport, payload=0):
    p = UDP(sport=sport, dport=dport)
    return p / Raw(b"u" * payload) if payload else p


class FB:
    """Frame list builder."""

    def __init__(self):
        self.frames = []

    def add(self, t, data, origlen=None, caplen=None):
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        data = bytes(data)
        if caplen is not None:
            if origlen is None:
                origlen = len(data)
            data = data[:caplen]
        self.frames.append(Frame(ns(t), data, origlen))
        return self


# ---------------------------------------------------------------------------

def case_tcp_fin_linger():
    c, s = "10.1.0.1", "10.1.0.2"
    b = FB()
    # defaults: idle 15 s, active 60 s, tcp_end_linger 2 s
    b.add(0.000, eth(v4(c, s) / tcp(40000, 80, S)))           # 40
    b.add(0.010, eth(v4(s, c) / tcp(80, 40000, S | A)))       # 40
    b.add(0.020, eth(v4(c, s) / tcp(40000, 80, A)))           # 40
    b.add(0.030, eth(v4(c, s) / tcp(40000, 80, P | A, 100)))  # 140
    b.add(0.040, eth(v4(s, c) / tcp(80, 40000, A)))           # 40
    b.add(0.050, eth(v4(s, c) / tcp(80, 40000, P | A, 1000)))  # 1040
    b.add(0.060, eth(v4(c, s) / tcp(40000, 80, A)))           # 40
    b.add(0.070, eth(v4(c, s) / tcp(40000, 80, F | A)))       # 40 client FIN
    b.add(0.500, eth(v4(s, c) / tcp(80, 40000, F | A)))       # 40 server FIN
    b.add(1.000, eth(v4(c, s) / tcp(40000, 80, A)))           # 40 last ACK, 0.93 s after FIN
    # clock moves past the linger (but not the idle timeout)
    b.add(8.000, eth(v4("10.1.0.9", "10.1.0.10") / udp(9999, 9999, 10)))  # 38
    # a late segment on the closed 5-tuple opens a new record
    b.add(9.000, eth(v4(c, s) / tcp(40000, 80, A)))           # 40
    exp = [
        Rec(c, s, 6, 6, 340, 0.000, 1.000, 3, 40000, 80, S | A | P | F),
        Rec(s, c, 6, 4, 1160, 0.010, 0.500, 3, 80, 40000, S | A | P | F),
        Rec("10.1.0.9", "10.1.0.10", 17, 1, 38, 8.0, 8.0, 4, 9999, 9999),
        Rec(c, s, 6, 1, 40, 9.0, 9.0, 4, 40000, 80, A),
    ]
    return Case("tcp_fin_linger", "TCP SYN..FIN both ways, last ACK within the "
                "default 2 s linger lands in the record; linger expiry ends it (3)",
                b.frames, exp)


def case_tcp_rst():
    c, s = "10.1.1.1", "10.1.1.2"
    mss = [("MSS", 1460)]
    b = FB()
    b.add(0.000, eth(v4(c, s) / tcp(40001, 443, S, options=mss)))      # 44
    b.add(0.010, eth(v4(s, c) / tcp(443, 40001, S | A, options=mss)))  # 44
    b.add(0.020, eth(v4(c, s) / tcp(40001, 443, A)))                   # 40
    b.add(0.030, eth(v4(c, s) / tcp(40001, 443, P | A, 200)))          # 240
    b.add(0.040, eth(v4(s, c) / tcp(443, 40001, R | A)))               # 40 ends s->c at once
    b.add(0.050, eth(v4(c, s) / tcp(40001, 443, P | A, 10)))           # 50
    b.add(0.060, eth(v4(s, c) / tcp(443, 40001, R)))                   # 40 new record, ends at once
    exp = [
        Rec(c, s, 6, 4, 374, 0.000, 0.050, 4, 40001, 443, S | A | P),
        Rec(s, c, 6, 2, 84, 0.010, 0.040, 3, 443, 40001, S | A | R),
        Rec(s, c, 6, 1, 40, 0.060, 0.060, 3, 443, 40001, R),
    ]
    return Case("tcp_rst", "RST ends its record at once (counted in it), reason 3",
                b.frames, exp)


def case_udp_flows():
    a, d = "10.1.2.1", "10.1.2.53"
    b = FB()
    b.add(0.000999, eth(v4(a, d, tos=0x20) / udp(33333, 53, 30)))  # 58
    b.add(0.001500, eth(v4(d, a) / udp(53, 33333, 120)))           # 148
    b.add(0.002999, eth(v4(a, d, tos=0x00) / udp(33333, 53, 31)))  # 59
    b.add(0.003000, eth(v4(d, a, tos=0x04) / udp(53, 33333, 200)))  # 228
    b.add(0.100000, eth(v4(a, d, tos=0xb8) / udp(33334, 53, 40)))  # 68
    b.add(0.200000, eth(v4(a, d) / udp(5000, 5001)))               # 28 (empty payload)
    exp = [
        Rec(a, d, 17, 2, 117, 0.000999, 0.002999, 4, 33333, 53, tos=0x20),
        Rec(d, a, 17, 2, 376, 0.0015, 0.003, 4, 53, 33333),
        Rec(a, d, 17, 1, 68, 0.1, 0.1, 4, 33334, 53, tos=0xb8),
        Rec(a, d, 17, 1, 28, 0.2, 0.2, 4, 5000, 5001),
    ]
    return Case("udp_flows", "UDP uniflows; TOS of the first packet; ms truncation",
                b.frames, exp)


def case_icmp_echo_v4():
    a, d = "10.1.3.1", "10.1.3.2"
    b = FB()
    for k in range(3):
        b.add(k + 0.000, eth(v4(a, d) / ICMP(type=8, id=0x1234, seq=k + 1) / Raw(b"p" * 56)))  # 84
        b.add(k + 0.001, eth(v4(d, a) / ICMP(type=0, id=0x1234, seq=k + 1) / Raw(b"p" * 56)))  # 84
    # port unreachable quoting a UDP header: 20 + 8 + 20 + 8 = 56; no ports taken from the quote
    b.add(3.0, eth(v4(d, a) / ICMP(type=3, code=3) / IPerror(src=a, dst=d, id=7)
                   / UDPerror(sport=40000, dport=33434)))
    exp = [
        Rec(a, d, 1, 3, 252, 0.0, 2.0, 4, icmp=0x0800),
        Rec(d, a, 1, 3, 252, 0.001, 2.001, 4, icmp=0x0000),
        Rec(d, a, 1, 1, 56, 3.0, 3.0, 4, icmp=0x0303),
    ]
    return Case("icmp_echo_v4", "ICMP echo request/reply + port unreachable: "
                "type-code in the key, ports 0", b.frames, exp)


def case_icmpv6_echo():
    a, d = "2001:db8:3::1", "2001:db8:3::2"
    b = FB()
    for k in range(2):
        b.add(k + 0.0, eth(v6(a, d) / ICMPv6EchoRequest(id=7, seq=k, data=b"q" * 56)))    # 40+64
        b.add(k + 0.0005, eth(v6(d, a) / ICMPv6EchoReply(id=7, seq=k, data=b"q" * 56)))  # 104
    # neighbour solicitation: 40 + 24 + 8 = 72
    b.add(0.5, eth(v6(a, "ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=d)
                   / ICMPv6NDOptSrcLLAddr(lladdr=MAC_C)))
    exp = [
        Rec(a, d, 58, 2, 208, 0.0, 1.0, 4, icmp=0x8000),
        Rec(d, a, 58, 2, 208, 0.0005, 1.0005, 4, icmp=0x8100),
        Rec(a, "ff02::1:ff00:2", 58, 1, 72, 0.5, 0.5, 4, icmp=0x8700),
    ]
    return Case("icmpv6_echo", "ICMPv6 echo request/reply + NS: icmpTypeCodeIPv6",
                b.frames, exp)


def case_ipv6_tcp():
    c, s = "2001:db8:4::10", "2001:db8:4::20"
    b = FB()
    b.add(0.000, eth(v6(c, s) / tcp(50000, 22, S | E | C)))            # 60
    b.add(0.010, eth(v6(s, c, tc=0x10) / tcp(22, 50000, S | A | E)))   # 60
    b.add(0.020, eth(v6(c, s) / tcp(50000, 22, A)))                    # 60
    b.add(0.030, eth(v6(c, s) / tcp(50000, 22, N | P | A, 50)))        # 110, NS bit
    b.add(0.040, eth(v6(s, c) / tcp(22, 50000, P | A, 500)))           # 560
    b.add(0.050, eth(v6(c, s) / tcp(50000, 22, A)))                    # 60
    exp = [
        # N is metered but not exported: tcpControlBits goes out as one
        # octet, the TCP header's flags byte (docs/fields.md)
        Rec(c, s, 6, 4, 290, 0.0, 0.05, 4, 50000, 22, S | E | C | A | P),
        Rec(s, c, 6, 2, 620, 0.01, 0.04, 4, 22, 50000, S | A | E | P, tos=0x10),
    ]
    return Case("ipv6_tcp", "IPv6 TCP; ECE/CWR in tcpControlBits, NS (0x100) not exported; "
                "traffic class", b.frames, exp)


def case_vlan_dot1q():
    a, d = "10.1.5.1", "10.1.5.2"
    a6, d6 = "2001:db8:5::1", "2001:db8:5::2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / udp(1000, 2000, 20), [q(100, prio=5)]))  # 48, PCP set
    b.add(0.5, eth(v4(d, a) / udp(2000, 1000, 20), [q(100)]))          # 48
    b.add(1.0, eth(v4(a, d) / udp(1000, 2000, 20), [q(100, prio=5)]))  # 48
    b.add(1.5, eth(v6(a6, d6) / udp(1000, 2000, 20), [q(101)]))        # 40+28 = 68
    exp = [
        Rec(a, d, 17, 2, 96, 0.0, 1.0, 4, 1000, 2000, vlan=100),
        Rec(d, a, 17, 1, 48, 0.5, 0.5, 4, 2000, 1000, vlan=100),
        Rec(a6, d6, 17, 1, 68, 1.5, 1.5, 4, 1000, 2000, vlan=101),
    ]
    return Case("vlan_dot1q", "802.1Q tag (with PCP bits) -> vlanId, v4 and v6",
                b.frames, exp)


def case_qinq():
    a, d = "10.1.6.1", "10.1.6.2"
    a6, d6 = "2001:db8:6::1", "2001:db8:6::2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / tcp(1234, 80, S), [ad(200, 3), q(300, 1)]))   # 40
    b.add(0.1, eth(v4(a, d) / tcp(1234, 80, A, 60), [ad(200), q(300)]))     # 100
    b.add(0.2, eth(v6(a6, d6) / udp(53, 53, 12), [ad(200), q(300)]))        # 60
    exp = [
        Rec(a, d, 6, 2, 140, 0.0, 0.1, 4, 1234, 80, S | A, vlan=200, cvlan=300),
        Rec(a6, d6, 17, 1, 60, 0.2, 0.2, 4, 53, 53, vlan=200, cvlan=300),
    ]
    return Case("qinq", "QinQ: 0x88a8 outer tag -> vlanId, 0x8100 inner -> "
                "dot1qCustomerVlanId", b.frames, exp)


def case_vlan_separates_flows():
    a, d = "10.1.7.1", "10.1.7.2"
    pkt = lambda: v4(a, d) / udp(7000, 7001, 12)   # 40
    b = FB()
    b.add(0.0, eth(pkt()))
    b.add(0.1, eth(pkt(), [q(10)]))
    b.add(0.2, eth(pkt(), [q(10)]))
    b.add(0.3, eth(pkt(), [q(20)]))
    b.add(0.4, eth(pkt(), [ad(10), q(20)]))
    b.add(0.5, eth(pkt(), [ad(10), q(21)]))
    b.add(0.6, eth(pkt(), [ad(20), q(10)]))
    r = lambda n, t0, t1, vl, cv: Rec(a, d, 17, n, 40 * n, t0, t1, 4, 7000, 7001,
                                      vlan=vl, cvlan=cv)
    exp = [r(1, 0.0, 0.0, 0, 0), r(2, 0.1, 0.2, 10, 0), r(1, 0.3, 0.3, 20, 0),
           r(1, 0.4, 0.4, 10, 20), r(1, 0.5, 0.5, 10, 21), r(1, 0.6, 0.6, 20, 10)]
    return Case("vlan_separates_flows", "same 5-tuple, different VLAN ids / "
                "tag stacks -> separate flows", b.frames, exp)


def case_ipv4_options():
    a, d = "10.1.8.1", "10.1.8.2"
    # Router Alert (4) + Record Route with 2 slots (11) + EOL pad (1): IHL 9 = 36 bytes
    opts = lambda: [IPOption_Router_Alert(), IPOption_RR(routers=["10.9.9.9", "0.0.0.0"])]
    b = FB()
    b.add(0.0, eth(v4(a, d, options=opts()) / tcp(1234, 80, P | A, 10)))   # 36+20+10 = 66
    b.add(0.5, eth(v4(a, d, options=opts()) / tcp(1234, 80, A)))           # 56
    b.add(0.6, eth(v4(a, d, options=[IPOption_Router_Alert()]) / udp(53, 5353, 0)))  # 24+8 = 32
    exp = [
        Rec(a, d, 6, 2, 122, 0.0, 0.5, 4, 1234, 80, P | A),
        Rec(a, d, 17, 1, 32, 0.6, 0.6, 4, 53, 5353),
    ]
    return Case("ipv4_options", "IPv4 header options: ports read after IHL*4",
                b.frames, exp)


def case_ipv6_ext_headers():
    a, d = "2001:db8:9::1", "2001:db8:9::2"
    b = FB()
    # HBH (8) + DestOpt (8) + TCP (20): plen 36 -> 76
    b.add(0.0, eth(v6(a, d) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / tcp(40000, 443, S)))
    # + 100 payload -> 176
    b.add(0.1, eth(v6(a, d) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
                   / tcp(40000, 443, P | A, 100)))
    # HBH (8) + Routing type 0 with 1 address (24) + DestOpt (8) + UDP 8 + 8: plen 56 -> 96
    b.add(0.2, eth(v6(a, d) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8:9::99"])
                   / IPv6ExtHdrDestOpt() / udp(5000, 5001, 8)))
    # MLDv2 report behind a HBH router alert: 8 + 8 -> 56
    b.add(0.3, eth(v6(a, "ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()])
                   / ICMPv6MLReport2()))
    exp = [
        Rec(a, d, 6, 2, 252, 0.0, 0.1, 4, 40000, 443, S | P | A),
        Rec(a, d, 17, 1, 96, 0.2, 0.2, 4, 5000, 5001),
        Rec(a, "ff02::16", 58, 1, 56, 0.3, 0.3, 4, icmp=0x8f00),
    ]
    return Case("ipv6_ext_headers", "IPv6 extension header chains before "
                "TCP/UDP/ICMPv6: protocol is the upper layer", b.frames, exp)


def case_ipv4_fragments():
    a, d = "10.1.10.1", "10.1.10.2"
    dg = lambda ident: fragment(v4(a, d, id=ident) / udp(5555, 6666, 3000), 1480)
    d1, d2, d3 = dg(0x4242), dg(0x4343), dg(0x4444)   # each: 1500, 1500, 68
    b = FB()
    b.add(0.000, eth(d1[0]))
    b.add(0.001, eth(d1[1]))
    b.add(0.002, eth(d1[2]))
    # first fragment lost: the others go to ports 0
    b.add(1.000, eth(d2[1]))
    b.add(1.001, eth(d2[2]))
    # out of order: last fragment before the first -> ports 0; the middle one after -> ported
    b.add(2.000, eth(d3[2]))
    b.add(2.001, eth(d3[0]))
    b.add(2.002, eth(d3[1]))
    # a TCP non-first fragment with the same id as d1: other protocol, ports 0
    b.add(3.000, eth(v4(a, d, id=0x4242, proto=6, frag=185) / Raw(b"t" * 100)))  # 120
    exp = [
        Rec(a, d, 17, 5, 6068, 0.0, 2.002, 4, 5555, 6666),
        Rec(a, d, 17, 3, 1636, 1.0, 2.0, 4, 0, 0),
        Rec(a, d, 6, 1, 120, 3.0, 3.0, 4, 0, 0),
    ]
    return Case("ipv4_fragments", "IPv4 fragments: non-first counted in the first's "
                "flow; without a prior first fragment -> ports 0", b.frames, exp)


def case_ipv4_fragment_memory():
    a, d = "10.1.11.1", "10.1.11.2"
    dg = lambda ident: fragment(v4(a, d, id=ident) / udp(7777, 8888, 2000), 1480)  # 1500, 548
    d1, d2 = dg(0x5151), dg(0x5252)
    b = FB()
    b.add(0.0, eth(d1[0]))
    b.add(40.0, eth(d1[1]))   # 40 s later: the 30 s memory has gone -> ports 0
    b.add(41.0, eth(d2[0]))
    b.add(70.0, eth(d2[1]))   # 29 s later: still remembered
    exp = [
        Rec(a, d, 17, 3, 3548, 0.0, 70.0, 4, 7777, 8888),
        Rec(a, d, 17, 1, 548, 40.0, 40.0, 4, 0, 0),
    ]
    return Case("ipv4_fragment_memory", "first-fragment ports are remembered "
                "30 s of packet time", b.frames, exp,
                args=["--idle-timeout", "100", "--active-timeout", "300"])


def case_ipv6_fragments():
    a, d = "2001:db8:12::1", "2001:db8:12::2"
    dg = lambda ident: fragment6(v6(a, d) / IPv6ExtHdrFragment(id=ident)
                                 / udp(5000, 6000, 3000), 1280)   # 1280, 1280, 592
    d1, d2 = dg(0x1111), dg(0x2222)
    b = FB()
    b.add(0.000, eth(d1[0]))
    b.add(0.001, eth(d1[1]))
    b.add(0.002, eth(d1[2]))
    b.add(1.000, eth(d2[1]))   # first never seen -> ports 0
    # atomic fragment (offset 0, M 0) carrying a whole TCP SYN: 40 + 8 + 20 = 68
    b.add(1.5, eth(v6(a, d) / IPv6ExtHdrFragment(id=0x3333, offset=0, m=0) / tcp(1111, 2222, S)))
    exp = [
        Rec(a, d, 17, 3, 3152, 0.0, 0.002, 4, 5000, 6000),
        Rec(a, d, 17, 1, 1280, 1.0, 1.0, 4, 0, 0),
        Rec(a, d, 6, 1, 68, 1.5, 1.5, 4, 1111, 2222, S),
    ]
    return Case("ipv6_fragments", "IPv6 fragment headers: protocol is the upper "
                "layer, non-first fragments follow the first", b.frames, exp)


def case_idle_timeout():
    a, d, c1, c2 = "10.1.13.1", "10.1.13.2", "10.1.13.3", "10.1.13.4"
    b = FB()
    p_ad = lambda: eth(v4(a, d) / udp(1000, 2000, 100))   # 128
    p_da = lambda: eth(v4(d, a) / udp(2000, 1000, 100))   # 128
    b.add(0.0, p_ad())
    b.add(0.5, p_da())
    b.add(1.0, p_ad())
    b.add(1.0, eth(v4(c1, c2) / udp(3000, 4000, 0)))      # 28, never seen again
    b.add(2.0, p_ad())
    b.add(5.5, p_da())      # exactly idle (5.0 s) after 0.5: >= idle -> new record
    b.add(9.0, p_ad())      # 7 s gap -> new record
    b.add(10.0, p_ad())
    b.add(10.499, p_da())   # 4.999 s after 5.5: same record
    exp = [
        Rec(a, d, 17, 3, 384, 0.0, 2.0, 1, 1000, 2000),
        Rec(a, d, 17, 2, 256, 9.0, 10.0, 4, 1000, 2000),
        Rec(d, a, 17, 1, 128, 0.5, 0.5, 1, 2000, 1000),
        Rec(d, a, 17, 2, 256, 5.5, 10.499, 4, 2000, 1000),
        Rec(c1, c2, 17, 1, 28, 1.0, 1.0, 1, 3000, 4000),
    ]
    return Case("idle_timeout", "idle timeout 5 s splits flows (>= idle, clock "
                "driven by any packet)", b.frames, exp,
                args=["--idle-timeout", "5", "--active-timeout", "60"])


def case_active_timeout():
    a, d = "10.1.14.1", "10.1.14.2"
    c, s = "10.1.14.3", "10.1.14.4"
    b = FB()
    frames = []
    for k in range(50):                       # UDP every 0.7 s, 100 octets each
        frames.append((k * 0.7, eth(v4(a, d) / udp(3000, 4000, 72))))
    for k in range(10):                       # TCP every 1.5 s from 0.2, 40 octets
        frames.append((0.2 + k * 1.5, eth(v4(c, s) / tcp(5000, 80, S if k == 0 else A))))
    for t, f in sorted(frames, key=lambda x: x[0]):
        b.add(t, f)
    u = lambda n, t0, t1, reason: Rec(a, d, 17, n, 100 * n, t0, t1, reason, 3000, 4000)
    exp = [
        u(15, 0.0, 9.8, 2),      # k 0..14; k=15 at 10.5 is due (10.5 >= 10)
        u(15, 10.5, 20.3, 2),    # k 15..29; k=30 at 21.0
        u(15, 21.0, 30.8, 2),    # k 30..44; k=45 at 31.5
        u(5, 31.5, 34.3, 4),     # k 45..49
        Rec(c, s, 6, 7, 280, 0.2, 9.2, 2, 5000, 80, S | A),   # k 0..6; k=7 at 10.7
        # k 7..9; no packet of its own after 13.7, but the UDP packet at 21.0
        # makes it due (21.0 - 10.7 >= 10) -> active, not end of input
        Rec(c, s, 6, 3, 120, 10.7, 13.7, 2, 5000, 80, A),     # flags restart per record
    ]
    return Case("active_timeout", "active timeout 10 s cuts long flows into "
                "several records (reason 2)", b.frames, exp,
                args=["--active-timeout", "10", "--idle-timeout", "30"])


def case_end_of_input():
    a, d = "10.1.15.1", "10.1.15.2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / udp(1, 2, 4)))                    # 32
    b.add(0.1, eth(v4(a, d) / tcp(3000, 80, S)))                # 40
    b.add(0.2, eth(v4(a, d) / tcp(3000, 80, P | A, 5)))         # 45
    b.add(0.3, eth(v4(a, d) / tcp(3001, 80, S)))                # 40
    b.add(0.4, eth(v4(a, d) / tcp(3001, 80, F | A)))            # 40
    b.add(0.5, eth(v4(a, d) / ICMP(type=8, id=1, seq=1)))       # 28
    exp = [
        Rec(a, d, 17, 1, 32, 0.0, 0.0, 4, 1, 2),
        Rec(a, d, 6, 2, 85, 0.1, 0.2, 4, 3000, 80, S | P | A),
        Rec(a, d, 6, 2, 80, 0.3, 0.4, 3, 3001, 80, S | F | A),   # saw FIN -> 3
        Rec(a, d, 1, 1, 28, 0.5, 0.5, 4, icmp=0x0800),
    ]
    return Case("end_of_input", "end of pcap: open flows end with 4, flows that "
                "saw FIN with 3", b.frames, exp)


def case_syn_after_fin():
    c, s = "10.1.16.1", "10.1.16.2"
    b = FB()
    b.add(0.000, eth(v4(c, s) / tcp(45000, 8080, S)))
    b.add(0.010, eth(v4(s, c) / tcp(8080, 45000, S | A)))
    b.add(0.020, eth(v4(c, s) / tcp(45000, 8080, A)))
    b.add(0.030, eth(v4(c, s) / tcp(45000, 8080, F | A)))
    b.add(0.040, eth(v4(s, c) / tcp(8080, 45000, F | A)))
    b.add(0.050, eth(v4(c, s) / tcp(45000, 8080, A)))
    b.add(0.500, eth(v4(c, s) / tcp(45000, 8080, S)))          # SYN w/o ACK after FIN: new record
    b.add(0.510, eth(v4(s, c) / tcp(8080, 45000, S | A)))      # SYN+ACK: not a reopen, same record
    b.add(0.520, eth(v4(c, s) / tcp(45000, 8080, A)))
    b.add(0.530, eth(v4(c, s) / tcp(45000, 8080, P | A, 60)))  # 100
    exp = [
        Rec(c, s, 6, 4, 160, 0.0, 0.05, 3, 45000, 8080, S | A | F),
        Rec(c, s, 6, 3, 180, 0.5, 0.53, 4, 45000, 8080, S | A | P),
        Rec(s, c, 6, 3, 120, 0.01, 0.51, 3, 8080, 45000, S | A | F),
    ]
    return Case("syn_after_fin", "a SYN without ACK on a flow that saw FIN ends "
                "the old record (3) and opens a new one", b.frames, exp,
                args=["--tcp-end-linger", "5"])


def case_fin_flow_timers():
    """Idle/active timeouts that fire while a flow that saw FIN lingers.
    docs/flow-semantics.md lists idle -> 1 and active -> 2 as due-checks and
    only carves FIN flows out of the end-of-input rule (4 -> 3), so a FIN
    flow cut by the active or idle timeout before its linger passed ends
    with 2 or 1."""
    c1, s1, c2, s2 = "10.1.26.1", "10.1.26.2", "10.1.26.3", "10.1.26.4"
    u, w = "10.1.26.5", "10.1.26.6"
    b = FB()
    b.add(0.0, eth(v4(c1, s1) / tcp(1000, 80, S)))
    b.add(1.0, eth(v4(c1, s1) / tcp(1000, 80, A)))
    b.add(2.0, eth(v4(c1, s1) / tcp(1000, 80, A)))
    b.add(3.0, eth(v4(c1, s1) / tcp(1000, 80, A)))
    b.add(4.0, eth(v4(c1, s1) / tcp(1000, 80, F | A)))   # FIN: linger 10 s
    b.add(4.5, eth(v4(c1, s1) / tcp(1000, 80, A)))
    b.add(5.2, eth(v4(u, w) / udp(1, 1, 10)))            # 38; F1: 5.2 - 0.0 >= 5 -> active
    b.add(6.0, eth(v4(c2, s2) / tcp(1001, 80, S)))
    b.add(6.5, eth(v4(c2, s2) / tcp(1001, 80, F | A)))   # FIN: linger 10 s
    b.add(9.8, eth(v4(u, w) / udp(2, 2, 10)))            # 38; F2: 9.8 - 6.5 >= 3 -> idle
    exp = [
        Rec(c1, s1, 6, 6, 240, 0.0, 4.5, 2, 1000, 80, S | A | F),
        Rec(c2, s2, 6, 2, 80, 6.0, 6.5, 1, 1001, 80, S | A | F),
        Rec(u, w, 17, 1, 38, 5.2, 5.2, 1, 1, 1),             # idle at 9.8 (4.6 >= 3)
        Rec(u, w, 17, 1, 38, 9.8, 9.8, 4, 2, 2),
    ]
    return Case("fin_flow_timers", "active (2) and idle (1) timeouts firing while "
                "a FIN flow lingers", b.frames, exp,
                args=["--idle-timeout", "3", "--active-timeout", "5",
                      "--tcp-end-linger", "10"])


def case_lack_of_resources():
    a, d = "10.1.25.1", "10.1.25.2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / udp(1, 1, 10)))            # A, 38
    b.add(0.1, eth(v4(a, d) / tcp(10, 20, F | A)))       # T, 40, saw FIN
    b.add(0.2, eth(v4(a, d) / udp(1, 1, 10)))            # A again: T is now the LRU
    b.add(0.3, eth(v4(a, d) / udp(3, 3, 10)))            # C: table full -> T ends (5)
    b.add(0.4, eth(v4(a, d) / udp(2, 2, 10)))            # B: table full -> A ends (5)
    exp = [
        Rec(a, d, 6, 1, 40, 0.1, 0.1, 5, 10, 20, F | A),
        Rec(a, d, 17, 2, 76, 0.0, 0.2, 5, 1, 1),
        Rec(a, d, 17, 1, 38, 0.3, 0.3, 4, 3, 3),
        Rec(a, d, 17, 1, 38, 0.4, 0.4, 4, 2, 2),
    ]
    return Case("lack_of_resources", "[flows] max_flows = 2: the least recently "
                "seen flow ends with 5 (even one that saw FIN)", b.frames, exp,
                config="[flows]\nmax_flows = 2\n")


def case_non_ip():
    a, d = "10.1.17.1", "10.1.17.2"
    b = FB()
    b.add(0.0, pad60(bytes(Ether(src=MAC_C, dst="ff:ff:ff:ff:ff:ff")
                           / ARP(op=1, hwsrc=MAC_C, psrc=a, pdst=d))))
    b.add(0.1, eth(v4(a, d) / udp(68, 67, 50)))                              # 78
    b.add(0.2, pad60(bytes(Ether(src=MAC_C, dst="01:80:c2:00:00:0e", type=0x88cc)
                           / Raw(bytes.fromhex("020702000000000001040305" + "0000")))))  # LLDP
    b.add(0.3, pad60(bytes(Ether(src=MAC_S, dst=MAC_C)
                           / ARP(op=2, hwsrc=MAC_S, psrc=d, hwdst=MAC_C, pdst=a))))
    b.add(0.4, pad60(bytes(Dot3(src=MAC_C, dst="01:80:c2:00:00:00") / LLC() / STP())))  # 802.3
    b.add(0.5, pad60(bytes(Ether(src=MAC_C, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=5)
                           / ARP(op=1, psrc=a, pdst=d))))
    exp = [Rec(a, d, 17, 1, 78, 0.1, 0.1, 4, 68, 67)]
    return Case("non_ip", "ARP, LLDP, 802.3/STP and tagged ARP: non_ip, not exported",
                b.frames, exp, non_ip=5)


def sll(proto, payload, pkttype=0):
    return bytes(CookedLinux(pkttype=pkttype, lladdrtype=1, lladdrlen=6,
                             src=bytes.fromhex("020000000001") + b"\0\0", proto=proto)) + bytes(payload)


def sll2(proto, payload, pkttype=0, ifindex=3):
    hdr = struct.pack("!HHIHBB8s", proto, 0, ifindex, 1, pkttype, 6,
                      bytes.fromhex("020000000001") + b"\0\0")
    return hdr + bytes(payload)


def case_linux_sll():
    a, d = "10.1.18.1", "10.1.18.2"
    a6, d6 = "2001:db8:18::1", "2001:db8:18::2"
    b = FB()
    b.add(0.0, sll(0x0800, v4(a, d) / udp(1111, 2222, 20)))                  # 48
    b.add(0.1, sll(0x0800, v4(a, d) / udp(1111, 2222, 20), pkttype=4))      # 48 (outgoing)
    b.add(0.2, sll(0x86DD, v6(a6, d6) / tcp(3333, 4444, S)))                # 60
    b.add(0.3, sll(0x0806, ARP(op=1, psrc=a, pdst=d)))                       # non-IP
    exp = [
        Rec(a, d, 17, 2, 96, 0.0, 0.1, 4, 1111, 2222),
        Rec(a6, d6, 6, 1, 60, 0.2, 0.2, 4, 3333, 4444, S),
    ]
    return Case("linux_sll", "Linux cooked capture (SLL, link type 113)",
                b.frames, exp, linktype=LINKTYPE_LINUX_SLL, non_ip=1)


def case_linux_sll2():
    a, d = "10.1.19.1", "10.1.19.2"
    a6, d6 = "2001:db8:19::1", "2001:db8:19::2"
    b = FB()
    b.add(0.0, sll2(0x0800, v4(a, d) / udp(1111, 2222, 20)))                 # 48
    b.add(0.1, sll2(0x86DD, v6(a6, d6) / udp(3333, 4444, 100)))             # 148
    b.add(0.2, sll2(0x0806, ARP(op=1, psrc=a, pdst=d)))                      # non-IP
    b.add(0.3, sll2(0x86DD, v6(a6, d6) / udp(3333, 4444, 0), pkttype=4))    # 48
    exp = [
        Rec(a, d, 17, 1, 48, 0.0, 0.0, 4, 1111, 2222),
        Rec(a6, d6, 17, 2, 196, 0.1, 0.3, 4, 3333, 4444),
    ]
    return Case("linux_sll2", "Linux cooked capture v2 (SLL2, link type 276)",
                b.frames, exp, linktype=LINKTYPE_LINUX_SLL2, non_ip=1)


def case_raw_ip():
    a, d = "10.1.20.1", "10.1.20.2"
    a6, d6 = "2001:db8:20::1", "2001:db8:20::2"
    b = FB()
    b.add(0.0, v4(a, d) / udp(1000, 53, 13))                   # 41
    b.add(0.1, v6(a6, d6) / tcp(2000, 443, S))                 # 60
    b.add(0.2, v4(d, a) / ICMP(type=0, id=9, seq=9))            # 28
    b.add(0.3, v4(a, d) / udp(1000, 53, 1))                    # 29
    exp = [
        Rec(a, d, 17, 2, 70, 0.0, 0.3, 4, 1000, 53),
        Rec(a6, d6, 6, 1, 60, 0.1, 0.1, 4, 2000, 443, S),
        Rec(d, a, 1, 1, 28, 0.2, 0.2, 4, icmp=0),
    ]
    return Case("raw_ip", "raw IP link type (101), IPv4 and IPv6 mixed",
                b.frames, exp, linktype=LINKTYPE_RAW)


def case_snaplen():
    a, d = "10.1.21.1", "10.1.21.2"
    a6, d6 = "2001:db8:21::1", "2001:db8:21::2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / tcp(1000, 80, P | A, 1400)), caplen=96)   # 1440, 96 captured
    b.add(0.1, eth(v4(a, d) / tcp(1000, 80, A, 500)), caplen=96)        # 540
    b.add(0.2, eth(v6(a6, d6) / udp(1000, 2000, 1000)), caplen=96)      # 1048
    exp = [
        Rec(a, d, 6, 2, 1980, 0.0, 0.1, 4, 1000, 80, P | A),
        Rec(a6, d6, 17, 1, 1048, 0.2, 0.2, 4, 1000, 2000),
    ]
    return Case("snaplen", "snaplen 96: headers complete, payload cut -> octets "
                "from the IP header, not the capture", b.frames, exp, snaplen=96)


def case_ipv6_jumbogram():
    a, d = "2001:db8:22::1", "2001:db8:22::2"
    # Payload Length 0 + HBH Jumbo Payload option (length 70016 = HBH 8 + UDP 8 + 70000)
    pkt = (v6(a, d, plen=0) / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70016)])
           / UDP(sport=4000, dport=4001, len=0) / Raw(b"j" * 32))
    b = FB()
    b.add(0.0, eth(pkt), origlen=14 + 40 + 70016)   # wire length 70070, captured 102
    b.add(0.1, eth(v6(a, d) / udp(4000, 4001, 10)))  # 58
    exp = [Rec(a, d, 17, 2, 70056 + 58, 0.0, 0.1, 4, 4000, 4001)]
    return Case("ipv6_jumbogram", "jumbogram: octets = wire length - link header",
                b.frames, exp)


def case_other_transports():
    a, d = "10.1.23.1", "10.1.23.2"
    b = FB()
    b.add(0.0, eth(v4(a, d) / SCTP(sport=2905, dport=2906) / SCTPChunkInit()))     # 52
    # UDP-Lite: ports, checksum coverage 8, checksum (not verified by anyone)
    b.add(0.1, eth(v4(a, d, proto=136) / Raw(struct.pack("!HHHH", 1500, 1501, 8, 0x1234)
                                             + b"l" * 12)))                          # UDP-Lite 40
    # DCCP-Data with 48-bit sequence number: generic header 16 bytes (data offset 4),
    # checksum 0x001a is the correct one (tshark verifies DCCP checksums)
    b.add(0.2, eth(v4(a, d, proto=33) / Raw(struct.pack("!HHBBHBBHI", 5004, 5005, 4, 0, 0x001a,
                                                        (2 << 1) | 1, 0, 0, 1)
                                            + b"c" * 8)))                            # DCCP 44
    b.add(0.3, eth(v4(a, d) / GRE() / v4("192.168.0.1", "192.168.0.2") / udp(1, 2)))  # 52
    b.add(0.4, eth(v4(a, d, proto=50) / Raw(b"\x00\x00\x10\x01" + b"e" * 28)))      # ESP 52
    b.add(0.5, eth(v6("2001:db8:23::1", "2001:db8:23::2", nh=59)))                  # 40
    exp = [
        Rec(a, d, 132, 1, 52, 0.0, 0.0, 4, 2905, 2906),
        Rec(a, d, 136, 1, 40, 0.1, 0.1, 4, 1500, 1501),
        Rec(a, d, 33, 1, 44, 0.2, 0.2, 4, 5004, 5005),
        Rec(a, d, 47, 1, 52, 0.3, 0.3, 4),
        Rec(a, d, 50, 1, 52, 0.4, 0.4, 4),
        Rec("2001:db8:23::1", "2001:db8:23::2", 59, 1, 40, 0.5, 0.5, 4),
    ]
    return Case("other_transports", "ports for SCTP/UDP-Lite/DCCP; GRE, ESP, "
                "IPv6 no-next-header -> ports 0", b.frames, exp)


def _simple_udp_case(name, desc, **kw):
    a, d = "10.1.24.1", "10.1.24.2"
    b = FB()
    b.add(0.000000123 if kw.get("nano") else 0.0, eth(v4(a, d) / udp(1, 2, 10)))   # 38
    b.add(1.999999999 if kw.get("nano") else 1.999999, eth(v4(a, d) / udp(1, 2, 10)))
    exp = [Rec(a, d, 17, 2, 76, 0.0, 1.999, 4, 1, 2)]
    return Case(name, desc, b.frames, exp, **kw)


def case_pcap_nanosecond():
    return _simple_udp_case("pcap_nanosecond", "nanosecond-resolution pcap "
                            "(magic a1b23c4d); ms truncated", nano=True)


def case_pcap_big_endian():
    return _simple_udp_case("pcap_big_endian", "big-endian pcap file header/records",
                            big_endian=True)


CASE_BUILDERS = [
    case_tcp_fin_linger, case_tcp_rst, case_udp_flows, case_icmp_echo_v4,
    case_icmpv6_echo, case_ipv6_tcp, case_vlan_dot1q, case_qinq,
    case_vlan_separates_flows, case_ipv4_options, case_ipv6_ext_headers,
    case_ipv4_fragments, case_ipv4_fragment_memory, case_ipv6_fragments,
    case_idle_timeout, case_active_timeout, case_end_of_input,
    case_syn_after_fin, case_fin_flow_timers, case_lack_of_resources, case_non_ip, case_linux_sll, case_linux_sll2,
    case_raw_ip, case_snaplen, case_ipv6_jumbogram, case_other_transports,
    case_pcap_nanosecond, case_pcap_big_endian,
]


def all_cases():
    cases = [f() for f in CASE_BUILDERS]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    return cases


if __name__ == "__main__":
    for c in all_cases():
        print("%-24s %3d frames %2d records  %s" % (c.name, len(c.frames),
                                                    len(c.expected), c.desc))
    sys.exit(0)
