#!/usr/bin/python3
"""The collector against hostile and careless peers (no root: loopback
only; every peer scripted here, bounded in count and time). Each part
reproduces a way the collector used to lose records silently or fall over
(issue 19), and checks the counters an operator reads:

1. data for a template the session never received is counted as
   unknown_template (sets and, from the next sequence number, records),
   with a log line naming the exporter, never as lost_in_transit;
2. one datagram with a sequence number 2^31-1 ahead adds nothing to
   lost_in_transit (implausible_sequence=1); a real gap of 5 records still
   counts 5;
3. /metrics counters per exporter never go back: malformed messages on
   short TCP connections (a broken header, a message cut off by the end of
   the connection, 3 bytes of a header) stay counted after the
   connections close;
4. observation domains per session are bounded ([limits] max_domains) and
   so are the /metrics rows ([limits] max_exporter_series: the rest share
   exporter="other");
5. idle TCP connections cannot lock exporters out: with a descriptor limit
   of 400 and 200 idle connections open, a TCP exporter and a UDP exporter
   still deliver every record, idle connections are closed by
   connection_start_timeout and counted, /health answers, and the
   collector does not spin (CPU over 2 s well under one core);
6. HTTP clients that send half a request are closed after
   [metrics] header_timeout (counted);
7. bpfix-exporter --collector file:X refuses X when it is the input
   capture, and a failed run leaves an existing X as it was (a good run
   replaces it; no .partial is left either way);
8. a second collector on a UDP port already in use is refused at start;
9. .templates stays bounded: a file of a session gone, older than
   udp_template_lifetime, is removed (counted); an open session's is kept;
10. a pcap API answer over [metrics] pcap_max_memory is refused with 413;
    a request while [metrics] pcap_max_requests transfers run gets 503; a
    404 names neither the data directory nor the exporters with packets
    (the log does);
11. a TCP exporter the collector refuses ([listen] allow) counts every
    record it wrote as not sent and exits non-zero (it used to exit 0 with
    not_sent_records=0); one it accepts confirms delivery by the
    collector's end of the connection.

usage: collector_hostile.py BUILD_DIR
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from collector_lib import Collector  # noqa: E402

TEMPLATE = struct.pack("!HH", 300, 4) + struct.pack("!HHHHHHHH", 8, 4, 12, 4, 2, 8, 1, 8)


def message(seq, sets, domain=7):
    body = b"".join(struct.pack("!HH", sid, 4 + len(data)) + data for sid, data in sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, domain) + body


def data_set(n, first, tid=300):
    return (tid, b"".join(struct.pack("!4s4sQQ", bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), first + i, 100)
                          for i in range(n)))


def start(build, tmp, name, config="", nofile=None):
    """A collector on 127.0.0.1 (UDP and TCP) with `config` as its file."""
    out = os.path.join(tmp, name)
    os.makedirs(out, exist_ok=True)
    conf = os.path.join(tmp, name + ".toml")
    with open(conf, "w") as f:
        f.write(config)
    c = Collector(build, out, os.path.join(tmp, name + ".log"), ["--config", conf],
                  listen=("udp://127.0.0.1:0", "tcp://127.0.0.1:0"), nofile=nofile)
    c.out = out
    return c


def stop(c):
    """Stops it; its summary, values as numbers."""
    c.stop()
    return {k: int(v) for k, v in c.summary().items()}


def records(c):
    n = 0
    for name in os.listdir(c.out):
        if name.endswith(".jsonl"):
            with open(os.path.join(c.out, name)) as f:
                n += sum(1 for line in f if json.loads(line).get("templateId") == 300)
    return n


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bpfix-collector-hostile-")
    failures = []
    procs, socks = [], []
    try:
        # 1 + 2: unknown templates and sequence jumps, over UDP
        c = start(build, tmp, "c1")
        procs.append(c.p)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(s)
        dst = ("127.0.0.1", c.udp)
        s.sendto(message(0, [data_set(4, 0)]), dst)                 # no template yet: 4 records
        s.sendto(message(4, [(2, TEMPLATE), data_set(3, 10)]), dst)  # now decodable
        s.sendto(message(7 + 0x7fffffff, [data_set(1, 20)]), dst)   # a stray far ahead
        s.sendto(message(7, [data_set(2, 30)]), dst)                 # the real numbering goes on
        s.sendto(message(14, [data_set(2, 40)]), dst)                # 5 records really lost
        time.sleep(0.5)
        lost = c.metric("bpfix_collector_lost_records_total", 'exporter="127.0.0.1",domain="7"')
        unknown = c.metric("bpfix_collector_unknown_template_sets_total", 'exporter="127.0.0.1",domain="7"')
        sm = stop(c)
        want = {"unknown_template_sets": 1, "unknown_template_records": 4, "lost_in_transit": 5,
                "implausible_sequence": 1, "records": 8}
        got = {k: sm.get(k) for k in want}
        if got != want or lost != 5 or unknown != 1:
            failures.append(f"sequence/unknown template: summary {got}, want {want}; /metrics lost {lost} unknown "
                            f"{unknown}")
        if not re.search(r"exporter 127\.0\.0\.1:\d+: 1 data set\(s\) for a template it has not sent "
                         r"\(last: template 300 in domain 7\)", c.text()):
            failures.append("unknown template: no log line naming the exporter and the template:\n" + c.text()[-800:])

        # 3: malformed input on short TCP connections stays counted
        c = start(build, tmp, "c3")
        procs.append(c.p)
        for payload in (struct.pack("!HHIII", 9, 16, 0, 0, 0),          # not version 10
                        message(0, [(2, TEMPLATE)])[:20],                 # cut off by the end
                        b"\x00\x0a\x00"):                                 # 3 bytes of a header
            t = socket.create_connection(("127.0.0.1", c.tcp))
            t.sendall(payload)
            t.close()
        deadline = time.monotonic() + 5
        malformed = None
        while time.monotonic() < deadline:
            malformed = c.metric("bpfix_collector_all_malformed_messages_total")
            if malformed == 3 and c.metric("bpfix_collector_connections") == 0:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        again = c.metric("bpfix_collector_all_malformed_messages_total")
        sm = stop(c)
        if malformed != 3 or again != 3 or sm.get("malformed") != 3:
            failures.append(f"short TCP connections: malformed on /metrics {malformed} then {again}, summary "
                            f"{sm.get('malformed')}, want 3 (a broken header, a cut message, a cut header)")

        # 4: domains per session and /metrics rows are bounded
        c = start(build, tmp, "c4", "[limits]\nmax_domains = 16\nmax_exporter_series = 8\n")
        procs.append(c.p)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(s)
        for d in range(1000):
            s.sendto(message(0, [], domain=d), ("127.0.0.1", c.udp))
        time.sleep(0.5)
        body = c.get("/metrics")
        rows = [l for l in body.splitlines() if l.startswith("bpfix_collector_messages_total{")]
        sm = stop(c)
        if len(rows) != 9 or sm.get("domain_limit_hits") != 1000 - 16 or sm.get("messages") != 16:
            failures.append(f"domains: {len(rows)} rows (want 8 and 'other'), domain_limit_hits "
                            f"{sm.get('domain_limit_hits')} (want 984), messages {sm.get('messages')} (want 16)")

        # 5: idle TCP connections do not lock exporters out, nor spin the loop
        c = start(build, tmp, "c5", "[limits]\nconnection_start_timeout = 3\nmax_connections_per_address = 1000\n",
                      nofile=400)
        procs.append(c.p)
        idle = []
        for _ in range(200):
            t = socket.socket()
            t.settimeout(2)
            t.connect(("127.0.0.1", c.tcp))
            idle.append(t)
        socks += idle
        time.sleep(0.5)
        cpu0 = cpu_seconds(c.p.pid)
        time.sleep(2)
        cpu = cpu_seconds(c.p.pid) - cpu0
        health_ok = "ok" in c.get("/health", timeout=3)
        t = socket.create_connection(("127.0.0.1", c.tcp))
        socks.append(t)
        t.sendall(message(0, [(2, TEMPLATE), data_set(50, 0)]))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(u)
        u.sendto(message(0, [(2, TEMPLATE), data_set(50, 100)]), ("127.0.0.1", c.udp))
        time.sleep(4)  # past connection_start_timeout: the idle ones go
        timed_out = c.metric("bpfix_collector_timed_out_connections_total")
        t.close()
        time.sleep(0.3)
        sm = stop(c)
        got = records(c)
        if "holds" not in c.text() or "exporter connections, not [limits] max_connections" not in c.text():
            failures.append("descriptor limit 400: no warning that it holds fewer connections than max_connections")
        if got != 100 or not health_ok or cpu > 0.5:
            failures.append(f"200 idle connections: {got} records stored (want 100: 50 TCP + 50 UDP), /health "
                            f"{'answered' if health_ok else 'did not answer'}, {cpu:.2f} CPU-s in 2 s (want < 0.5)")
        # each idle connection ends one way: evicted for a newer one, refused,
        # or closed by connection_start_timeout
        ended = sm.get("evicted_connections", 0) + sm.get("rejected_connections", 0) + \
            sm.get("timed_out_connections", 0)
        if not timed_out or ended != 200:
            failures.append(f"idle connections: {ended} accounted (want 200), timed out {timed_out}, summary {sm}")
        for x in idle:
            x.close()

        # 6: half-sent HTTP requests are closed; pcap API transfers are capped
        c = start(build, tmp, "c6", "[metrics]\nheader_timeout = 1\n")
        procs.append(c.p)
        half = socket.create_connection(("127.0.0.1", c.metrics))
        socks.append(half)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        half.settimeout(5)
        t0 = time.monotonic()
        try:
            closed = half.recv(100) == b""
        except (socket.timeout, ConnectionResetError):
            closed = False
        waited = time.monotonic() - t0
        timeouts = c.metric("bpfix_collector_http_timeouts_total")
        stop(c)
        if not closed or waited > 3 or timeouts != 1:
            failures.append(f"half-sent HTTP request: closed={closed} after {waited:.1f} s, http_timeouts {timeouts} "
                            f"(want closed within header_timeout = 1 s, counted)")

        # 8: a second collector on a UDP port in use is refused
        c = start(build, tmp, "c8")
        procs.append(c.p)
        other = os.path.join(tmp, "c8-other")
        os.mkdir(other)
        r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--listen", f"udp://127.0.0.1:{c.udp}",
                            "--output-dir", other, "--metrics", "off"], capture_output=True, text=True, timeout=10)
        stop(c)
        if r.returncode == 0 or "another process already receives on udp://127.0.0.1" not in r.stderr:
            failures.append(f"a second collector on the same UDP port: rc {r.returncode}: {r.stderr[-300:]}")

        # 9: .templates stays bounded: files of sessions gone are pruned
        # once older than udp_template_lifetime; an open session's file stays
        os.makedirs(os.path.join(tmp, "c9", ".templates"))
        stale = os.path.join(tmp, "c9", ".templates", "udp-10.9.9.9-5000.ipfix")
        with open(stale, "wb") as f:
            f.write(message(0, [(2, TEMPLATE)]))
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
        c = start(build, tmp, "c9", "[limits]\nudp_template_lifetime = 1\nudp_session_timeout = 4\n")
        procs.append(c.p)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(s)
        s.sendto(message(0, [(2, TEMPLATE), data_set(1, 0)]), ("127.0.0.1", c.udp))
        time.sleep(2.5)  # its file is older than the lifetime now, but in use
        live = [n for n in os.listdir(os.path.join(c.out, ".templates")) if n.startswith("udp-127.0.0.1-")]
        sm = stop(c)
        if os.path.exists(stale) or len(live) != 1 or sm.get("template_files_removed") != 1:
            failures.append(f".templates: stale file left {os.path.exists(stale)}, open session's files {live}, "
                            f"template_files_removed {sm.get('template_files_removed')} (want removed, 1 kept, 1)")

        # 10: a pcap API answer larger than pcap_max_memory is refused (413)
        c = start(build, tmp, "c10", "[metrics]\npcap_max_memory = 1048576\n")
        procs.append(c.p)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(s)
        tmpl = struct.pack("!HH", 400, 2) + struct.pack("!HHHH", 323, 8, 315, 65535)
        now_ms = int(time.time() * 1000)
        for i in range(1200):
            rec = struct.pack("!QBH", now_ms, 255, 1000) + bytes(1000)
            sets = [(2, tmpl)] if i == 0 else []
            s.sendto(message(i, sets + [(400, rec)]), ("127.0.0.1", c.udp))
        time.sleep(1)
        span = time.strftime("from=%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)) + \
            time.strftime("&to=%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        try:
            c.get("/api/v1/pcap?" + span)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        small = urllib.request.urlopen(f"http://127.0.0.1:{c.metrics}/api/v1/pcap?{span}&filter=tcp+port+1",
                                       timeout=5).read()  # nothing matches: a header only
        # 10c: a 404 names neither the data directory nor the exporters that
        # have packets (any client may ask); the operator's log does
        try:
            c.get(f"/api/v1/pcap?{span}&exporter=192.0.2.99")
            nf_status, nf_body = 200, ""
        except urllib.error.HTTPError as e:
            nf_status, nf_body = e.code, e.read().decode(errors="replace")
        stop(c)
        with open(c.log) as f:
            c_log = f.read()
        if nf_status != 404 or nf_body.strip() != "no packets stored for exporter '192.0.2.99'" or \
                "exporters with packets: 127.0.0.1" not in c_log or c.out not in c_log:
            failures.append(f"pcap API 404: HTTP {nf_status} {nf_body[:300]!r} (want only 'no packets stored for "
                            "exporter ...'); the log must name the directory and the exporters with packets")
        if status != 413 or len(small) != 24:
            failures.append(f"pcap API: {status} for 1.2 MB of packets over pcap_max_memory 1 MiB (want 413); "
                            f"a query matching nothing gave {len(small)} bytes (want the 24-byte header)")

        # 10b: over [metrics] pcap_max_requests transfers, a request is answered 503 (counted)
        c = start(build, tmp, "c10b", "[metrics]\npcap_max_requests = 1\n")
        procs.append(c.p)
        for i in range(3000):
            rec = struct.pack("!QBH", now_ms, 255, 1000) + bytes(1000)
            sets = [(2, tmpl)] if i == 0 else []
            s.sendto(message(i, sets + [(400, rec)]), ("127.0.0.1", c.udp))
            if i % 500 == 499:
                time.sleep(0.05)
        time.sleep(1)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(slow)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing: 3 MB stay
        slow.connect(("127.0.0.1", c.metrics))
        slow.sendall(f"GET /api/v1/pcap?{span} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)
        try:
            c.get("/api/v1/pcap?" + span)
            busy_status = 200
        except urllib.error.HTTPError as e:
            busy_status = e.code
        busy = c.metric("bpfix_collector_http_busy_total")
        slow.close()
        stop(c)
        print(f"part 10b: a second pcap transfer while one runs: {busy_status}, http_busy_total {busy}")
        if busy_status != 503 or busy != 1:
            failures.append(f"pcap API: a second transfer over pcap_max_requests 1 got {busy_status} (want 503), "
                            f"http_busy_total {busy} (want 1)")

        # 7: the exporter's file output never destroys what is there
        pcap = os.path.join(tmp, "in.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "interop", "make_pcap.py"), pcap], check=True,
                       capture_output=True)
        exporter = os.path.join(build, "bin", "bpfix-exporter")
        with open(pcap, "rb") as f:
            capture = f.read()
        r = subprocess.run([exporter, "--pcap", pcap, "--collector", "file:" + os.path.join(tmp, ".", "in.pcap")],
                           capture_output=True, text=True)
        with open(pcap, "rb") as f:
            same = f.read() == capture
        if r.returncode == 0 or not same or "is the input capture" not in r.stderr:
            failures.append(f"--collector file: naming the input: rc {r.returncode}, capture intact {same}: "
                            f"{r.stderr[-300:]}")
        out = os.path.join(tmp, "flows.ipfix")
        with open(out, "wb") as f:
            f.write(b"earlier flows")
        r = subprocess.run([exporter, "--pcap", os.path.join(tmp, "c1.log"), "--collector", "file:" + out],
                           capture_output=True, text=True)
        with open(out, "rb") as f:
            kept = f.read() == b"earlier flows"
        if r.returncode == 0 or not kept or os.path.exists(out + ".partial"):
            failures.append(f"a failed run: rc {r.returncode}, earlier file kept {kept}, "
                            f".partial left {os.path.exists(out + '.partial')}")
        r = subprocess.run([exporter, "--pcap", pcap, "--collector", "file:" + out], capture_output=True, text=True)
        with open(out, "rb") as f:
            replaced = f.read(2) == b"\x00\x0a"
        if r.returncode != 0 or not replaced or os.path.exists(out + ".partial"):
            failures.append(f"a good run: rc {r.returncode}, file replaced by IPFIX {replaced}: {r.stderr[-300:]}")

        # 11: a TCP exporter the collector refuses ([listen] allow) counts
        # what it wrote as not sent and fails; one it accepts waits for the
        # collector's end of the connection and counts nothing.
        def tcp_export(c):
            r = subprocess.run([exporter, "--pcap", pcap, "--collector", f"tcp://127.0.0.1:{c.tcp}"],
                               capture_output=True, text=True, timeout=60)
            m = re.search(r"summary: (.*)", r.stderr)
            return r, {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())} if m else {}

        c = start(build, tmp, "c11", '[listen]\nallow = ["10.0.0.0/8"]\n')
        procs.append(c.p)
        r, es = tcp_export(c)
        sm = stop(c)
        print(f"part 11: exporter refused by allow: rc {r.returncode}, records={es.get('records')} "
              f"not_sent_records={es.get('not_sent_records')}; collector records={sm.get('records')} "
              f"refused_exporters={sm.get('refused_exporters')}")
        if r.returncode == 0 or not es.get("records") or es.get("not_sent_records") != es.get("records") \
                or sm.get("records") != 0:
            failures.append(f"refused TCP exporter: rc {r.returncode}, summary {es}, collector records "
                            f"{sm.get('records')}: {r.stderr[-600:]}")
        c = start(build, tmp, "c11b")
        procs.append(c.p)
        r, es = tcp_export(c)
        sm = stop(c)
        print(f"part 11: exporter accepted: rc {r.returncode}, records={es.get('records')} "
              f"not_sent_records={es.get('not_sent_records')}; collector records={sm.get('records')}")
        if r.returncode != 0 or es.get("not_sent_records") != 0 or sm.get("records") != es.get("records"):
            failures.append(f"accepted TCP exporter: rc {r.returncode}, summary {es}, collector records "
                            f"{sm.get('records')}: {r.stderr[-600:]}")
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if not failures:
        print("collector_hostile: all parts passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
