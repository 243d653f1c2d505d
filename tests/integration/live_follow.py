#!/usr/bin/python3
"""Integration (root): the exporter follows interfaces. Started with a glob,
it meters the matching veth that exists, picks up a second one created
after start, keeps metering the second when the first is deleted, and
leaves no filter behind. Counts per interface are exact.

usage: live_follow.py BUILD_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, Exporter, Lab, ifindex, our_filters, send_udp, sh  # noqa: E402

N1, N2, N3 = 50, 40, 30


def body(build, tmp, failures, extra):
    with Lab() as lab:
        a, b, c = lab.ns("A"), lab.ns("B"), lab.ns("C")
        first, second = f"bpfw{lab.tag}x", f"bpfw{lab.tag}y"
        lab.veth(a, first, "198.51.100.1/24", b, "bpfp" + lab.tag, "198.51.100.2/24")
        ex = Exporter(build, a, [f"bpfw{lab.tag}*"], os.path.join(tmp, "f.ipfix"), os.path.join(tmp, "f.log"))
        idx_first = ifindex(a, first)

        # An interface that appears after start is metered within a drain.
        lab.veth(a, second, "203.0.113.1/24", c, "bpfq" + lab.tag, "203.0.113.2/24")
        idx_second = ifindex(a, second)
        if not ex.wait_log(f"metering interface {second}"):
            failures.append(f"{second}, created after start, was not picked up:\n" + ex.text())
        send_udp(b, "198.51.100.2", "198.51.100.1", 5001, 6001, N1, 50)
        send_udp(c, "203.0.113.2", "203.0.113.1", 5002, 6002, N2, 60)
        time.sleep(1.5)

        # Removing the first does not disturb the second.
        sh("ip", "-n", a, "link", "del", first)
        if not ex.wait_log(f"interface {first} (ifindex {idx_first}) is gone"):
            failures.append("the removed interface was not noticed, by its name:\n" + ex.text())
        send_udp(c, "203.0.113.2", "203.0.113.1", 5002, 6002, N3, 60)
        time.sleep(0.3)
        rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())

        recs = [r for r in ex.records() if r.get("protocolIdentifier") == 17 and r.get("flowDirection") == 0]
        by_if = {}
        for r in recs:
            by_if[r["ingressInterface"]] = by_if.get(r["ingressInterface"], 0) + r["packetDeltaCount"]
        if by_if.get(idx_first) != N1:
            failures.append(f"{first}: {by_if.get(idx_first)} packets exported, {N1} sent")
        if by_if.get(idx_second) != N2 + N3:
            failures.append(f"{second}: {by_if.get(idx_second)} packets exported, {N2 + N3} sent")
        left = our_filters(a, second)
        if left:
            failures.append("tc filters left after SIGTERM: " + "; ".join(left))
    return "new interface metered, removal of another did not disturb it, counts exact"


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_follow", body))
