#!/usr/bin/python3
"""Integration (root): live eBPF metering on a veth pair in network
namespaces made here.

1. Exactly N UDP datagrams of known sizes each way across the veth: the
   exported records on the metered end show N packets and the right IP
   octets per direction (egress A->B, ingress B->A), with the interface's
   ifindex and name, decoded by bpfix-collector --read and by tshark.
2. After SIGTERM no tc filter or TCX link of ours is left.
3. Classic tc (--attach tc): after kill -9 our filter is left behind; a
   restart removes it, and after its SIGTERM none is left. TCX (the default
   where the kernel has it): after kill -9 the kernel has dropped our links.
4. As nobody with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, started over
   a filter a killed classic tc run left (whose program it cannot read), it
   removes that filter and meters the
   same exact counts and leaves nothing behind.
Everything made here (namespaces, veths, processes) is removed, also on
failure.

usage: live_veth.py BUILD_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import run_test, LEAST_PRIVILEGE, Exporter, Lab, ifindex, our_filters, our_tcx_links, send_udp, tshark_flows  # noqa: E402

N_AB, PAYLOAD_AB = 120, 100   # A -> B: egress on the metered interface
N_BA, PAYLOAD_BA = 75, 333    # B -> A: ingress
PORT_A, PORT_B = 40001, 40002


def body(build, tmp, failures, extra):
    with Lab() as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpfa" + lab.tag, "bpfb" + lab.tag
        lab.veth(a, if_a, "198.51.100.1/24", b, if_b, "198.51.100.2/24")

        # 1. exact counts per direction
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "live.ipfix"), os.path.join(tmp, "live.log"))
        send_udp(a, "198.51.100.1", "198.51.100.2", PORT_A, PORT_B, N_AB, PAYLOAD_AB)
        send_udp(b, "198.51.100.2", "198.51.100.1", PORT_B, PORT_A, N_BA, PAYLOAD_BA)
        time.sleep(0.3)
        rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        udp = [r for r in ex.records() if r.get("protocolIdentifier") == 17 and
               {r.get("sourceTransportPort"), r.get("destinationTransportPort")} == {PORT_A, PORT_B}]
        idx = ifindex(a, if_a)

        def total(src, direction):
            sel = [r for r in udp if r["sourceIPv4Address"] == src and r["flowDirection"] == direction]
            return (sum(r["packetDeltaCount"] for r in sel), sum(r["octetDeltaCount"] for r in sel), sel)

        for src, direction, n, payload, field in (("198.51.100.1", 1, N_AB, PAYLOAD_AB, "egressInterface"),
                                                  ("198.51.100.2", 0, N_BA, PAYLOAD_BA, "ingressInterface")):
            pk, oc, sel = total(src, direction)
            if (pk, oc) != (n, n * (28 + payload)):
                failures.append(f"direction {direction} from {src}: got {pk} packets {oc} octets, want {n} "
                                f"and {n * (28 + payload)}")
            if any(r[field] != idx or r["interfaceName"] != if_a for r in sel):
                failures.append(f"records do not carry {field} {idx} / interfaceName {if_a}: {sel}")
        if len(udp) != 2:
            failures.append(f"expected 2 UDP records (one per direction), got {len(udp)}: {udp}")
        # the same totals as Wireshark decodes them
        ts, problems = tshark_flows(os.path.join(tmp, "live.ipfix"))
        failures += problems
        for src, direction, n, payload in (("198.51.100.1", 1, N_AB, PAYLOAD_AB), ("198.51.100.2", 0, N_BA, PAYLOAD_BA)):
            sel = [f for f in ts if f["src"] == src and f["direction"] == direction and f["proto"] == 17 and
                   {f["sport"], f["dport"]} == {PORT_A, PORT_B}]
            got = (sum(f["packets"] for f in sel), sum(f["octets"] for f in sel))
            if got != (n, n * (28 + payload)):
                failures.append(f"tshark, direction {direction} from {src}: got {got[0]} packets {got[1]} octets, "
                                f"want {n} and {n * (28 + payload)}")
        if "bpfix-exporter: summary: interfaces=1" not in ex.summary():
            failures.append("no summary line: " + ex.summary())
        left = our_filters(a, if_a)
        if left:
            failures.append("tc filters left after SIGTERM: " + "; ".join(left))

        # 3. tc: kill -9 leaves a filter; a restart removes it
        tc = ["--attach", "tc"]
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "kill.ipfix"), os.path.join(tmp, "kill.log"), extra=tc)
        ex.kill()
        if not our_filters(a, if_a):
            failures.append("after kill -9 no filter was left: the leftover check below proves nothing")
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "restart.ipfix"), os.path.join(tmp, "restart.log"),
                      extra=tc)
        if "left by an earlier run" not in ex.text():
            failures.append("restart did not report removing the leftover filter:\n" + ex.text())
        ex.stop()
        left = our_filters(a, if_a)
        if left:
            failures.append("tc filters left after restart + SIGTERM: " + "; ".join(left))
        # TCX: the kernel drops the links of a process that died
        ex = Exporter(build, a, [if_a], os.path.join(tmp, "tcx.ipfix"), os.path.join(tmp, "tcx.log"))
        tcx = "attaching with TCX links" in ex.text()
        attached = our_tcx_links()
        ex.kill()
        if tcx and len(attached) != 2:
            failures.append(f"TCX run: expected our 2 links while it ran, saw {attached}")
        left = our_filters(a, if_a)
        if tcx and left:
            failures.append("left after kill -9 of a TCX run: " + "; ".join(left))

        # 4. least privilege, starting over a filter a killed classic tc run
        # left: without CAP_SYS_ADMIN its program cannot be read, yet it
        # must go (on a kernel without TCX it would block the attach)
        if not our_filters(a, if_a):
            ex = Exporter(build, a, [if_a], os.path.join(tmp, "kill2.ipfix"), os.path.join(tmp, "kill2.log"),
                          extra=tc)
            ex.kill()
        if not our_filters(a, if_a):
            failures.append("after kill -9 of a tc run no filter was left for the least-privilege run")
        out4 = os.path.join(tmp, "caps.ipfix")
        os.chmod(tmp, 0o777)  # nobody writes the IPFIX file here
        ex = Exporter(build, a, [if_a], out4, os.path.join(tmp, "caps.log"), wrap=LEAST_PRIVILEGE)
        send_udp(b, "198.51.100.2", "198.51.100.1", PORT_B, PORT_A, N_BA, PAYLOAD_BA)
        time.sleep(0.3)
        rc = ex.stop()
        got = sum(r["packetDeltaCount"] for r in ex.records()
                  if r.get("protocolIdentifier") == 17 and r.get("flowDirection") == 0)
        if rc != 0 or got != N_BA:
            failures.append(f"with only CAP_BPF/NET_ADMIN/PERFMON: exit {rc}, {got} of {N_BA} packets:\n"
                            + ex.text())
        if "left by an earlier run" not in ex.text():
            failures.append("the least-privilege run did not report removing the leftover filter:\n" + ex.text())
        if our_filters(a, if_a):
            failures.append("tc filters left by the least-privilege run")
    return ("exact per-direction counts, no filters left after SIGTERM or kill -9 + restart, "
            "works with only CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON")


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_veth", body))
