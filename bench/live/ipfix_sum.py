#!/usr/bin/python3
"""Receives IPFIX (or NetFlow v9) over UDP and adds up what the flow records say.

  ipfix_sum.py udp ADDR PORT READYFILE   receive on ADDR:PORT until SIGTERM/SIGINT
  ipfix_sum.py file PATH                 read an RFC 5655 IPFIX file

Prints one JSON object: messages, templates, records (flow data records),
packets (sum of packetDeltaCount, IE 2, or else packetTotalCount, IE 86),
octets (octetDeltaCount, IE 1, or octetTotalCount, IE 85), by_direction
{flowDirection: packets} ("none" when the record has no IE 61),
sets_without_template. Unsigned fields of any length (reduced-size encoding)
are decoded big-endian. Enterprise fields are skipped by length.
"""
import json
import os
import signal
import socket
import struct
import sys

IE_OCTETS, IE_PACKETS, IE_OCTETS_TOTAL, IE_PACKETS_TOTAL, IE_DIRECTION = 1, 2, 85, 86, 61


class Summer:
    def __init__(self):
        self.templates = {}  # (domain, tid) -> [(ie or None, length)]
        self.messages = self.records = self.packets = self.octets = 0
        self.by_direction = {}
        self.unknown_sets = 0
        self.template_count = 0

    def message(self, buf):
        if len(buf) < 16:
            return
        version, length = struct.unpack_from("!HH", buf, 0)
        if version != 10:
            return
        self.messages += 1
        domain = struct.unpack_from("!I", buf, 12)[0]
        end = min(length, len(buf))
        off = 16
        while off + 4 <= end:
            sid, slen = struct.unpack_from("!HH", buf, off)
            if slen < 4:
                break
            body, bend = off + 4, min(off + slen, end)
            if sid in (2, 3):
                self._templates(buf, body, bend, domain, sid == 3)
            elif sid >= 256:
                self._data(buf, body, bend, domain, sid)
            off += slen

    def _templates(self, buf, p, end, domain, options):
        while p + 4 <= end:
            tid, count = struct.unpack_from("!HH", buf, p)
            p += 4
            if options:
                p += 2
            fields = []
            for _ in range(count):
                if p + 4 > end:
                    return
                ie, flen = struct.unpack_from("!HH", buf, p)
                p += 4
                if ie & 0x8000:
                    p += 4
                    ie = None  # enterprise-specific: not one of ours
                fields.append((ie, flen))
            if count == 0:
                self.templates.pop((domain, tid), None)
            else:
                # options records (scope fields) are never flow records
                self.templates[(domain, tid)] = (fields, options)
                self.template_count += 1

    def _data(self, buf, p, end, domain, tid):
        t = self.templates.get((domain, tid))
        if t is None:
            self.unknown_sets += 1
            return
        fields, options = t
        while p < end:
            vals = {}
            q = p
            ok = True
            for ie, flen in fields:
                if flen == 65535:
                    if q >= end:
                        ok = False
                        break
                    flen = buf[q]
                    q += 1
                    if flen == 255:
                        flen = struct.unpack_from("!H", buf, q)[0]
                        q += 2
                if q + flen > end:
                    ok = False
                    break
                if ie in (IE_OCTETS, IE_PACKETS, IE_OCTETS_TOTAL, IE_PACKETS_TOTAL, IE_DIRECTION):
                    vals[ie] = int.from_bytes(buf[q:q + flen], "big")
                q += flen
            if not ok or q == p:
                break  # padding at the end of the set
            p = q
            if options:
                continue
            self.records += 1
            pk = vals.get(IE_PACKETS, vals.get(IE_PACKETS_TOTAL, 0))
            self.packets += pk
            self.octets += vals.get(IE_OCTETS, vals.get(IE_OCTETS_TOTAL, 0))
            d = str(vals[IE_DIRECTION]) if IE_DIRECTION in vals else "none"
            self.by_direction[d] = self.by_direction.get(d, 0) + pk

    def result(self):
        return {"messages": self.messages, "templates": self.template_count, "records": self.records,
                "packets": self.packets, "octets": self.octets, "by_direction": self.by_direction,
                "sets_without_template": self.unknown_sets}


def from_udp(addr, port, ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # exporters send their last flows in one burst at shutdown
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((addr, port))
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with open(ready + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(ready + ".tmp", ready)
    c = Summer()
    while True:
        try:
            buf = s.recv(65535)
        except socket.timeout:
            if stop:
                break
            continue
        c.message(buf)
    return c


def from_file(path):
    c = Summer()
    data = open(path, "rb").read()
    off = 0
    while off + 16 <= len(data):
        length = struct.unpack_from("!H", data, off + 2)[0]
        if length < 16:
            break
        c.message(data[off:off + length])
        off += length
    return c


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "udp":
        c = from_udp(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == "file":
        c = from_file(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(c.result()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
