"""A small, independent reference model of docs/flow-semantics.md, working on
raw frame bytes (no scapy). It exists only to cross-check the hand-written
expectations in cases.py / run_malformed.py (see selfcheck.py); the golden
runners never use it to produce expectations.
"""

import ipaddress
import struct

from golden_lib import (Rec, T0_NS, LINKTYPE_ETHERNET, LINKTYPE_RAW,
                        LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2)

PORT_PROTOS = {6, 17, 132, 136, 33}
MIN_L4 = {6: 20, 17: 8, 136: 8, 132: 12, 33: 12, 1: 8, 58: 8}
EXT_HDRS = {0, 43, 60, 44, 51, 135, 139, 140}
MAX_EXT = 16
FRAG_MEMORY_NS = 30 * 1_000_000_000


class Malformed(Exception):
    pass


class NonIP(Exception):
    pass


def _link(linktype, b):
    """Returns (l3 bytes, version hint, vlan, cvlan, link header length)."""
    vlan = cvlan = 0
    if linktype == LINKTYPE_ETHERNET:
        if len(b) < 14:
            raise Malformed("short ethernet")
        et, off, tags = struct.unpack_from("!H", b, 12)[0], 14, []
        while et in (0x8100, 0x88A8, 0x9100):
            if len(b) < off + 4:
                raise Malformed("short vlan tag")
            tags.append(struct.unpack_from("!H", b, off)[0] & 0xFFF)
            et = struct.unpack_from("!H", b, off + 2)[0]
            off += 4
        if tags:
            vlan = tags[0]
        if len(tags) > 1:
            cvlan = tags[1]
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(b) < 16:
            raise Malformed("short sll")
        et, off = struct.unpack_from("!H", b, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(b) < 20:
            raise Malformed("short sll2")
        et, off = struct.unpack_from("!H", b, 0)[0], 20
    elif linktype == LINKTYPE_RAW:
        if len(b) < 1:
            raise Malformed("empty")
        et = {4: 0x0800, 6: 0x86DD}.get(b[0] >> 4)
        if et is None:
            raise Malformed("raw: bad version")
        off = 0
    else:
        raise ValueError(linktype)
    if et == 0x0800:
        return b[off:], 4, vlan, cvlan, off
    if et == 0x86DD:
        return b[off:], 6, vlan, cvlan, off
    raise NonIP()


def _l4(proto, b):
    """(sport, dport, icmp, tcp flags) from a transport header."""
    need = MIN_L4.get(proto, 0)
    if len(b) < need:
        raise Malformed("short l4 header")
    if proto in PORT_PROTOS:
        sp, dp = struct.unpack_from("!HH", b, 0)
        fl = 0
        if proto == 6:
            fl = b[13] | ((b[12] & 1) << 8)
        return sp, dp, 0, fl
    if proto in (1, 58):
        return 0, 0, (b[0] << 8) | b[1], 0
    return 0, 0, 0, 0


def parse(linktype, data, origlen):
    l3, ver, vlan, cvlan, lhl = _link(linktype, data)
    if len(l3) < 1 or (l3[0] >> 4) != ver:
        raise Malformed("bad version")
    if ver == 4:
        if len(l3) < 20:
            raise Malformed("short ipv4")
        ihl = (l3[0] & 15) * 4
        if ihl < 20:
            raise Malformed("ihl < 5")
        if len(l3) < ihl:
            raise Malformed("ipv4 options cut")
        tos, tlen, ident, fo, _ttl, proto = struct.unpack_from("!BHHHBB", l3, 1)
        src, dst = str(ipaddress.ip_address(l3[12:16])), str(ipaddress.ip_address(l3[16:20]))
        offset, mf = fo & 0x1FFF, bool(fo & 0x2000)
        octets, rest = tlen, l3[ihl:]
    else:
        if len(l3) < 40:
            raise Malformed("short ipv6")
        tos = ((l3[0] & 15) << 4) | (l3[1] >> 4)
        plen, nh = struct.unpack_from("!HB", l3, 4)
        src, dst = str(ipaddress.ip_address(l3[8:24])), str(ipaddress.ip_address(l3[24:40]))
        off, count, offset, mf, ident, jumbo = 40, 0, 0, False, None, False
        while nh in EXT_HDRS:
            count += 1
            if count > MAX_EXT:
                raise Malformed("too many ext headers")
            if len(l3) < off + 8:
                raise Malformed("ext header past captured bytes")
            if nh == 44:
                fo = struct.unpack_from("!H", l3, off + 2)[0]
                offset, mf = fo >> 3, bool(fo & 1)
                ident = struct.unpack_from("!I", l3, off + 4)[0]
                hl = 8
            elif nh == 51:
                hl = (l3[off + 1] + 2) * 4
            else:
                hl = (l3[off + 1] + 1) * 8
            if len(l3) < off + hl:
                raise Malformed("ext header past captured bytes")
            if nh == 0:
                i = off + 2
                while i < off + hl:
                    if l3[i] == 0:
                        i += 1
                        continue
                    if l3[i] == 0xC2:
                        jumbo = True
                    i += 2 + l3[i + 1]
            nh, off = l3[off], off + hl
            if offset:
                break
        proto = nh
        if plen == 0 and jumbo:
            octets = origlen - lhl
        else:
            octets = plen + 40
        rest = l3[off:]
    info = dict(ver=ver, src=src, dst=dst, proto=proto, tos=tos, vlan=vlan,
                cvlan=cvlan, octets=octets, offset=offset, mf=mf, ident=ident)
    if offset == 0:
        info["sport"], info["dport"], info["icmp"], info["flags"] = _l4(proto, rest)
    else:
        info["sport"] = info["dport"] = info["icmp"] = info["flags"] = 0
    return info


class Model:
    def __init__(self, idle=15.0, active=60.0, linger=2.0, max_flows=None):
        self.max_flows = max_flows
        self.idle = round(idle * 1e9)
        self.active = round(active * 1e9)
        self.linger = round(linger * 1e9)
        self.flows = {}
        self.out = []
        self.frags = {}
        self.clock = 0
        self.c = dict(frames=0, ip_packets=0, ip_octets=0, non_ip=0, malformed=0)

    def _end(self, key, reason):
        f = self.flows.pop(key)
        ver, vlan, cvlan, src, dst, proto, sp, dp, icmp = key
        self.out.append(Rec(src, dst, proto, f["pkts"], f["octets"],
                            (f["first"] - T0_NS) / 1e9, (f["last"] - T0_NS) / 1e9,
                            # tcpControlBits is exported as one octet: NS (0x100) stays behind
                            reason, sp, dp, f["flags"] & 0xff, icmp, vlan, cvlan, f["tos"]))

    def _expire(self, t):
        for key in list(self.flows):
            f = self.flows[key]
            if f["fin"] is not None and t - f["fin"] >= self.linger:
                self._end(key, 3)
            elif t - f["last"] >= self.idle:
                self._end(key, 1)
            elif t - f["first"] >= self.active:
                self._end(key, 2)

    def packet(self, linktype, ts, data, origlen=None):
        self.c["frames"] += 1
        origlen = origlen if origlen is not None else len(data)
        try:
            p = parse(linktype, data, origlen)
        except NonIP:
            self.c["non_ip"] += 1
            return
        except Malformed:
            self.c["malformed"] += 1
            return
        self.clock = max(self.clock, ts)
        self._expire(self.clock)
        self.c["ip_packets"] += 1
        self.c["ip_octets"] += p["octets"]
        fk = (p["ver"], p["src"], p["dst"], p["proto"], p["ident"])
        if p["offset"] == 0 and p["mf"]:
            self.frags[fk] = (ts, p["sport"], p["dport"], p["icmp"])
        elif p["offset"] != 0:
            m = self.frags.get(fk)
            if m and ts - m[0] < FRAG_MEMORY_NS:
                p["sport"], p["dport"], p["icmp"] = m[1], m[2], m[3]
        key = (p["ver"], p["vlan"], p["cvlan"], p["src"], p["dst"], p["proto"],
               p["sport"], p["dport"], p["icmp"])
        fl = p["flags"] if p["proto"] == 6 else 0
        f = self.flows.get(key)
        if f and p["proto"] == 6 and f["fin"] is not None and (fl & 0x12) == 0x02:
            self._end(key, 3)
            f = None
        if f is None:
            if self.max_flows is not None and len(self.flows) >= self.max_flows:
                lru = min(self.flows, key=lambda k: self.flows[k]["last"])
                self._end(lru, 5)
            f = self.flows[key] = dict(first=ts, last=ts, pkts=0, octets=0, flags=0,
                                       tos=p["tos"], fin=None)
        f["last"] = ts
        f["pkts"] += 1
        f["octets"] += p["octets"]
        f["flags"] |= fl
        if fl & 0x01 and f["fin"] is None:
            f["fin"] = ts
        if fl & 0x04:
            self._end(key, 3)

    def finish(self):
        for key in list(self.flows):
            self._end(key, 3 if self.flows[key]["fin"] is not None else 4)
        return self.out, self.c


def args_to_params(args):
    p = dict(idle=15.0, active=60.0, linger=2.0)
    names = {"--idle-timeout": "idle", "--active-timeout": "active",
             "--tcp-end-linger": "linger"}
    for i, a in enumerate(args):
        if a in names:
            p[names[a]] = float(args[i + 1])
    return p


def run_model(case):
    import re
    params = args_to_params(case.args)
    if case.config:
        mf = re.search(r"^\s*max_flows\s*=\s*(\d+)", case.config, re.M)
        if mf:
            params["max_flows"] = int(mf.group(1))
    m = Model(**params)
    for f in case.frames:
        m.packet(case.linktype, f.ts_ns, f.data, f.origlen)
    return m.finish()
