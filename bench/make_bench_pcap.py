#!/usr/bin/python3
"""Writes a deterministic Ethernet pcap for the bpfix benchmark.

The traffic is synthetic but shaped like an access link: many tiny flows
(DNS, short TCP, pings, scans), fewer medium/large TCP transfers, a few UDP
streams and bulk transfers that live longer than the active timeout, and
some transfers that pause longer than the idle timeout. About 12 % of the
connections are IPv6. Frames are 60..1514 bytes (64..1518 on the wire with
the FCS), timestamps are sorted and advance over about --duration seconds
(a few long flows end a little later).

Every connection contributes two uniflows (one per direction), except scans
that got no answer (one). Counters in the summary are uniflows (distinct
keys), which is what a flow meter without timeouts would report.

Only the struct module is used (no scapy): 1M packets take ~10 s.
IPv4 header checksums are correct; TCP/UDP/ICMP checksums are left 0 (flow
meters do not check them).

Usage: make_bench_pcap.py [-o OUT] [--packets N] [--flows N] [--duration S]
                          [--seed N] [--snaplen N]
"""

import argparse
import random
import struct
import sys
import time

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

MAC_CLIENT_SIDE = bytes.fromhex("020000000001")
MAC_ROUTER = bytes.fromhex("020000000002")

# (name, weight) of the connection kinds; see make_conn().
KINDS = [
    ("dns", 35.0),
    ("ping", 3.0),
    ("scan", 2.0),
    ("tcp_short", 45.0),
    ("tcp_medium", 12.0),
    ("tcp_large", 2.0),
    ("udp_stream", 0.95),
    ("tcp_bulk", 0.05),
]

SERVER_TCP_PORTS = [443] * 12 + [80] * 4 + [22, 25, 993, 8080, 8443, 5222]
SERVER_UDP_PORTS = [443] * 6 + [123, 1194, 3478, 4500, 51820]


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


class Conn:
    __slots__ = ("v6", "proto", "hdr", "base", "sport", "dport", "seq", "ident", "tos", "icmp_id")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default="bench.pcap")
    ap.add_argument("--packets", type=int, default=1_000_000, help="at least this many packets")
    ap.add_argument("--flows", type=int, default=100_000, help="at least this many uniflows")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of packet time")
    ap.add_argument("--seed", type=int, default=20261101)
    ap.add_argument("--snaplen", type=int, default=65535,
                    help="capture length; less than 1514 writes truncated captures")
    ap.add_argument("--start", type=float, default=1_700_000_000.0, help="epoch of the first packet")
    args = ap.parse_args()

    t_begin = time.monotonic()
    rnd = random.Random(args.seed)
    dur_us = int(args.duration * 1e6)
    kind_names = [k for k, _ in KINDS]
    kind_weights = [w for _, w in KINDS]

    conns = []
    # events: (ts_us, conn index, direction 0=client->server 1=reply, tcp flags or icmp type,
    #          L4 payload length)
    events = []
    n_uniflows = 0
    kind_count = dict.fromkeys(kind_names, 0)
    n_v6 = 0
    client_port = {}

    def new_conn(v6, proto, client_ip, server_ip, sport, dport, tos):
        c = Conn()
        c.v6, c.proto, c.sport, c.dport, c.tos = v6, proto, sport, dport, tos
        c.seq = [rnd.getrandbits(32), rnd.getrandbits(32)]
        c.ident = [rnd.getrandbits(16), rnd.getrandbits(16)]
        c.icmp_id = rnd.getrandbits(16)
        # Per-direction constant header prefix: Ethernet + addresses.
        if v6:
            eth0 = MAC_ROUTER + MAC_CLIENT_SIDE + struct.pack("!H", ETH_IPV6)
            eth1 = MAC_CLIENT_SIDE + MAC_ROUTER + struct.pack("!H", ETH_IPV6)
            c.hdr = (eth0, client_ip + server_ip, eth1, server_ip + client_ip)
            c.base = None
        else:
            eth0 = MAC_ROUTER + MAC_CLIENT_SIDE + struct.pack("!H", ETH_IPV4)
            eth1 = MAC_CLIENT_SIDE + MAC_ROUTER + struct.pack("!H", ETH_IPV4)
            c.hdr = (eth0, client_ip + server_ip, eth1, server_ip + client_ip)
            # constant part of the IPv4 header checksum (ttl differs per direction)
            addr = sum(struct.unpack("!4H", client_ip + server_ip))
            common = (0x4500 | tos) + 0x4000 + addr
            c.base = (common + ((64 << 8) | proto), common + ((57 << 8) | proto))
        conns.append(c)
        return len(conns) - 1

    def pick_client(v6):
        h = rnd.randrange(20000)
        if v6:
            ip = bytes.fromhex("20010db8000c0000") + struct.pack("!Q", 0x1000 + h)
        else:
            ip = bytes([10, 1 + (h >> 16), (h >> 8) & 255, h & 255 or 1])
        return ip

    def ephemeral(ip):
        p = client_port.get(ip)
        if p is None:
            p = rnd.randrange(32768, 61000)
        p = p + 1 if p < 60999 else 32768
        client_port[ip] = p
        return p

    def pick_server(v6, pool):
        s = rnd.randrange(pool)
        if v6:
            return bytes.fromhex("20010db800050000") + struct.pack("!Q", 0x100 + s)
        if s < 250:
            return bytes([198, 51, 100, 1 + s])
        return bytes([203, 0, 113, 1 + (s - 250) % 254])

    def emit_times(start, n, gap_mean, pause_at=-1, pause_us=0):
        """n increasing timestamps starting at start."""
        ts = []
        t = start
        for i in range(n):
            if i == pause_at:
                t += pause_us
            ts.append(int(t))
            t += rnd.expovariate(1.0 / gap_mean) + 1
        return ts

    total_packets = 0
    while total_packets < args.packets or n_uniflows < args.flows:
        kind = rnd.choices(kind_names, kind_weights)[0]
        kind_count[kind] += 1
        v6 = rnd.random() < 0.12
        n_v6 += v6
        cip = pick_client(v6)
        rtt = int(10 ** rnd.uniform(3.0, 5.0))  # 1..100 ms in us
        pkts = []  # (direction, flags/type, payload length)

        if kind == "dns":
            proto, sport, dport = UDP, ephemeral(cip), 53
            sip = pick_server(v6, 4)
            pkts = [(0, 0, rnd.randint(28, 60)), (1, 0, rnd.randint(44, 460))]
            ts0 = rnd.randrange(dur_us)
            times = [ts0, ts0 + rtt]
            flows = 2
        elif kind == "ping":
            proto = ICMP6 if v6 else ICMP
            sport, dport = 0, 0
            sip = pick_server(v6, 500)
            n = rnd.randint(1, 4)
            ts0 = rnd.randrange(max(1, dur_us - n * 1_000_000))
            times = []
            req, rep = (128, 129) if v6 else (8, 0)
            for i in range(n):
                pkts += [(0, req, 56), (1, rep, 56)]
                times += [ts0 + i * 1_000_000, ts0 + i * 1_000_000 + rtt]
            flows = 2
        elif kind == "scan":
            proto, sport, dport = TCP, ephemeral(cip), rnd.randrange(1, 1024)
            sip = pick_server(v6, 500)
            ts0 = rnd.randrange(dur_us)
            if rnd.random() < 0.5:
                pkts = [(0, SYN, 0)]
                times = [ts0]
                flows = 1
            else:
                pkts = [(0, SYN, 0), (1, RST | ACK, 0)]
                times = [ts0, ts0 + rtt]
                flows = 2
        elif kind == "udp_stream":
            proto, sport = UDP, ephemeral(cip)
            dport = rnd.choice(SERVER_UDP_PORTS)
            sip = pick_server(v6, 500)
            n = rnd.randint(20, 200)
            span = rnd.uniform(2e6, 50e6)
            ts0 = rnd.randrange(max(1, int(dur_us - span)))
            for i in range(n):
                if rnd.random() < 0.8:
                    pkts.append((1, 0, rnd.randint(1000, 1252)))
                else:
                    pkts.append((0, 0, rnd.randint(30, 120)))
            times = emit_times(ts0, n, span / n)
            flows = 2
        else:  # TCP connections
            proto, sport = TCP, ephemeral(cip)
            dport = rnd.choice(SERVER_TCP_PORTS)
            sip = pick_server(v6, 500)
            if kind == "tcp_short":
                d = rnd.randint(1, 6)
            elif kind == "tcp_medium":
                d = rnd.randint(7, 40)
            elif kind == "tcp_large":
                d = rnd.randint(40, 300)
            else:
                d = rnd.randint(2000, 6000)
            mss = 1440 if v6 else 1460
            pkts = [(0, SYN, 0), (1, SYN | ACK, 0), (0, ACK, 0)]
            for i in range(d):
                if i == 0:
                    pkts.append((0, PSH | ACK, rnd.randint(80, 700)))
                elif i % 3 == 0:
                    pkts.append((0, ACK, 0))
                else:
                    last = i == d - 1
                    pkts.append((1, (PSH | ACK) if last else ACK,
                                 rnd.randint(1, mss) if last else mss))
            r = rnd.random()
            if r < 0.80:
                pkts += [(1, FIN | ACK, 0), (0, ACK, 0), (0, FIN | ACK, 0), (1, ACK, 0)]
            elif r < 0.90:
                pkts += [(0, RST | ACK, 0)]
            # else: left open (ends by idle timeout or at end of input)
            n = len(pkts)
            pause_at, pause_us = -1, 0
            if kind == "tcp_bulk":
                span = rnd.uniform(30e6, args.duration * 0.9e6)
            elif kind == "tcp_large":
                span = rnd.uniform(0.5e6, 20e6)
            else:
                span = n * rtt / 2
            if kind in ("tcp_medium", "tcp_large", "tcp_bulk") and rnd.random() < 0.05:
                # pause longer than the default 15 s idle timeout
                pause_at, pause_us = rnd.randrange(3, n), rnd.randint(16_000_000, 30_000_000)
            ts0 = rnd.randrange(max(1, int(dur_us - span - pause_us)))
            times = emit_times(ts0, n, span / n, pause_at, pause_us)
            flows = 2

        tos = rnd.choice((0, 0, 0, 0, 0, 0, 0x28, 0xb8))
        ci = new_conn(v6, proto, cip, sip, sport, dport, tos)
        for (d, fl, pl), t in zip(pkts, times):
            events.append((t, ci, d, fl, pl))
        total_packets += len(pkts)
        n_uniflows += flows

    events.sort()
    t_gen = time.monotonic()

    start_us = int(args.start * 1e6)
    snap = args.snaplen
    pack_rec = struct.Struct("<IIII").pack
    pack_ip4 = struct.Struct("!BBHHHBBH").pack
    pack_ip6 = struct.Struct("!IHBB").pack
    pack_tcp = struct.Struct("!HHIIBBHHH").pack
    pack_udp = struct.Struct("!HHHH").pack
    pack_icmp = struct.Struct("!BBHHH").pack
    zeros = bytes(1600)
    octets = 0
    out = []
    with open(args.out, "wb", buffering=1 << 22) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, 1))
        for t, ci, d, fl, pl in events:
            c = conns[ci]
            proto = c.proto
            if proto == TCP:
                seq = c.seq
                sp, dp = (c.sport, c.dport) if d == 0 else (c.dport, c.sport)
                l4 = pack_tcp(sp, dp, seq[d], seq[1 - d], 0x50, fl, 64240, 0, 0)
                seq[d] = (seq[d] + pl + (1 if fl & (SYN | FIN) else 0)) & 0xFFFFFFFF
                l4len = 20 + pl
            elif proto == UDP:
                sp, dp = (c.sport, c.dport) if d == 0 else (c.dport, c.sport)
                l4len = 8 + pl
                l4 = pack_udp(sp, dp, l4len, 0)
            else:
                c.ident[d] = (c.ident[d] + 1) & 0xFFFF
                l4 = pack_icmp(fl, 0, 0, c.icmp_id, c.ident[d])
                l4len = 8 + pl
            hdr = c.hdr
            ttl = 64 if d == 0 else 57
            if c.v6:
                ip = pack_ip6(0x60000000 | (c.tos << 20), l4len, proto, ttl) + hdr[2 * d + 1]
                iplen = l4len + 40
            else:
                iplen = l4len + 20
                ident = c.ident[d] = (c.ident[d] + 1) & 0xFFFF
                s = fold(c.base[d] + iplen + ident)
                ip = pack_ip4(0x45, c.tos, iplen, ident, 0x4000, ttl, proto, 0xFFFF - s) + hdr[2 * d + 1]
            octets += iplen
            wire = 14 + iplen if iplen >= 46 else 60  # Ethernet minimum frame (no FCS)
            cap = wire if wire <= snap else snap
            ts = start_us + t
            frame = b"".join((pack_rec(ts // 1_000_000, ts % 1_000_000, cap, wire),
                              hdr[2 * d], ip, l4, zeros[:pl + wire - 14 - iplen]))
            out.append(frame if cap == wire else frame[: 16 + cap])
            if len(out) >= 8192:
                f.write(b"".join(out))
                out.clear()
        f.write(b"".join(out))

    t_end = time.monotonic()
    span = (events[-1][0] - events[0][0]) / 1e6
    print(f"make_bench_pcap: wrote {args.out}: packets={len(events)} uniflows={n_uniflows} "
          f"connections={len(conns)} ipv6_connections={n_v6} ip_octets={octets} "
          f"span_s={span:.3f} seed={args.seed}", file=sys.stderr)
    print("make_bench_pcap: connections by kind: "
          + " ".join(f"{k}={v}" for k, v in kind_count.items()), file=sys.stderr)
    print(f"make_bench_pcap: model {t_gen - t_begin:.1f} s, write {t_end - t_gen:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
