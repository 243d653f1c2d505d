#!/usr/bin/python3
"""A minimal IPFIX-over-TCP collector for tests: listens on HOST:PORT, accepts
connections, reads everything and checks the RFC 7011 message framing
(version 10, message length) of the stream.

Usage: tcp_sink.py HOST PORT READY_FILE [--connections N] [--timeout SEC] [--sctp]

--sctp listens on a one-to-one SCTP socket instead (the same framing).

Writes READY_FILE once it listens. Exits after N connections (default 1) have
been closed by the peer, on SIGTERM, or after --timeout seconds, and prints one
JSON line: {"connections", "bytes", "messages", "framing_errors", "timed_out"}.
Exit status 0 unless the framing was wrong or the timeout hit.
"""
import argparse
import json
import selectors
import signal
import socket
import struct
import sys
import time


class Stream:
    def __init__(self):
        self.buf = b""
        self.messages = 0
        self.errors = []

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 4:
            version, length = struct.unpack_from("!HH", self.buf)
            if version != 10 or length < 16:
                self.errors.append(f"bad message header: version {version}, length {length}")
                self.buf = b""
                return
            if len(self.buf) < length:
                return
            self.buf = self.buf[length:]
            self.messages += 1

    def close(self):
        if self.buf:
            self.errors.append(f"stream ended inside a message ({len(self.buf)} bytes left)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("ready_file")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=50)
    ap.add_argument("--sctp", action="store_true", help="SCTP instead of TCP")
    args = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    lsock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM,
                          socket.IPPROTO_SCTP if args.sctp else 0)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(8)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    open(args.ready_file, "w").close()

    res = {"connections": 0, "bytes": 0, "messages": 0, "framing_errors": [], "timed_out": False}
    closed = 0
    deadline = time.monotonic() + args.timeout
    while not stop and closed < args.connections:
        if time.monotonic() > deadline:
            res["timed_out"] = True
            break
        for key, _ in sel.select(timeout=0.2):
            if key.data is None:
                conn, _ = lsock.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, Stream())
                res["connections"] += 1
                continue
            stream = key.data
            try:
                data = key.fileobj.recv(1 << 16)
            except ConnectionResetError:
                data = b""
                stream.errors.append("connection reset by the exporter")
            if data:
                res["bytes"] += len(data)
                stream.feed(data)
                continue
            stream.close()
            res["messages"] += stream.messages
            res["framing_errors"] += stream.errors
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
    print(json.dumps(res))
    sys.stdout.flush()
    return 1 if res["framing_errors"] or res["timed_out"] else 0


if __name__ == "__main__":
    sys.exit(main())
