#!/usr/bin/python3
"""Integration (root): 1-in-N sampling. With --sampling 10, the sampling
options record says how many packets the hooks observed (equal to the
interface's own counters) and how many were selected (a tenth, per CPU);
the flow records hold exactly the selected packets, unscaled; drops (the
flood goes to a port nothing listens on) are sampled 1 in N as well.

usage: live_sampling.py BUILD_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, send_udp, stat  # noqa: E402

N, RATE = 2000, 10


def body(build, tmp, failures, extra):
    with Lab() as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpfa" + lab.tag, "bpfb" + lab.tag
        lab.veth(a, if_a, "198.51.100.1/24", b, if_b, "198.51.100.2/24")
        keys = ("rx_packets", "tx_packets", "tx_dropped")
        before = {k: stat(a, if_a, k) for k in keys}
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "s.ipfix"), os.path.join(tmp, "s.log"),
                      extra=["--sampling", str(RATE)])
        send_udp(b, "198.51.100.2", "198.51.100.1", 7000, 7001, N, 64)
        time.sleep(0.3)
        rc = ex.stop()
        seen = sum(stat(a, if_a, k) - before[k] for k in keys)
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        recs = ex.records()
        sampling = [r for r in recs if "samplingPacketSpace" in r]
        in_flows = sum(r["packetDeltaCount"] for r in recs if "flowDirection" in r)
        if not sampling:
            failures.append("no sampling options record")
        else:
            s = sampling[-1]
            observed, selected = s["selectorIdTotalPktsObserved"], s["selectorIdTotalPktsSelected"]
            print(f"sampling 1/{RATE}: interface counted {seen}, observed {observed}, selected {selected}, "
                  f"in flows {in_flows}")
            if (s["samplingPacketInterval"], s["samplingPacketSpace"], s["selectorAlgorithm"]) != (1, RATE - 1, 1):
                failures.append(f"sampling record announces the wrong selector: {s}")
            if observed != seen:
                failures.append(f"observed {observed} != {seen} packets counted by the interface")
            ncpu = os.cpu_count() or 1
            if not (observed // RATE - ncpu <= selected <= observed // RATE + ncpu):
                failures.append(f"selected {selected} is not 1/{RATE} of {observed} (per CPU)")
            if in_flows != selected:
                failures.append(f"flow records hold {in_flows} packets, {selected} were selected")
            # Nothing listens on the port: every packet is a kernel drop. The
            # drops are sampled 1 in N too (their own count per CPU), so the
            # flow's dropped packets are about its packets, never N times them.
            dropped = sum(r.get("droppedPacketDeltaCount", 0) for r in recs
                          if "flowDirection" in r and r.get("destinationTransportPort") == 7001)
            print(f"dropped packets in flows: {dropped} (sampled 1/{RATE} of {N} drops)")
            if not (N // RATE - ncpu <= dropped <= N // RATE + ncpu):
                failures.append(f"flows show {dropped} dropped packets for {N} drops sampled 1 in {RATE}: want about "
                                f"{N // RATE} (more dropped than packets sampled is what docs/fields.md rules out)")
    return "observed equals the interface counters, 1 in N selected, flows hold the selected"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_sampling", body))
