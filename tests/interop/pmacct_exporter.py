#!/usr/bin/python3
"""nfacctd (pmacct 1.7.7) sees what bpfix exports, with the definition file
we ship (templates/bpfix-elements.pmacct.lst):

- nfacctd loads the shipped file without a warning (it refused entries below
  comment lines longer than 256 characters) and names every primitive in it;
- it learns every template bpfix sends, options templates included (it read
  only the first of an options template set), with no "malformed" line;
- for every flow of the interop capture plus real DNS query/response pairs,
  its print plugin shows the packets, bytes and TCP flags bpfix exported and
  the value of every bpfix primitive (DNS names and codes, RTT), as
  `bpfix-collector --read` decodes them from the same export written to a
  file (TCP flags were 0 for every flow: nfacctd reads the element only when
  it is one octet).

bpfix-exporter meters the capture twice (pcap mode is deterministic): to UDP
127.0.0.1:47741, where nfacctd listens, and to an IPFIX file.

usage: pmacct_exporter.py SOURCE_DIR BUILD_DIR
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, Ether, IPv6, rdpcap, wrpcap

PORT = 47741
HERE = os.path.dirname(os.path.abspath(__file__))


def dns_frames(start):
    """Real DNS pairs: A over IPv4 (answered), AAAA over IPv6 (NXDOMAIN), and
    one query never answered."""
    out = []
    pairs = [("10.9.0.1", "10.9.0.53", 41000, "www.example.org", "A", 0, False),
             ("2001:db8:9::1", "2001:db8:9::53", 41001, "missing.example.net", "AAAA", 3, False),
             ("10.9.0.2", "10.9.0.53", 41002, "lost.example.com", "A", 0, True)]
    for i, (cli, srv, port, name, qtype, rcode, unanswered) in enumerate(pairs):
        ipl = (lambda s, d: IPv6(src=s, dst=d)) if ":" in cli else (lambda s, d: IP(src=s, dst=d))
        t = start + 0.5 + i * 0.2
        q = Ether() / ipl(cli, srv) / UDP(sport=port, dport=53) / DNS(id=0x1000 + i, rd=1, qd=DNSQR(qname=name,
                                                                                              qtype=qtype))
        q.time = t
        out.append(q)
        if unanswered:
            continue
        an = DNSRR(rrname=name, type="A", rdata="192.0.2.80") if rcode == 0 else None
        r = Ether() / ipl(srv, cli) / UDP(sport=53, dport=port) / DNS(id=0x1000 + i, qr=1, rd=1, ra=1, rcode=rcode,
                                                                        qd=DNSQR(qname=name, qtype=qtype), an=an)
        r.time = t + 0.012
        out.append(r)
    return out


def primitives(lst):
    names = []
    with open(lst) as f:
        for line in f:
            m = re.match(r"name=(\w+)\s", line)
            if m:
                names.append(m.group(1))
    return names


def flow_key(vlan, src, dst, sport, dport, proto):
    return (int(vlan), src, dst, int(sport), int(dport), proto)


PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58}


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, build = sys.argv[1], sys.argv[2]
    lst = os.path.join(src, "templates", "bpfix-elements.pmacct.lst")
    exe = os.path.join(build, "bin", "bpfix-exporter")
    coll = os.path.join(build, "bin", "bpfix-collector")
    names = primitives(lst)
    failures = []
    tmp = tempfile.mkdtemp(prefix="bpfix-pmacct-")
    proc = None
    try:
        base = os.path.join(tmp, "base.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_pcap.py"), base], check=True,
                       capture_output=True)
        frames = list(rdpcap(base))
        frames += dns_frames(float(frames[0].time))
        frames.sort(key=lambda p: float(p.time))
        pcap = os.path.join(tmp, "in.pcap")
        wrpcap(pcap, frames)

        out = os.path.join(tmp, "out.csv")
        conf = os.path.join(tmp, "nfacctd.conf")
        with open(conf, "w") as f:
            f.write(f"daemonize: false\ndebug: true\nnfacctd_ip: 127.0.0.1\nnfacctd_port: {PORT}\n"
                    f"aggregate_primitives: {lst}\nplugins: print\n"
                    "aggregate: vlan, src_host, dst_host, src_port, dst_port, proto, tcpflags, "
                    f"{', '.join(names)}\nprint_output: csv\nprint_output_file: {out}\nprint_refresh_time: 1\n")
        # nfacctd binds with SO_REUSEPORT: a leftover one on the port would
        # take the datagrams silently.
        if subprocess.run(["ss", "-Hunl", f"sport = :{PORT}"], capture_output=True, text=True).stdout.strip():
            raise RuntimeError(f"UDP port {PORT} is taken: " + subprocess.run(
                ["ss", "-Hunlp", f"sport = :{PORT}"], capture_output=True, text=True).stdout.strip())
        logpath = os.path.join(tmp, "nfacctd.log")
        proc = subprocess.Popen(["nfacctd", "-f", conf], stdout=open(logpath, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while "waiting for NetFlow/IPFIX data" not in open(logpath).read():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("nfacctd did not start: " + open(logpath).read()[-1000:])
            time.sleep(0.1)
        r = subprocess.run([exe, "--pcap", pcap, "--collector", f"udp://127.0.0.1:{PORT}"], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"bpfix-exporter exited {r.returncode}: {r.stderr[-1000:]}")
        ipfix = os.path.join(tmp, "out.ipfix")
        subprocess.run([exe, "--pcap", pcap, "--collector", f"file:{ipfix}"], check=True, capture_output=True,
                       timeout=30)
        want = {}
        read = subprocess.run([coll, "--read", ipfix], check=True, capture_output=True, text=True, timeout=30)
        for line in read.stdout.splitlines():
            rec = json.loads(line)
            if rec.get("templateId") not in (256, 257):
                continue
            v6 = "sourceIPv6Address" in rec
            k = flow_key(rec.get("vlanId", 0), rec["sourceIPv6Address" if v6 else "sourceIPv4Address"],
                         rec["destinationIPv6Address" if v6 else "destinationIPv4Address"],
                         rec["sourceTransportPort"], rec["destinationTransportPort"], rec["protocolIdentifier"])
            if k in want:
                failures.append(f"two records for {k} in the export: the comparison needs one per flow")
            want[k] = rec
        if sum(1 for v in want.values() if v.get("bpfixDnsQueryName")) < 3:
            failures.append("the export has fewer than 3 DNS records with a query name: the test checks nothing")

        # Until nfacctd's print plugin has written every flow (or 15 s).
        rows = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(1)
            if os.path.exists(out):
                with open(out) as f:
                    rows = list(csv.DictReader(f))
                if len(rows) >= len(want):
                    break
        log = open(logpath).read()
        for line in log.splitlines():
            if re.search(r"WARN|ERROR|malformed|Invalid entry", line) and "connection lost" not in line:
                failures.append("nfacctd: " + line.strip())
        learned = set(int(t) for t in re.findall(r"NfV10 template ID\s*:\s*(\d+)", log))
        for tid in (256, 257, 258, 259, 260):
            if tid not in learned:
                failures.append(f"nfacctd never learned template {tid} (learned {sorted(learned)})")
        got = {}
        for row in rows:
            proto = row["PROTOCOL"]
            proto = PROTO_NAMES.get(proto, int(proto) if proto.isdigit() else proto)
            got[flow_key(row["VLAN"], row["SRC_IP"], row["DST_IP"], row["SRC_PORT"], row["DST_PORT"], proto)] = row
        if set(got) != set(want):
            failures.append(f"nfacctd printed {len(got)} flows, bpfix exported {len(want)}; only in nfacctd: "
                            f"{sorted(set(got) - set(want))[:5]}, only in the export: {sorted(set(want) - set(got))[:5]}")
        flags_seen = 0
        for k in sorted(set(got) & set(want), key=str):
            row, rec = got[k], want[k]
            pairs = [("PACKETS", rec["packetDeltaCount"]), ("BYTES", rec["octetDeltaCount"]),
                     ("TCP_FLAGS", rec["tcpControlBits"])]
            pairs += [(n.lower(), rec.get(n, 0 if n not in ("bpfixDnsQueryName", "bpfixDropReason") else ""))
                      for n in names]
            for col, value in pairs:
                if str(row.get(col)) != str(value):
                    failures.append(f"flow {k}: nfacctd {col}={row.get(col)!r}, bpfix exported {value!r}")
            flags_seen += rec["tcpControlBits"] != 0
        if flags_seen == 0:
            failures.append("no flow with TCP flags: the flags check checks nothing")
    except Exception as e:  # noqa: BLE001 - any failure of the harness is a test failure, with its message
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["pkill", "-f", f"nfacctd -f {tmp}"], capture_output=True)
        if os.environ.get("INTEROP_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for f in failures[:40]:
        print("FAIL " + f)
    if failures:
        return 1
    print(f"ok pmacct_exporter: nfacctd loaded the shipped primitives ({len(names)}), learned every template and "
          f"printed the {len(want)} flows bpfix exported, values equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
