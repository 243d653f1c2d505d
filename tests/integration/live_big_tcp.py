#!/usr/bin/python3
"""Integration (root): BIG TCP. A veth pair with gso_max_size/gro_max_size
185000 carries 8 MiB of IPv6 TCP, so the kernel hands the TC hook GSO
packets over 64 KiB, whose IPv6 Payload Length is 0 and which carry no
jumbo option, or (as 6.18 does) with an 8-octet hop-by-hop header holding a
Jumbo option that the segments on the wire do not carry.
Checks that BIG TCP was really in effect (the sender veth's bytes per skb
above 64 KiB), that nothing was counted as malformed, and that the data
direction's record carries every payload byte plus, per wire segment, 40
octets of IPv6 header and the TCP header (32 octets with timestamps, 20
without; the SYN's options add a few octets in all).
Everything made here (namespaces, veths, processes) is removed, also on
failure.

usage: live_big_tcp.py BUILD_DIR
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, Skip, sh  # noqa: E402

PAYLOAD = 8 << 20
PORT = 45555
GSO = "185000"

SERVER = f"""
import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('fd00:b16::2', {PORT}))
s.listen(1)
print('ready', flush=True)
s.settimeout(20)
c, _ = s.accept()
n = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    n += len(d)
print(n)
"""
CLIENT = f"""
import socket
s = socket.create_connection(('fd00:b16::2', {PORT}), timeout=20)
block = b'x' * (1 << 20)
for _ in range({PAYLOAD} >> 20):
    s.sendall(block)
s.close()
"""


def tx(ns, ifn):
    d = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", ifn).stdout)[0]["stats64"]["tx"]
    return d["packets"], d["bytes"]


def retrans_segs(ns):
    """TCP segments retransmitted in the namespace (/proc/net/snmp)."""
    lines = [l.split() for l in sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout.splitlines()
             if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])


def body(build, tmp, failures, extra):
    with Lab() as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpfa" + lab.tag, "bpfb" + lab.tag
        sh("ip", "link", "add", if_a, "netns", a, "type", "veth", "peer", "name", if_b, "netns", b)
        for ns, ifn, addr in ((a, if_a, "fd00:b16::1/64"), (b, if_b, "fd00:b16::2/64")):
            sh("ip", "-n", ns, "link", "set", ifn, "gso_max_size", GSO, "gro_max_size", GSO)
            sh("ip", "-n", ns, "addr", "add", addr, "dev", ifn, "nodad")
            sh("ip", "-n", ns, "link", "set", ifn, "up")
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "big.ipfix"), os.path.join(tmp, "big.log"))
        before = tx(a, if_a)
        retrans_before = retrans_segs(a)
        server = subprocess.Popen(["ip", "netns", "exec", b, "/usr/bin/python3", "-c", SERVER],
                                  stdout=subprocess.PIPE, text=True)
        try:
            if server.stdout.readline().strip() != "ready":
                raise SystemExit("FAIL the TCP receiver did not start")
            sh("ip", "netns", "exec", a, "/usr/bin/python3", "-c", CLIENT, timeout=60)
            got = int(server.communicate(timeout=30)[0].strip() or 0)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        after = tx(a, if_a)
        retrans = retrans_segs(a) - retrans_before
        rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        if got != PAYLOAD:
            failures.append(f"the receiver got {got} bytes, want {PAYLOAD}")
        skbs, skb_bytes = after[0] - before[0], after[1] - before[1]
        if skbs and skb_bytes / skbs <= 65535 and not failures:
            # The probe is the transfer itself: Debian 12's 6.1 takes the
            # sizes (and reports them back) but never builds a larger skb
            # on a veth.
            raise Skip(f"BIG TCP not in effect on this kernel ({os.uname().release}): {skbs} skbs of "
                       f"{skb_bytes / skbs:.0f} bytes on average left {if_a}; nothing over 64 KiB to meter")
        if skbs == 0:
            failures.append(f"no skb left {if_a}: the transfer did not happen")
        if "malformed=0 " not in ex.summary():
            failures.append("packets counted as malformed: " + ex.summary())
        data = [r for r in ex.records() if r.get("protocolIdentifier") == 6 and r.get("flowDirection") == 1 and
                r.get("destinationTransportPort") == PORT]
        pk = sum(r["packetDeltaCount"] for r in data)
        oc = sum(r["octetDeltaCount"] for r in data)
        # wire segments of at most the MTU (1500), each with its own headers
        if pk < PAYLOAD // 1440:
            failures.append(f"data direction: {pk} packets, fewer than {PAYLOAD // 1440} wire segments")
        tcp_hdr = 32 if sh("ip", "netns", "exec", a, "sysctl", "-n", "net.ipv4.tcp_timestamps").stdout.strip() != "0" \
            else 20
        per = (oc - PAYLOAD) / pk - 40 if pk else 0
        # A retransmitted segment (a busy machine) carries its payload
        # again: at most an MSS (1428) more each.
        per_low = (oc - PAYLOAD - retrans * 1428) / pk - 40 if pk else 0
        if not (per_low <= tcp_hdr + 0.5 and tcp_hdr <= per and (retrans or per <= tcp_hdr + 0.5)):
            failures.append(f"data direction: {pk} packets, {oc} octets for {PAYLOAD} payload bytes and {retrans} "
                            f"retransmitted segments: {per:.2f} octets of TCP header per packet ({per_low:.2f} "
                            f"without the most the retransmissions can add), want {tcp_hdr} (+ the SYN's options)")
        print(f"big_tcp: {skbs} skbs of {skb_bytes / max(skbs, 1):.0f} bytes on average; exported {pk} packets, "
              f"{oc} octets ({per:.2f} TCP header octets per packet; {retrans} retransmitted segments)")
    return "IPv6 BIG TCP super-packets metered with their length from the skb"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "big_tcp", body))
