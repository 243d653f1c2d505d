#!/usr/bin/python3
"""Writes a deterministic Ethernet pcap of one traffic mix for the pcap-mode
benchmark (bench/bench.py --mix), beside make_bench_pcap.py's access-link
mix:

  dns  DNS over UDP from many clients to a few resolvers: each query from
       its own source port (one flow per direction and query), answers
       after 1-80 ms, 10 % never answered, so thousands of transactions are
       pending at once (the DNS enricher's worst case).
  udp  UDP bulk: --flows concurrent flows (client->server, no replies),
       their packets spread evenly over the span so that every flow stays
       alive (idle gaps well under the 15 s idle timeout) until the end.
       With --waves W, W such groups of --flows flows one after the other,
       each over its own --duration, 30 s of silence between them (longer
       than the idle timeout, so a wave's flows end before the next
       begins): W x --flows flows in all, --flows at a time.

  make_mix_pcap.py --mix dns|udp [-o OUT] [--packets N] [--flows N]
                   [--waves W] [--duration S] [--seed N]

Prints, like make_bench_pcap.py, one summary line to stderr:
packets= uniflows= connections= ipv6_connections= ip_octets= span_s=.
IPv4 only; IPv4 header checksums are correct, UDP checksums 0.
"""
import argparse
import random
import struct
import sys

WAVE_SILENCE_US = 30_000_000  # between --waves: twice the 15 s idle timeout
ETH = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"


def ip4_checksum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return 0xFFFF - s


def frame(ts_us, src, dst, sport, dport, payload, ident):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0x4000, 64, 17, 0, src, dst)
    h = h[:10] + struct.pack("!H", ip4_checksum(h)) + h[12:]
    pkt = ETH + h + udp
    if len(pkt) < 60:
        pkt += bytes(60 - len(pkt))
    return struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(pkt), len(pkt)) + pkt, 20 + len(udp)


def dns_name(rnd):
    labels = [f"h{rnd.randrange(100000)}", rnd.choice(["example", "test", "invalid"]), rnd.choice(["com", "net"])]
    return b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mix", choices=("dns", "udp"), required=True)
    ap.add_argument("-o", "--out", default="mix.pcap")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--flows", type=int, default=100_000, help="udp: concurrent flows")
    ap.add_argument("--waves", type=int, default=1, help="udp: groups of --flows flows one after the other")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of packet time (udp: of each wave)")
    ap.add_argument("--seed", type=int, default=20261207)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    dur_us = int(a.duration * 1e6)
    t0 = 1_700_000_000 * 1_000_000
    events = []  # (ts_us, src, dst, sport, dport, payload)
    uniflows = 0
    if a.mix == "dns":
        resolvers = [bytes([198, 51, 100, 1 + i]) for i in range(4)]
        queries = a.packets * 100 // 190  # 10 % unanswered: 1.9 packets a query
        port = 32768
        for i in range(queries):
            ts = i * dur_us // queries
            client = bytes([10, 2, (i >> 8) & 255 or 1, 1 + i % 200])
            server = resolvers[i % len(resolvers)]
            port = port + 1 if port < 60999 else 32768
            qid = rnd.getrandbits(16)
            name = dns_name(rnd)
            q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
            events.append((ts, client, server, port, 53, q))
            uniflows += 1
            if rnd.random() < 0.9:
                r = (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + name + struct.pack("!HH", 1, 1) +
                     struct.pack("!HHHIH4s", 0xC00C, 1, 1, 300, 4, bytes([192, 0, 2, 1 + i % 250])))
                events.append((ts + rnd.randrange(1000, 80000), server, client, 53, port, r))
                uniflows += 1
        events.sort(key=lambda e: e[0])
    else:
        per_flow = max(1, a.packets // (a.flows * a.waves))
        gap = dur_us // per_flow
        payload = bytes(64)
        for w in range(a.waves):
            start = w * (dur_us + WAVE_SILENCE_US)
            for k in range(per_flow):
                for f in range(a.flows):
                    ts = start + k * gap + f * gap // a.flows
                    g = w * a.flows + f
                    src = bytes([10, 3 + (g >> 16), (g >> 8) & 255, g & 255])
                    events.append((ts, src, bytes([203, 0, 113, 1 + g % 250]), 10000 + g % 50000, 5001, payload))
        uniflows = a.flows * a.waves
    octets = 0
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out = []
        for n, (ts, src, dst, sp, dp, pl) in enumerate(events):
            rec, iplen = frame(t0 + ts, src, dst, sp, dp, pl, n & 0xFFFF)
            octets += iplen
            out.append(rec)
            if len(out) >= 8192:
                f.write(b"".join(out))
                out.clear()
        f.write(b"".join(out))
    span = (events[-1][0] - events[0][0]) / 1e6
    print(f"make_mix_pcap: wrote {a.out} ({a.mix}): packets={len(events)} uniflows={uniflows} "
          f"connections={uniflows} ipv6_connections=0 ip_octets={octets} span_s={span:.3f} seed={a.seed}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
