#!/usr/bin/python3
"""Integration (root): a full kernel flow map loses nothing silently. With
[live] map_entries = 8, cache_slots = 1 (and [flows] max_flows = 8), 60 one-packet flows arrive within one drain; every
packet the interface counted is either in an exported flow record or in the
exported notSentPacketTotalCount, and the exit summary says map_full > 0.

usage: live_map_full.py BUILD_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, sh, stat  # noqa: E402

FLOWS = 60


def body(build, tmp, failures, extra):
    cfg = os.path.join(tmp, "small.toml")
    with open(cfg, "w") as f:
        f.write("[flows]\nmax_flows = 8\n[live]\ndrain_interval = 5.0\nmap_entries = 8\ncache_slots = 1\n")
    with Lab() as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpfa" + lab.tag, "bpfb" + lab.tag
        lab.veth(a, if_a, "198.51.100.1/24", b, if_b, "198.51.100.2/24")
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "full.ipfix"), os.path.join(tmp, "full.log"),
                      extra=["--config", cfg])
        keys = ("rx_packets", "tx_packets", "tx_dropped")
        before = {k: stat(a, if_a, k) for k in keys}
        code = ("import socket\n"
                f"for p in range({FLOWS}):\n"
                "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "    s.bind(('198.51.100.2',20000+p))\n"
                "    s.sendto(b'y'*40,('198.51.100.1',9))\n"
                "    s.close()\n")
        sh("ip", "netns", "exec", b, "/usr/bin/python3", "-c", code)
        time.sleep(0.3)
        after = {k: stat(a, if_a, k) for k in keys}
        rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        recs = ex.records()
        flows = [r for r in recs if "flowDirection" in r]
        stats = [r for r in recs if "notSentPacketTotalCount" in r]
        in_flows = sum(r["packetDeltaCount"] for r in flows)
        not_sent = stats[-1]["notSentPacketTotalCount"] if stats else None
        seen = sum(after[k] - before[k] for k in keys)
        print(f"map_full: interface counted {seen} packets; exported {in_flows} in {len(flows)} records, "
              f"{not_sent} as notSentPacketTotalCount")
        print("exporter: " + ex.summary())
        if not stats:
            failures.append("no statistics record")
        elif not_sent == 0:
            failures.append("the map never filled: the test proves nothing")
        elif in_flows + not_sent != seen:
            failures.append(f"{in_flows} in flows + {not_sent} not sent != {seen} counted by the interface")
        if "map_full=0" in ex.summary():
            failures.append("summary does not report the full map: " + ex.summary())
        if not any(r.get("flowEndReason") == 5 for r in flows) and len(flows) > 8:
            failures.append("more than max_flows records but none ended for lack of resources")
    return "every packet is in a flow or in notSentPacketTotalCount"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_map_full", body))
