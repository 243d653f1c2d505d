#!/usr/bin/python3
"""Integration (root): kernel packet drops on the flow records
(tp_btf/kfree_skb, [enrich] drops), in network namespaces made here.

B meters its end of a veth. In B an nftables input rule drops every UDP
datagram to port 9999 (its counter must say N afterwards):
1. A sends exactly N datagrams of P payload octets to B:9999. The ingress
   record of that flow shows packetDeltaCount N (TC ingress runs before
   netfilter), droppedPacketDeltaCount N, droppedOctetDeltaCount N*(28+P)
   and bpfixDropReason naming the netfilter drop.
2. A sends M datagrams to B:9998, where nothing listens: that flow's record
   shows M drops with reason NO_SOCKET, and no NETFILTER reason.
3. A flow nothing dropped carries 0 drops and an empty reason.
4. B sends K datagrams to A:7777 and an nftables output rule in B drops
   them before they reach the TC egress hook: no flow has them, so they are
   counted in options template 261 under NETFILTER_DROP (K packets).
5. The exporter runs with PEN 55555, which bpfix-collector --read does not
   know: it names bpfixDropReason from the RFC 5610 type records alone, and
   tshark shows those type records (informationElementName).
6. With [enrich] drops = false the flow template has no drop elements.
7. B serves a TCP connection (port 9100) whose data beyond 3000 bytes an
   nftables output rule in B drops (B's socket keeps retransmitting): the
   egress record of that flow shows drops and bpfixDropTcpState 1
   (ESTABLISHED, the socket's state when its packets were dropped).
Everything made here (namespaces, veths, nft tables in them, processes) is
removed, also on failure.

usage: live_drops.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import TIME_SCALE, run_test, Exporter, Lab, send_udp, sh  # noqa: E402

N, P = 37, 200         # dropped by the nft input rule
M, PM = 11, 50         # to a closed port: NO_SOCKET
KEPT = 5               # reaches a listening socket: no drop
K = 7                  # sent by B, dropped by the nft output rule
PEN = 55555
A_IP, B_IP = "198.51.100.1", "198.51.100.2"


def nft(ns, *args):
    return sh("ip", "netns", "exec", ns, "nft", *args)


def udp_records(recs, dport, direction=0):
    return [r for r in recs if r.get("protocolIdentifier") == 17 and r.get("destinationTransportPort") == dport and
            r.get("flowDirection") == direction]


def body(build, tmp, failures, extra):
    with Lab("bpfd") as lab:
        a, b = lab.ns("A"), lab.ns("B")
        if_a, if_b = "bpda" + lab.tag, "bpdb" + lab.tag
        lab.veth(a, if_a, A_IP + "/24", b, if_b, B_IP + "/24")
        nft(b, "add", "table", "inet", "bpfixdrops")
        nft(b, "add", "chain", "inet", "bpfixdrops", "in", "{ type filter hook input priority 0; }")
        nft(b, "add", "rule", "inet", "bpfixdrops", "in", "udp", "dport", "9999", "counter", "drop")
        nft(b, "add", "chain", "inet", "bpfixdrops", "out", "{ type filter hook output priority 0; }")
        nft(b, "add", "rule", "inet", "bpfixdrops", "out", "udp", "dport", "7777", "counter", "drop")
        nft(b, "add", "rule", "inet", "bpfixdrops", "out", "tcp", "sport", "9100", "quota", "over", "3000", "bytes",
            "drop")

        conf = os.path.join(tmp, "exporter.toml")
        with open(conf, "w") as f:
            f.write(f"[export]\npen = {PEN}\n")
        out = os.path.join(tmp, "drops.ipfix")
        ex = Exporter(build, b, [if_b], out, os.path.join(tmp, "drops.log"), extra=["--config", conf])
        if "drops: tracing kernel packet drops" not in ex.text():
            failures.append("the exporter did not start the drop tracker:\n" + ex.text())
        # a listener for the flow nothing drops
        listener = subprocess.Popen(["ip", "netns", "exec", b, "/usr/bin/python3", "-c",
                                     "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                     f"s.bind(('{B_IP}',9997))\nprint('bound',flush=True)\ntime.sleep(30)\n"],
                                    stdout=subprocess.PIPE, text=True)
        try:
            if listener.stdout.readline().strip() != "bound":
                failures.append("the UDP listener on 9997 did not start")
            send_udp(a, A_IP, B_IP, 40100, 9999, N, P)
            send_udp(a, A_IP, B_IP, 40101, 9998, M, PM)
            send_udp(a, A_IP, B_IP, 40102, 9997, KEPT, PM)
            # sendto() reports each netfilter drop as EPERM
            sh("ip", "netns", "exec", b, "/usr/bin/python3", "-c",
               "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               f"s.bind(('{B_IP}',40103))\nfor i in range({K}):\n"
               f"  try: s.sendto(b'x'*{PM},('{A_IP}',7777))\n  except PermissionError: pass\n")
            # 7. a TCP sender whose packets beyond 3000 bytes are dropped
            server = subprocess.Popen(["ip", "netns", "exec", b, "/usr/bin/python3", "-c",
                                       "import socket,time\ns=socket.socket()\n"
                                       "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                                       f"s.bind(('{B_IP}',9100))\ns.listen(1)\nprint('listening',flush=True)\n"
                                       "c,_=s.accept()\nc.setblocking(False)\n"
                                       "try: c.send(b'x'*20000)\nexcept BlockingIOError: pass\n"
                                       "time.sleep(6)\n"], stdout=subprocess.PIPE, text=True)
            if server.stdout.readline().strip() != "listening":
                failures.append("the TCP server on 9100 did not start")
            client = subprocess.Popen(["ip", "netns", "exec", a, "/usr/bin/python3", "-c",
                                       "import socket,time\nc=socket.create_connection"
                                       f"(('{B_IP}',9100))\nt=time.time()\n"
                                       "while time.time()-t<6:\n  c.settimeout(0.2)\n"
                                       "  try: c.recv(65536)\n  except OSError: pass\n"])
            time.sleep(1.5 * TIME_SCALE)  # a drain interval (and TCP retransmissions)
            rc = ex.stop()
            server.kill()
            client.kill()
        finally:
            listener.kill()
            listener.wait()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        counter = nft(b, "list", "chain", "inet", "bpfixdrops", "in").stdout
        if f"packets {N} " not in counter:
            failures.append(f"the nft input rule did not drop exactly {N} packets: {counter}")

        recs = ex.records()
        # 1. netfilter drops of one flow
        sel = udp_records(recs, 9999)
        got = (sum(r.get("packetDeltaCount", 0) for r in sel), sum(r.get("droppedPacketDeltaCount", -1) for r in sel),
               sum(r.get("droppedOctetDeltaCount", -1) for r in sel))
        if got != (N, N, N * (28 + P)):
            failures.append(f"flow to 9999: packets/dropped packets/dropped octets {got}, want "
                            f"{(N, N, N * (28 + P))}: {sel}")
        reasons = {r.get("bpfixDropReason") for r in sel}
        if not reasons or not all(isinstance(x, str) and "NETFILTER" in x for x in reasons):
            failures.append(f"flow to 9999: drop reasons {reasons}, want the netfilter drop")
        # 2. no socket
        sel = udp_records(recs, 9998)
        got = (sum(r.get("packetDeltaCount", 0) for r in sel), sum(r.get("droppedPacketDeltaCount", -1) for r in sel))
        reasons2 = {r.get("bpfixDropReason") for r in sel}
        if got != (M, M) or reasons2 != {"NO_SOCKET"}:
            failures.append(f"flow to closed port 9998: packets/dropped {got} reasons {reasons2}, want "
                            f"({M}, {M}) and NO_SOCKET: {sel}")
        # 3. nothing dropped
        sel = udp_records(recs, 9997)
        if (sum(r.get("packetDeltaCount", 0) for r in sel) != KEPT or
                any(r.get("droppedPacketDeltaCount") != 0 or r.get("bpfixDropReason") != "" for r in sel)):
            failures.append(f"flow to listening port 9997: want {KEPT} packets, 0 drops, empty reason: {sel}")
        # 4. drops no flow took, per reason
        if udp_records(recs, 7777, 1):
            failures.append(f"an egress flow to 7777 exists although nft dropped it before TC: {recs}")
        opt = [r for r in recs if "droppedPacketTotalCount" in r]
        last = {}
        for r in opt:  # totals: the last record per reason counts
            last[r.get("bpfixDropReason")] = r
        nf = last.get("NETFILTER_DROP", {})
        if nf.get("droppedPacketTotalCount") != K or nf.get("droppedOctetTotalCount") != K * (28 + PM):
            failures.append(f"options template 261: NETFILTER_DROP {nf}, want {K} packets {K * (28 + PM)} octets "
                            f"(all: {list(last.values())})")
        tcp_drops = sum(r.get("droppedPacketDeltaCount", 0) for r in recs if r.get("protocolIdentifier") == 6)
        if f"dropped_in_flows={N + M + tcp_drops}" not in ex.summary():
            failures.append(f"summary does not count {N + M} + {tcp_drops} (TCP) drops in flows: {ex.summary()}")
        # 5. RFC 5610: the collector does not know PEN 55555, tshark shows the type records
        if not any("bpfixDropReason" in r for r in recs):
            failures.append("bpfix-collector --read did not name bpfixDropReason (PEN 55555) from RFC 5610")
        ts = subprocess.run(["tshark", "-r", out, "-T", "fields", "-e", "cflow.information_element_name",
                             "-e", "cflow.pie.id"], capture_output=True, text=True)
        tsv = subprocess.run(["tshark", "-r", out, "-V"], capture_output=True, text=True).stdout
        if "bpfixDropReason" not in ts.stdout and "bpfixDropReason" not in tsv:
            failures.append("tshark does not show the RFC 5610 record naming bpfixDropReason:\n" + ts.stderr)
        if f"({PEN})" not in tsv:
            failures.append(f"tshark shows no element of PEN {PEN}")

        # 7. TCP state of the dropped packets' socket
        tcp = [r for r in recs if r.get("protocolIdentifier") == 6 and r.get("sourceTransportPort") == 9100 and
               r.get("flowDirection") == 1]
        if (not tcp or sum(r.get("droppedPacketDeltaCount", 0) for r in tcp) == 0 or
                {r.get("bpfixDropTcpState") for r in tcp if r.get("droppedPacketDeltaCount")} != {1}):
            failures.append(f"TCP flow from 9100 with output drops: want drops and bpfixDropTcpState 1 "
                            f"(ESTABLISHED): {tcp}")

        # 6. drops off: no drop elements in the flow template
        conf_off = os.path.join(tmp, "off.toml")
        with open(conf_off, "w") as f:
            f.write("[enrich]\ndrops = false\n")
        ex = Exporter(build, b, [if_b], os.path.join(tmp, "off.ipfix"), os.path.join(tmp, "off.log"),
                      extra=["--config", conf_off])
        send_udp(a, A_IP, B_IP, 40100, 9999, 3, P)
        time.sleep(0.3)
        ex.stop()
        sel = udp_records(ex.records(), 9999)
        if not sel or any("droppedPacketDeltaCount" in r or "bpfixDropReason" in r or "bpfixDropTcpState" in r
                          for r in sel):
            failures.append(f"with drops = false the records still carry drop elements (or none came): {sel}")
        if "drops=off" not in ex.summary():
            failures.append("drops = false: summary does not say drops=off: " + ex.summary())
    return (f"{N} netfilter drops and {M} NO_SOCKET drops on their flows, {K} unattributed drops per reason, "
            f"names from RFC 5610 (PEN {PEN}), TCP state ESTABLISHED on a socket's dropped packets, drops=false "
            f"drops the elements")


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_drops", body))
