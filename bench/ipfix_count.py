#!/usr/bin/python3
"""Counts IPFIX messages and data records (per template id) for the benchmark.

  ipfix_count.py file PATH            count an RFC 5655 IPFIX file
  ipfix_count.py udp PORT READYFILE   receive on 127.0.0.1:PORT (0: any free port) until
                                      SIGTERM/SIGINT, then print the counts; writes the bound
                                      port to READYFILE once listening

Prints one JSON object: messages, records (data records incl. options),
flow_records (data records whose template has a flow key: sourceIPv4Address or
sourceIPv6Address), by_template {id: records}, bytes.
Only templates (set 2) and options templates (set 3) are parsed; variable-length
fields are handled. Multiple observation domains are kept apart.
"""

import json
import os
import signal
import socket
import struct
import sys

SRC_V4, SRC_V6 = 8, 27


class Counter:
    def __init__(self):
        self.templates = {}  # (domain, tid) -> (list of field lengths, is_flow)
        self.messages = 0
        self.records = 0
        self.flow_records = 0
        self.by_template = {}
        self.bytes = 0
        self.unknown_sets = 0

    def message(self, buf):
        self.messages += 1
        self.bytes += len(buf)
        if len(buf) < 16:
            return
        version, length, _t, _seq, domain = struct.unpack_from("!HHIII", buf, 0)
        if version != 10:
            return
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
                if p + 2 > end:
                    return
                p += 2  # scope field count
            fields = []
            is_flow = False
            for _ in range(count):
                ie, flen = struct.unpack_from("!HH", buf, p)
                p += 4
                if ie & 0x8000:
                    p += 4
                fields.append(flen)
                if (ie & 0x7FFF) in (SRC_V4, SRC_V6) and not ie & 0x8000:
                    is_flow = True
            if count == 0:
                self.templates.pop((domain, tid), None)  # withdrawal
            else:
                self.templates[(domain, tid)] = (fields, is_flow and not options)

    def _data(self, buf, p, end, domain, tid):
        t = self.templates.get((domain, tid))
        if t is None:
            self.unknown_sets += 1
            return
        fields, is_flow = t
        fixed = None if 65535 in fields else sum(fields)
        n = 0
        while p < end:
            if fixed is not None:
                if fixed == 0 or p + fixed > end:
                    break
                p += fixed
            else:
                q = p
                for flen in fields:
                    if flen == 65535:
                        if q >= end:
                            q = end + 1
                            break
                        flen = buf[q]
                        q += 1
                        if flen == 255:
                            flen = struct.unpack_from("!H", buf, q)[0]
                            q += 2
                    q += flen
                if q > end:
                    break
                p = q
            n += 1
        self.records += n
        if is_flow:
            self.flow_records += n
        self.by_template[tid] = self.by_template.get(tid, 0) + n

    def result(self):
        return {"messages": self.messages, "records": self.records,
                "flow_records": self.flow_records,
                "by_template": {str(k): v for k, v in sorted(self.by_template.items())},
                "bytes": self.bytes, "sets_without_template": self.unknown_sets}


def count_file(path):
    c = Counter()
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + 16 <= len(data):
        length = struct.unpack_from("!H", data, off + 2)[0]
        if length < 16:
            break
        c.message(data[off:off + length])
        off += length
    return c


def records_in_dir(path, extension=".ipfix"):
    """Data records in the files of `path` ending in `extension` (each
    file defines the templates it uses, as bpfix-collector writes them)."""
    return sum(count_file(os.path.join(path, n)).records for n in sorted(os.listdir(path)) if n.endswith(extension))


def count_udp(port, ready):
    c = Counter()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # root may exceed net.core.rmem_max: exporters send their last flows in one burst
        s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with open(ready + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(ready + ".tmp", ready)
    while True:
        try:
            buf = s.recv(65535)
        except socket.timeout:
            if stop:
                break
            continue
        c.message(buf)
    return c


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "file":
        c = count_file(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "udp":
        c = count_udp(int(sys.argv[2]), sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(c.result()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
