#!/usr/bin/python3
"""Integration (root): flood through a veth while the exporter drains its
double-buffered kernel maps every second. For 10 s, UDP goes both ways as
fast as this machine can send it (bpfix_udp_flood, sendmmsg); afterwards the
packets in the exported records equal the metered interface's own counters
exactly: ingress = rx_packets, egress = tx_packets + tx_dropped (a veth
counts a packet its peer's backlog refused as a tx drop, after our egress
hook saw it). Nothing lost in the flip between maps, nothing counted twice.

usage: live_flood.py BUILD_DIR [SECONDS]
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, stat  # noqa: E402


def body(build, tmp, failures, extra):
    seconds = float(extra[0]) if extra else 10.0
    flood = os.path.join(build, "bin", "bpfix_udp_flood")
    with Lab() as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpfa" + lab.tag, "bpfb" + lab.tag
        lab.veth(a, if_a, "198.51.100.1/24", b, if_b, "198.51.100.2/24")
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "flood.ipfix"), os.path.join(tmp, "flood.log"))
        before = {k: stat(a, if_a, k) for k in ("rx_packets", "tx_packets", "tx_dropped")}
        senders = [
            subprocess.Popen(["ip", "netns", "exec", b, flood, "198.51.100.2", "198.51.100.1", "9", str(seconds),
                              "18"], stdout=subprocess.PIPE, text=True),
            subprocess.Popen(["ip", "netns", "exec", a, flood, "198.51.100.1", "198.51.100.2", "9", str(seconds),
                              "18"], stdout=subprocess.PIPE, text=True),
        ]
        sent = [int(s.communicate(timeout=seconds + 30)[0].strip() or 0) for s in senders]
        time.sleep(0.5)  # let the last packets cross
        after = {k: stat(a, if_a, k) for k in before}
        rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        recs = [r for r in ex.records() if "flowDirection" in r]
        ingress = sum(r["packetDeltaCount"] for r in recs if r["flowDirection"] == 0)
        egress = sum(r["packetDeltaCount"] for r in recs if r["flowDirection"] == 1)
        want_in = after["rx_packets"] - before["rx_packets"]
        want_out = (after["tx_packets"] - before["tx_packets"]) + (after["tx_dropped"] - before["tx_dropped"])
        rate = (want_in + want_out) / seconds
        print(f"flood: sent {sent[0]} B->A and {sent[1]} A->B in {seconds:g} s ({rate:,.0f} packets/s through "
              f"{if_a}); exported ingress {ingress} (rx {want_in}), egress {egress} (tx+dropped {want_out})")
        print("exporter: " + ex.summary())
        if ingress != want_in:
            failures.append(f"ingress: exported {ingress} packets, interface received {want_in}")
        if egress != want_out:
            failures.append(f"egress: exported {egress} packets, interface sent or dropped {want_out}")
        if want_in < 100000:
            failures.append(f"only {want_in} packets arrived: the flood did not flood, the test proves little")
        if "map_full=0" not in ex.summary():
            failures.append("packets did not fit the flow map: " + ex.summary())
    return "exported packets equal the interface counters in both directions"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_flood", body, max_args=1))
