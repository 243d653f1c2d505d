"""Malformed-input cases for bpfix-exporter (used by run_malformed.py).

exact_cases(): each pcap mixes a few valid packets (expected exactly, as flow
records) with frames of one malformed kind; the summary must report exactly
case.malformed (and case.non_ip).
fuzz_cases(): seeded random / mutated frames where only invariants are
checked (no crash, exit 0, frames = ip_packets + non_ip + malformed, records
add up to ip_packets/ip_octets, the marker flows are exported exactly).
"""

import random
import struct

from cases import (FB, eth, pad60, q, tcp, udp, v4, v6, A, P, S, MAC_C, MAC_S,
                   IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, ICMP, Raw)
from golden_lib import Case, Rec, LINKTYPE_RAW

VA, VB = "198.51.100.77", "198.51.100.78"        # marker (valid) flows
VA6, VB6 = "2001:db8:77::1", "2001:db8:77::2"


def eth_hdr(ethertype, src=MAC_C, dst=MAC_S):
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    return mac(dst) + mac(src) + struct.pack("!H", ethertype)


def add_valid(b, t0):
    """Five valid packets at t0 + 0.0/0.2/0.4/0.6/0.8 and their records."""
    b.add(t0 + 0.0, eth(v4(VA, VB) / udp(4000, 4001, 50)))               # 78
    b.add(t0 + 0.2, eth(v4(VB, VA) / tcp(443, 50000, S | A)))            # 40
    b.add(t0 + 0.4, eth(v4(VA, VB) / udp(4000, 4001, 60)))               # 88
    b.add(t0 + 0.6, eth(v6(VA6, VB6) / tcp(50001, 80, P | A, 100)))      # 160
    b.add(t0 + 0.8, eth(v4(VB, VA) / tcp(443, 50000, A)))                # 40
    return [
        Rec(VA, VB, 17, 2, 166, t0, t0 + 0.4, 4, 4000, 4001),
        Rec(VB, VA, 6, 2, 80, t0 + 0.2, t0 + 0.8, 4, 443, 50000, S | A),
        Rec(VA6, VB6, 6, 1, 160, t0 + 0.6, t0 + 0.6, 4, 50001, 80, P | A),
    ]


def interleave(bad_frames, t_start=0.05, step=0.01):
    """Valid packets at 0.0..0.8, bad frames spread from t_start on (< 1 s)."""
    b = FB()
    exp = add_valid(b, 0.0)
    for i, (data, origlen) in enumerate(bad_frames):
        b.add(t_start + i * step, data, origlen=origlen)
    b.frames.sort(key=lambda f: f.ts_ns)
    return b.frames, exp


def _case(name, desc, bad, **kw):
    frames, exp = interleave(bad, step=min(0.01, 0.9 / max(1, len(bad))))
    return Case(name, desc, frames, exp, malformed=kw.pop("malformed", len(bad)), **kw)


def m_short_frames():
    rng = random.Random(1001)
    bad = [(bytes(rng.randrange(256) for _ in range(n)), None)
           for n in [0] + [rng.randint(1, 13) for _ in range(19)]]
    return _case("short_frames", "20 random frames of 0..13 bytes (cut inside "
                 "the Ethernet header)", bad)


def _bad_version_frames(seed, ethertype, n, lo, hi):
    rng = random.Random(seed)
    bad_versions = [v for v in range(16) if v not in (4, 6)]
    out = []
    for _ in range(n):
        body = bytearray(rng.randrange(256) for _ in range(rng.randint(lo, hi)))
        body[0] = (rng.choice(bad_versions) << 4) | (body[0] & 15)
        out.append((pad60(eth_hdr(ethertype) + bytes(body)), None))
    return out


def m_ipv4_bad_version():
    return _case("ipv4_bad_version", "30 frames: ethertype 0x0800, random bytes, "
                 "IP version not 4/6", _bad_version_frames(1002, 0x0800, 30, 20, 80))


def m_ipv6_bad_version():
    return _case("ipv6_bad_version", "30 frames: ethertype 0x86dd, random bytes, "
                 "IP version not 4/6", _bad_version_frames(1003, 0x86DD, 30, 40, 100))


def m_version_mismatch():
    p6 = bytes(v6("2001:db8:99::1", "2001:db8:99::2") / udp(1, 2, 10))
    p4 = bytes(v4("192.0.2.1", "192.0.2.2") / udp(1, 2, 10))
    bad = [(pad60(eth_hdr(0x0800) + p6), None), (pad60(eth_hdr(0x86DD) + p4), None)]
    return _case("ip_version_mismatch", "ethertype 0x0800 carrying an IPv6 header "
                 "and 0x86dd carrying IPv4 (bad IP version)", bad)


def _cut(frame, caplen):
    return (frame[:caplen], len(frame))


def m_cut_ipv4_header():
    f = eth(v4("192.0.2.1", "192.0.2.2") / udp(1, 2, 32))                 # 74 bytes
    fo = eth(v4("192.0.2.1", "192.0.2.2", options=[b"\x01\x01\x01\x00"]) / udp(1, 2, 32))
    bad = [_cut(f, 14 + 10), _cut(f, 14 + 19), _cut(fo, 14 + 20)]
    return _case("cut_ipv4_header", "frames cut inside the IPv4 header (10, 19 "
                 "bytes; IHL 6 with the options cut)", bad)


def _transport_frames():
    return dict(
        t4=eth(v4("192.0.2.1", "192.0.2.2") / tcp(1000, 80, P | A, 100)),
        u4=eth(v4("192.0.2.1", "192.0.2.2") / udp(1000, 53, 100)),
        i4=eth(v4("192.0.2.1", "192.0.2.2") / ICMP(type=8) / Raw(b"x" * 56)),
        t6=eth(v6("2001:db8:99::1", "2001:db8:99::2") / tcp(1000, 80, P | A, 100)))


# One case per transport so that a count mismatch names the header kind.
# "Cut inside a header" (docs/flow-semantics.md) = fewer captured bytes than
# the fixed header: TCP 20, UDP 8, ICMP 8.

def m_cut_tcp_header():
    f = _transport_frames()["t4"]
    return _case("cut_tcp_header", "frames cut inside the TCP header (after 2, "
                 "10 and 16 of its 20 bytes)", [_cut(f, 34 + n) for n in (2, 10, 16)])


def m_cut_udp_header():
    f = _transport_frames()["u4"]
    return _case("cut_udp_header", "frames cut inside the UDP header (after 2, "
                 "4 and 6 of its 8 bytes)", [_cut(f, 34 + n) for n in (2, 4, 6)])


def m_cut_icmp_header():
    f = _transport_frames()["i4"]
    return _case("cut_icmp_header", "frames cut inside the ICMP header (after 1 "
                 "and 4 of its 8 bytes)", [_cut(f, 34 + n) for n in (1, 4)])


def m_cut_ipv6_tcp_header():
    f = _transport_frames()["t6"]
    return _case("cut_ipv6_tcp_header", "IPv6 frames cut inside the TCP header "
                 "(after 3 and 12 of its 20 bytes)", [_cut(f, 54 + n) for n in (3, 12)])


def m_ipv4_ihl_lt5():
    bad = []
    for ihl in (0, 1, 4):
        p = bytearray(bytes(v4("192.0.2.1", "192.0.2.2") / udp(1, 2, 20)))
        p[0] = 0x40 | ihl
        bad.append((pad60(eth_hdr(0x0800) + bytes(p)), None))
    return _case("ipv4_ihl_lt5", "IPv4 headers with IHL 0, 1, 4 (< 5)", bad)


def _destopt(nh, hdr_ext_len=0):
    """Destination options header: PadN filling (hdr_ext_len + 1) * 8 bytes."""
    size = (hdr_ext_len + 1) * 8
    return bytes([nh, hdr_ext_len, 1, size - 4]) + b"\x00" * (size - 4)


def _ipv6_hdr(plen, nh, src="2001:db8:99::1", dst="2001:db8:99::2"):
    return bytes(v6(src, dst, plen=plen, nh=nh))


def m_ipv6_chain_past_capture():
    u = bytes(udp(7, 9, 8))
    # (a) DO, DO, DO, UDP; capture cut in the middle of the 3rd DO (snaplen style)
    chain = _destopt(60) + _destopt(60) + _destopt(17) + u
    fa = eth_hdr(0x86DD) + _ipv6_hdr(len(chain), 60) + chain
    # (b) whole frame; the 2nd DO says another DO follows, but nothing follows
    chain_b = _destopt(60) + _destopt(60)
    fb = eth_hdr(0x86DD) + _ipv6_hdr(len(chain_b), 60) + chain_b
    # (c) whole frame; a DO claiming 256*8 bytes with 8 present
    fc = eth_hdr(0x86DD) + _ipv6_hdr(8, 60) + bytes([17, 255, 1, 4, 0, 0, 0, 0])
    bad = [(fa[:14 + 40 + 16 + 4], len(fa)), (fb, None), (fc, None)]
    return _case("ipv6_chain_past_capture", "IPv6 extension-header chains running "
                 "past the captured bytes (cut, never-ending, oversized)", bad)


def m_ipv6_chain_too_long():
    def chain_pkt(n, src="2001:db8:99::1"):
        hdrs = b"".join(_destopt(60) for _ in range(n - 1)) + _destopt(17)
        body = hdrs + bytes(udp(7, 9, 4))
        return eth_hdr(0x86DD) + _ipv6_hdr(len(body), 60, src=src) + body
    bad = [(chain_pkt(17), None), (chain_pkt(20), None)]
    frames, exp = interleave(bad)
    # exactly 16 extension headers is still fine: 40 + 16*8 + 8 + 4 = 180
    ok16 = chain_pkt(16, src=VA6)
    b = FB()
    b.add(0.9, ok16)
    frames = sorted(frames + b.frames, key=lambda f: f.ts_ns)
    exp.append(Rec(VA6, "2001:db8:99::2", 17, 1, 180, 0.9, 0.9, 4, 7, 9))
    return Case("ipv6_chain_too_long", "17 and 20 destination-options headers "
                "(> 16) -> malformed; 16 headers -> exported", frames, exp,
                malformed=2)


def m_truncated_file():
    frames, exp = interleave([])
    # one more record whose header says 100 captured bytes; only 30 are in the file
    f = eth(v4(VA, VB) / udp(4000, 4001, 58))                # 100 bytes
    rec_hdr = struct.pack("<IIII", 1_700_000_001, 0, 100, 100)
    return Case("truncated_file", "valid packets, then the file ends in the middle "
                "of a record (counted as 1 malformed frame)", frames, exp,
                trailer=rec_hdr + f[:30], malformed=1, frames_total=len(frames) + 1)


EXACT = [m_short_frames, m_ipv4_bad_version, m_ipv6_bad_version,
         m_version_mismatch, m_cut_ipv4_header, m_cut_tcp_header, m_cut_udp_header,
         m_cut_icmp_header, m_cut_ipv6_tcp_header,
         m_ipv4_ihl_lt5, m_ipv6_chain_past_capture, m_ipv6_chain_too_long,
         m_truncated_file]


def exact_cases():
    return [f() for f in EXACT]


# ---------------------------------------------------------------------------
# fuzz cases: only invariants are checked

MARKERS = [bytes([198, 51, 100, 77]), bytes([198, 51, 100, 78]),
           bytes.fromhex("20010db8007700000000000000000001"),
           bytes.fromhex("20010db8007700000000000000000002")]


def _no_marker(data):
    return not any(m in data for m in MARKERS)


def f_random_ip(n=400):
    rng = random.Random(2001)
    bad = []
    while len(bad) < n:
        v = rng.choice((4, 6))
        body = bytearray(rng.randrange(256) for _ in range(rng.randint(1, 160)))
        body[0] = (v << 4) | (body[0] & 15)
        if v == 4 and rng.random() < 0.7:
            body[0] = 0x45            # a plausible IHL so transport parsing gets exercised
        if v == 6 and len(body) > 6 and rng.random() < 0.5:
            body[6] = rng.choice((0, 43, 44, 60, 51, 6, 17, 58))
        data = eth_hdr(0x0800 if v == 4 else 0x86DD) + bytes(body)
        if _no_marker(data):
            bad.append((data, None))
    frames, exp = interleave(bad, step=0.9 / n)
    return Case("fuzz_random_ip", "%d frames: IP ethertype + version, random rest" % n,
                frames, exp)


def _templates():
    s, d = "203.0.113.1", "203.0.113.2"
    s6, d6 = "2001:db8:cc::1", "2001:db8:cc::2"
    return [
        eth(v4(s, d) / tcp(1000, 80, P | A, 40)),
        eth(v4(s, d, options=[b"\x94\x04\x00\x00"]) / udp(53, 53, 20)),
        eth(v4(s, d) / ICMP(type=8) / Raw(b"x" * 16), [q(12)]),
        eth(v6(s6, d6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / tcp(1, 2, S)),
        eth(v6(s6, d6) / udp(3, 4, 30), [("ad", 5, 0), q(6)]),
    ]


def f_mutated(n=600):
    rng = random.Random(2002)
    temps = _templates()
    bad = []
    while len(bad) < n:
        f = bytearray(rng.choice(temps))
        for _ in range(rng.randint(1, 4)):
            f[rng.randrange(12, len(f))] = rng.randrange(256)
        if rng.random() < 0.5:
            f = f[:rng.randint(0, len(f))]
        if _no_marker(bytes(f)):
            bad.append((bytes(f), None))
    frames, exp = interleave(bad, step=0.9 / n)
    return Case("fuzz_mutated", "%d valid frames with 1-4 random bytes changed, "
                "half of them also truncated" % n, frames, exp)


def f_raw_random(n=300):
    rng = random.Random(2003)
    frames = []
    for _ in range(n):
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 120)))
        if _no_marker(body):
            frames.append((body, None))
    b = FB()
    b.add(0.0, v4(VA, VB) / udp(4000, 4001, 50))       # 78
    b.add(0.5, v6(VA6, VB6) / udp(4000, 4001, 50))     # 98
    for i, (data, _o) in enumerate(frames):
        b.add(0.01 + i * 0.9 / n, data)
    b.frames.sort(key=lambda f: f.ts_ns)
    exp = [Rec(VA, VB, 17, 1, 78, 0.0, 0.0, 4, 4000, 4001),
           Rec(VA6, VB6, 17, 1, 98, 0.5, 0.5, 4, 4000, 4001)]
    return Case("fuzz_raw_ip", "%d random frames on the raw IP link type" % len(frames),
                b.frames, exp, linktype=LINKTYPE_RAW)


def f_random_ethernet(n=400):
    rng = random.Random(2004)
    bad = []
    while len(bad) < n:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        if _no_marker(data):
            bad.append((data, None))
    frames, exp = interleave(bad, step=0.9 / n)
    return Case("fuzz_random_ethernet", "%d frames of random bytes (0..200) on "
                "Ethernet" % n, frames, exp)


def fuzz_cases():
    return [f_random_ethernet(), f_random_ip(), f_mutated(), f_raw_random()]


def not_a_pcap_files():
    """(name, content or None for 'does not exist')"""
    return [("not-a-pcap.txt", b"this is not a pcap file, just text\n" * 20),
            ("empty.pcap", b""),
            ("missing.pcap", None)]
