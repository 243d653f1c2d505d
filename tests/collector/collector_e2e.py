#!/usr/bin/python3
"""Collector end to end (no root: loopback only). bpfix-exporter --pcap
sends the interop capture to bpfix-collector over UDP (127.0.0.1) and TCP
([::1]); then:

1. totals: per transport, the JSONL flow records (count, packetDeltaCount,
   octetDeltaCount) equal what the exporter's summary says it sent, and the
   collector's summary reports no loss, malformed message or sequence gap;
   its Prometheus /metrics count the same records per exporter address,
   the closed TCP connection's included;
2. rotation under load: with --rotate-interval 1, exporters stream for
   about 4 s; files rotate, a reader polling the directory the whole time
   never finds a final-named file that is partial (every line parses, the
   file ends with a newline, no file shrinks or changes after it appeared);
   after SIGTERM no .partial file is left, and the records over all files
   equal everything sent (none lost, none duplicated);
3. kill -9 mid-stream: every final-named file is intact; a second
   collector on the same directory is refused; the next start finishes
   every .partial file the crash left (a record cut off is dropped and
   counted), so no reader misses them;
4. --allow 10.0.0.0/8 refuses 127.0.0.1 (counted, nothing written) and
   --allow 127.0.0.0/8 accepts it;
5. restart with UDP: an exporter (a socket here, fixed source port) sends
   a template and data, the collector restarts on the same port, and data
   sent after the restart without any template is decoded from the
   templates the first run kept (output-dir/.templates), in the jsonl and
   the ipfix format alike;
6. SIGHUP finishes the current file at once (renamed, readable) and the
   collector goes on into a new one;
7. --udp-session-timeout 1: a silent UDP session ends (the sessions gauge
   drops to 0, its records stay in the totals); when it sends data again,
   without templates, its kept templates decode it;
8. a config file with [limits] max_templates = 1: a second template in the
   session is refused and counted (template_limit_hits=1 in the summary),
   the first one still decodes its data;
9. --format jsonl,ipfix with --rotate-interval 1 while a UDP and a TCP
   exporter stream (the same domain and template ids: the file must
   renumber them): every .ipfix file decodes on its own, with
   bpfix-collector --read and with tshark (no malformed packet, no expert
   warning), and together they hold exactly the JSONL records;
10. --format ipfix alone (records counted, not formatted, mostly without
   libfixbuf): the summary counts every record sent, and the file holds them;
11. --format jsonl,csv,sqlite,ipfix --compress zstd with --rotate-interval 1
   while a UDP and a TCP exporter stream: every format holds exactly the
   same records (jsonl and csv read through `zstd -dc`, csv with Python's
   csv module, sqlite with Python's sqlite3, ipfix with --read), no
   .partial file is left, and the flow totals equal what was sent;
12. RFC 5610 over the network: an exporter (a socket here) announces an
   enterprise element (PEN 99999, id 5, "labWidgetCount", unsigned64) with
   a type-information options record, over UDP and over TCP, then sends
   data using it: the JSONL names it "labWidgetCount" with its value.
14. SIGHUP with a config file: [listen] allow and rotate_interval change
   at once (an exporter refused before the reload is accepted after it;
   files cover one second instead of a day from then on), a file with a TOML error is refused
   naming it and changes nothing, a restart-only key ([output] format) is
   named and not applied; every record accepted is written.

usage: collector_e2e.py BUILD_DIR
"""
import json
import socket
import struct
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(HERE, "..", "interop")
sys.path.insert(0, HERE)
from collector_lib import Collector  # noqa: E402


def export(build, pcap, url, refused=False):
    """bpfix-exporter --pcap to `url`: its summary. `refused`: the
    collector refuses it, so it must fail and count every record as not
    sent."""
    r = subprocess.run([os.path.join(build, "bin", "bpfix-exporter"), "--pcap", pcap, "--collector", url],
                       capture_output=True, text=True)
    m = re.search(r"summary: (.*)", r.stderr)
    summary = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())} if m else {}
    if refused:
        if r.returncode == 0 or not summary or summary["not_sent_records"] != summary["records"]:
            raise SystemExit(f"FAIL exporter refused by {url}: rc {r.returncode}, want a failure with every record "
                             f"not sent: {r.stderr}")
    elif r.returncode != 0:
        raise SystemExit(f"FAIL exporter to {url}: {r.stderr}")
    return summary


def ipfix_message(seq, sets, domain=7):
    body = b"".join(struct.pack("!HH", sid, 4 + len(data)) + data for sid, data in sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, domain) + body


TEMPLATE = struct.pack("!HH", 300, 4) + struct.pack("!HHHHHHHH", 8, 4, 12, 4, 2, 8, 1, 8)


def data_set(n, first):
    recs = b"".join(struct.pack("!4s4sQQ", bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), first + i, 100 * (first + i))
                    for i in range(n))
    return (300, recs)


def read_records(out_dir):
    recs = []
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".jsonl"):
            with open(os.path.join(out_dir, name)) as f:
                recs += [json.loads(line) for line in f]
    return recs


def flow_totals(recs, exporter):
    sel = [r for r in recs if r["exporter"] == exporter and r["templateId"] in (256, 257)]
    return {"flows": len(sel), "ip_packets": sum(r["packetDeltaCount"] for r in sel),
            "ip_octets": sum(r["octetDeltaCount"] for r in sel)}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bpfix-collector-e2e-")
    failures = []
    procs = []
    try:
        pcap = os.path.join(tmp, "in.pcap")
        subprocess.run(["/usr/bin/python3", os.path.join(INTEROP, "make_pcap.py"), pcap], check=True,
                       capture_output=True)

        # 1. totals over UDP and TCP
        out1 = os.path.join(tmp, "out1")
        os.mkdir(out1)
        c = Collector(build, out1, os.path.join(tmp, "c1.log"))
        procs.append(c.p)
        sent_udp = export(build, pcap, f"udp://127.0.0.1:{c.udp}")
        sent_tcp = export(build, pcap, f"tcp://[::1]:{c.tcp}")
        time.sleep(0.5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{c.metrics}/metrics", timeout=5).read().decode()
        # the TCP exporter has closed its connection by now: its rows stay
        # (counters per exporter address live as long as the process)
        per_exporter = {re.search(r'exporter="([^"]*)"', l).group(1): int(l.split()[-1]) for l in body.splitlines()
                        if l.startswith("bpfix_collector_records_total{")}
        every = [int(l.split()[-1]) for l in body.splitlines() if l.startswith("bpfix_collector_all_records_total ")]
        if per_exporter != {"127.0.0.1": sent_udp["records"], "::1": sent_tcp["records"]} or \
                every != [sent_udp["records"] + sent_tcp["records"]]:
            failures.append(f"/metrics: records per exporter {per_exporter} (want 127.0.0.1: {sent_udp['records']}, "
                            f"::1: {sent_tcp['records']}), of all {every}:\n{body}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{c.metrics}/other", timeout=5)
            failures.append("/other did not answer 404")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                failures.append(f"/other answered {e.code}, not 404")
        rc = c.stop()
        s = c.summary()
        recs = read_records(out1)
        for exporter, sent in (("127.0.0.1", sent_udp), ("::1", sent_tcp)):
            got = flow_totals(recs, exporter)
            want = {k: sent[k] for k in ("flows", "ip_packets", "ip_octets")}
            if got != want:
                failures.append(f"exporter {exporter}: collector wrote {got}, exporter sent {want}")
        if rc != 0 or s.get("written") != str(len(recs)) or any(
                s.get(k) != "0" for k in ("lost_in_transit", "malformed", "output_dropped", "udp_kernel_drops")):
            failures.append(f"collector exit {rc}, summary {s}, {len(recs)} records in files")
        if any(n.endswith(".partial") for n in os.listdir(out1)):
            failures.append(f"partial files left after SIGTERM: {os.listdir(out1)}")

        # 2. rotation under load, with a reader watching the directory
        out2 = os.path.join(tmp, "out2")
        os.mkdir(out2)
        c = Collector(build, out2, os.path.join(tmp, "c2.log"), ["--rotate-interval", "1"])
        procs.append(c.p)
        seen = {}
        stop = threading.Event()
        reader_problems = []

        def watch():
            while not stop.is_set():
                for name in os.listdir(out2):
                    if not name.endswith(".jsonl"):
                        continue
                    path = os.path.join(out2, name)
                    with open(path, "rb") as f:
                        data = f.read()
                    if data and not data.endswith(b"\n"):
                        reader_problems.append(f"{name} does not end with a newline")
                    try:
                        for line in data.splitlines():
                            json.loads(line)
                    except ValueError as e:
                        reader_problems.append(f"{name}: unparsable line: {e}")
                    if name in seen and seen[name] != data:
                        reader_problems.append(f"{name} changed after it got its final name")
                    seen.setdefault(name, data)
                time.sleep(0.02)

        t = threading.Thread(target=watch)
        t.start()
        total_sent = {"flows": 0, "records": 0}
        end = time.monotonic() + 4
        n_runs = 0
        while time.monotonic() < end:
            url = f"udp://127.0.0.1:{c.udp}" if n_runs % 2 else f"tcp://[::1]:{c.tcp}"
            sent = export(build, pcap, url)
            total_sent["records"] += sent["records"]
            n_runs += 1
        time.sleep(0.5)
        rc = c.stop()
        stop.set()
        t.join()
        failures += sorted(set(reader_problems))[:5]
        files = [n for n in os.listdir(out2) if n.endswith(".jsonl")]
        recs = read_records(out2)
        if len(files) < 3:
            failures.append(f"only {len(files)} files after 4 s with --rotate-interval 1: {files}")
        if len(recs) != total_sent["records"]:
            failures.append(f"rotation: {len(recs)} records in {len(files)} files, exporters sent "
                            f"{total_sent['records']} in {n_runs} runs")
        if any(n.endswith(".partial") for n in os.listdir(out2)):
            failures.append(f"partial files left after SIGTERM: {os.listdir(out2)}")

        # 3. kill -9 mid-stream: finalized files stay intact
        out3 = os.path.join(tmp, "out3")
        os.mkdir(out3)
        c = Collector(build, out3, os.path.join(tmp, "c3.log"), ["--rotate-interval", "1", "--format",
                                                                 "jsonl,csv,ipfix"])
        procs.append(c.p)
        # a second collector on the same directory is refused
        second = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--listen", "udp://127.0.0.1:0",
                                 "--output-dir", out3, "--metrics", "off"], capture_output=True, text=True, timeout=10)
        if second.returncode == 0 or "another bpfix-collector writes into" not in second.stderr:
            failures.append(f"a second collector on one directory: rc {second.returncode}, {second.stderr[-300:]}")
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            export(build, pcap, f"tcp://[::1]:{c.tcp}")
        c.p.kill()
        c.p.wait()
        partials = sorted(n for n in os.listdir(out3) if n.endswith(".partial"))
        # a record cut off at the crash (deterministic, whatever the kill hit)
        cut = [n for n in partials if n.endswith(".jsonl.partial")]
        if cut:
            with open(os.path.join(out3, cut[0]), "ab") as f:
                f.write(b'{"cut')
        finals = [n for n in os.listdir(out3) if n.endswith(".jsonl")]
        if not finals:
            failures.append("kill -9: no finalized file to check after 2.5 s with --rotate-interval 1")
        for n in finals:
            with open(os.path.join(out3, n), "rb") as f:
                data = f.read()
            try:
                assert data.endswith(b"\n")
                for line in data.splitlines():
                    json.loads(line)
            except (ValueError, AssertionError):
                failures.append(f"kill -9: finalized file {n} is damaged")
        # the next start finishes what the crashed run left
        c = Collector(build, out3, os.path.join(tmp, "c3b.log"), ["--format", "jsonl,csv,ipfix"])
        procs.append(c.p)
        c.stop()
        sm = c.summary()
        left = [n for n in os.listdir(out3) if n.endswith(".partial")]
        if not partials or left or int(sm.get("recovered_files", -1)) != len(partials) or \
                int(sm.get("recovered_bytes_dropped", 0)) < 5:
            failures.append(f"recovery: {partials} left by kill -9; after the next run {left} remain, summary "
                            f"recovered_files={sm.get('recovered_files')} "
                            f"recovered_bytes_dropped={sm.get('recovered_bytes_dropped')} (want all, >= 5)")
        for n in os.listdir(out3):
            path = os.path.join(out3, n)
            if n.endswith(".jsonl"):
                with open(path) as f:
                    try:
                        for line in f:
                            json.loads(line)
                    except ValueError:
                        failures.append(f"recovery: {n} holds a broken line")
            elif n.endswith(".ipfix"):
                r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", path],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"recovery: {n} does not read: {r.stderr[-200:]}")

        # 4. the exporter allowlist
        for allow, want_records in (("10.0.0.0/8", 0), ("127.0.0.0/8", sent_udp["records"])):
            out4 = os.path.join(tmp, "out4-" + allow.split("/")[0])
            os.mkdir(out4)
            c = Collector(build, out4, os.path.join(tmp, "c4.log"), ["--allow", allow])
            procs.append(c.p)
            export(build, pcap, f"udp://127.0.0.1:{c.udp}")
            time.sleep(0.3)
            c.stop()
            got = len(read_records(out4))
            refused = c.summary().get("refused_exporters")
            if got != want_records or refused != ("1" if want_records == 0 else "0"):
                failures.append(f"--allow {allow}: {got} records written (want {want_records}), "
                                f"refused_exporters={refused}")

        # 5. UDP templates survive a collector restart
        out5 = os.path.join(tmp, "out5")
        os.mkdir(out5)
        c = Collector(build, out5, os.path.join(tmp, "c5a.log"), ["--format", "jsonl,ipfix"])
        procs.append(c.p)
        port = c.udp
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(ipfix_message(0, [(2, TEMPLATE), data_set(3, 1)]), ("127.0.0.1", port))
        time.sleep(0.3)
        c.stop()
        c = Collector(build, out5, os.path.join(tmp, "c5b.log"),
                      ["--listen", f"udp://127.0.0.1:{port}", "--format", "jsonl,ipfix"])
        procs.append(c.p)
        sock.sendto(ipfix_message(3, [data_set(4, 10)]), ("127.0.0.1", c_port := port))
        time.sleep(0.3)
        c.stop()
        sock.close()
        recs = [r for r in read_records(out5) if r.get("templateId") == 300]
        counts = sorted(r["packetDeltaCount"] for r in recs)
        if counts != [1, 2, 3, 10, 11, 12, 13]:
            failures.append(f"restart: records decoded {counts}, want 1-3 before and 10-13 after the restart "
                            f"(port {c_port}): " + c.text()[-500:])
        # the ipfix format stores what arrived after the restart too
        ipfix_counts = []
        for n in sorted(os.listdir(out5)):
            if n.endswith(".ipfix"):
                r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", os.path.join(out5, n)],
                                   capture_output=True, text=True)
                ipfix_counts += [json.loads(line).get("packetDeltaCount") for line in r.stdout.splitlines()]
        if sorted(ipfix_counts) != [1, 2, 3, 10, 11, 12, 13]:
            failures.append(f"restart: the ipfix files hold {sorted(ipfix_counts)}, want 1-3 and 10-13 "
                            f"(the restored templates must reach the ipfix output); {c.summary()}")
        if "templates of an earlier run restored" not in c.text():
            failures.append("restart: the second run did not report restoring templates")

        # 6. SIGHUP: the open file is finished now
        out6 = os.path.join(tmp, "out6")
        os.mkdir(out6)
        c = Collector(build, out6, os.path.join(tmp, "c6.log"))
        procs.append(c.p)
        export(build, pcap, f"tcp://[::1]:{c.tcp}")
        time.sleep(0.3)
        c.p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(n.endswith(".jsonl") for n in os.listdir(out6)):
            time.sleep(0.05)
        after_hup = sorted(os.listdir(out6))
        export(build, pcap, f"tcp://[::1]:{c.tcp}")
        time.sleep(0.3)
        c.stop()
        finals = [n for n in os.listdir(out6) if n.endswith(".jsonl")]
        if [n for n in after_hup if n not in (".templates", ".lock")] != [n for n in after_hup if n.endswith(".jsonl")] or \
                len([n for n in after_hup if n.endswith(".jsonl")]) != 1:
            failures.append(f"SIGHUP: directory afterwards {after_hup}, want one finished file and no .partial")
        if len(finals) != 2 or len(read_records(out6)) != 2 * sent_tcp["records"]:
            failures.append(f"SIGHUP: {finals} with {len(read_records(out6))} records, want 2 files with "
                            f"{2 * sent_tcp['records']}")

        # 7. silent UDP sessions end; their templates come back with them
        out7 = os.path.join(tmp, "out7")
        os.mkdir(out7)
        c = Collector(build, out7, os.path.join(tmp, "c7.log"), ["--udp-session-timeout", "1"])
        procs.append(c.p)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(ipfix_message(0, [(2, TEMPLATE), data_set(2, 1)]), ("127.0.0.1", c.udp))

        def gauge():
            body = urllib.request.urlopen(f"http://127.0.0.1:{c.metrics}/metrics", timeout=5).read().decode()
            vals = {l.split()[0]: int(l.split()[1]) for l in body.splitlines()
                    if l.startswith(("bpfix_collector_sessions ", "bpfix_collector_all_records_total "))}
            return vals.get("bpfix_collector_sessions"), vals.get("bpfix_collector_all_records_total")

        time.sleep(0.2)
        during = gauge()
        time.sleep(2.5)
        after = gauge()
        sock.sendto(ipfix_message(2, [data_set(3, 20)]), ("127.0.0.1", c.udp))
        time.sleep(0.3)
        c.stop()
        sock.close()
        counts = sorted(r["packetDeltaCount"] for r in read_records(out7) if r.get("templateId") == 300)
        if during != (1, 2) or after != (0, 2) or counts != [1, 2, 20, 21, 22]:
            failures.append(f"UDP session timeout: sessions/records {during} while sending (want (1, 2)), {after} "
                            f"after 2.5 s silent (want (0, 2)); records {counts} (want [1, 2, 20, 21, 22])")

        # 8. the template limit, from a config file
        out8 = os.path.join(tmp, "out8")
        os.mkdir(out8)
        conf = os.path.join(tmp, "limits.toml")
        with open(conf, "w") as f:
            f.write("[limits]\nmax_templates = 1\n")
        c = Collector(build, out8, os.path.join(tmp, "c8.log"), ["--config", conf])
        procs.append(c.p)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        second = struct.pack("!HH", 301, 1) + struct.pack("!HH", 8, 4)
        sock.sendto(ipfix_message(0, [(2, TEMPLATE), data_set(2, 1)]), ("127.0.0.1", c.udp))
        sock.sendto(ipfix_message(2, [(2, second)]), ("127.0.0.1", c.udp))
        time.sleep(0.3)
        c.stop()
        sock.close()
        hits = c.summary().get("template_limit_hits")
        n = len([r for r in read_records(out8) if r.get("templateId") == 300])
        if hits != "1" or n != 2:
            failures.append(f"max_templates = 1: template_limit_hits={hits} (want 1), {n} records of the first "
                            "template (want 2)")

        # 9. the ipfix output: self-contained rotated files, same records as JSONL
        out9 = os.path.join(tmp, "out9")
        os.mkdir(out9)
        c = Collector(build, out9, os.path.join(tmp, "c9.log"), ["--format", "jsonl,ipfix", "--rotate-interval", "1"])
        procs.append(c.p)
        end = time.monotonic() + 2.5
        k = 0
        while time.monotonic() < end:
            export(build, pcap, f"udp://127.0.0.1:{c.udp}" if k % 2 else f"tcp://[::1]:{c.tcp}")
            k += 1
        time.sleep(0.5)
        c.stop()
        ipfix_files = sorted(n for n in os.listdir(out9) if n.endswith(".ipfix"))
        from_ipfix = []
        for n in ipfix_files:
            r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", os.path.join(out9, n)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"ipfix output {n} does not decode on its own: {r.stderr.strip()}")
            from_ipfix += [json.loads(l) for l in r.stdout.splitlines()]
            t = subprocess.run(["tshark", "-r", os.path.join(out9, n), "-T", "json"], capture_output=True, text=True)
            if t.returncode != 0 or "_ws.malformed" in t.stdout or '"_ws.expert.severity": "6291456"' in t.stdout \
                    or '"_ws.expert.severity": "8388608"' in t.stdout:
                failures.append(f"tshark finds problems in {n}: {t.stderr.strip()[:300]}")
        # template ids are renumbered per file; the exporter address is not in it
        strip = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("exporter", "templateId")},  # noqa: E731
                                     sort_keys=True)
        jsonl = sorted(strip(r) for r in read_records(out9))
        if len(ipfix_files) < 2 or sorted(strip(r) for r in from_ipfix) != jsonl:
            failures.append(f"ipfix output: {len(ipfix_files)} files with {len(from_ipfix)} records, JSONL has "
                            f"{len(jsonl)} ({k} exports)")

        # 10. ipfix alone: counting without formatting
        out10 = os.path.join(tmp, "out10")
        os.mkdir(out10)
        c = Collector(build, out10, os.path.join(tmp, "c10.log"), ["--format", "ipfix"])
        procs.append(c.p)
        sent = [export(build, pcap, f"udp://127.0.0.1:{c.udp}")["records"] for _ in range(3)]
        time.sleep(0.3)
        c.stop()
        in_files = 0
        for n in os.listdir(out10):
            if n.endswith(".ipfix"):
                r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", os.path.join(out10, n)],
                                   capture_output=True, text=True)
                in_files += r.stdout.count("\n")
        s10 = c.summary()
        if s10.get("records") != str(sum(sent)) or in_files != sum(sent) or any(
                n.endswith(".jsonl") for n in os.listdir(out10)):
            failures.append(f"--format ipfix: summary records={s10.get('records')}, {in_files} in the files, sent "
                            f"{sum(sent)}; files {os.listdir(out10)}")

        # 11. every format at once, jsonl and csv compressed: the same records
        out11 = os.path.join(tmp, "out11")
        os.mkdir(out11)
        c = Collector(build, out11, os.path.join(tmp, "c11.log"),
                      ["--format", "jsonl,csv,sqlite,ipfix", "--compress", "zstd", "--rotate-interval", "1"])
        procs.append(c.p)
        end = time.monotonic() + 2.2
        k = 0
        sent11 = {"records": 0, "ip_packets": 0}
        while time.monotonic() < end:
            got = export(build, pcap, f"udp://127.0.0.1:{c.udp}" if k % 2 else f"tcp://[::1]:{c.tcp}")
            for n in sent11:
                sent11[n] += got[n]
            k += 1
        time.sleep(0.5)
        rc11 = c.stop()
        names = sorted(os.listdir(out11))
        norm = lambda v: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))  # noqa: E731
        key = lambda d: json.dumps({k: v for k, v in d.items() if v not in ("", None)}, sort_keys=True)  # noqa: E731
        by_format = {"jsonl": [], "csv": [], "sqlite": [], "ipfix": []}
        import csv
        import io
        import sqlite3
        for n in names:
            path = os.path.join(out11, n)
            if n.endswith(".jsonl.zst"):
                text = subprocess.run(["zstd", "-dcq", path], capture_output=True, text=True, check=True).stdout
                by_format["jsonl"] += [key({k: norm(v) for k, v in json.loads(l).items()}) for l in text.splitlines()]
            elif n.endswith(".csv.zst"):
                text = subprocess.run(["zstd", "-dcq", path], capture_output=True, text=True, check=True).stdout
                by_format["csv"] += [key(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
            elif n.endswith(".sqlite"):
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                cur = db.execute("SELECT * FROM flows")
                cols = [d[0] for d in cur.description]
                by_format["sqlite"] += [key({c: (v if v is None or isinstance(v, str) else json.dumps(v))
                                             for c, v in zip(cols, row)}) for row in cur]
                db.close()
            elif n.endswith(".ipfix"):
                r = subprocess.run([os.path.join(build, "bin", "bpfix-collector"), "--read", path],
                                   capture_output=True, text=True)
                by_format["ipfix"] += [json.loads(l) for l in r.stdout.splitlines()]
        drop = lambda rec: key({k: v for k, v in json.loads(rec).items() if k not in ("exporter", "templateId")})  # noqa: E731
        jl = sorted(by_format["jsonl"])
        jl_no_origin = sorted(drop(r) for r in jl)
        ipfix_recs = sorted(key({k: norm(v) for k, v in r.items() if k not in ("exporter", "templateId")})
                            for r in by_format["ipfix"])
        recs11 = [json.loads(r) for r in jl]
        want = sent11["records"]
        if (rc11 != 0 or any(n.endswith(".partial") for n in names) or len(jl) != want
                or sorted(by_format["csv"]) != jl or sorted(by_format["sqlite"]) != jl or ipfix_recs != jl_no_origin
                or sum(int(r["packetDeltaCount"]) for r in recs11 if r["templateId"] in ("256", "257"))
                != sent11["ip_packets"]):
            failures.append(f"all formats: exit {rc11}, sent {want} records ({k} exports); jsonl {len(jl)}, csv "
                            f"{len(by_format['csv'])} (same: {sorted(by_format['csv']) == jl}), sqlite "
                            f"{len(by_format['sqlite'])} (same: {sorted(by_format['sqlite']) == jl}), ipfix "
                            f"{len(ipfix_recs)} (same: {ipfix_recs == jl_no_origin}); files {names}")

        # 12. enterprise elements named from RFC 5610 type records
        out12 = os.path.join(tmp, "out12")
        os.mkdir(out12)
        c = Collector(build, out12, os.path.join(tmp, "c12.log"))
        procs.append(c.p)
        name = b"labWidgetCount"
        desc = b"widgets counted by a lab exporter"
        # scope: privateEnterpriseNumber, informationElementId; then
        # dataType, semantics, units, range begin/end, name, description
        type_tmpl = struct.pack("!HHH", 400, 9, 2) + struct.pack(
            "!HHHHHHHHHHHHHHHHHH", 346, 4, 303, 2, 339, 1, 344, 1, 345, 2, 342, 8, 343, 8, 341, 0xFFFF, 340, 0xFFFF)
        type_rec = struct.pack("!IHBBHQQ", 99999, 5, 4, 2, 0, 0, 0) + bytes([len(name)]) + name + \
            bytes([len(desc)]) + desc  # unsigned64, totalCounter
        data_tmpl = struct.pack("!HH", 301, 2) + struct.pack("!HHHHI", 8, 4, 0x8000 | 5, 8, 99999)
        data12 = struct.pack("!4sQ", bytes([192, 0, 2, 1]), 4242)
        msg = lambda seq: ipfix_message(seq, [(3, type_tmpl), (400, type_rec), (2, data_tmpl)]) + \
            ipfix_message(seq, [(301, data12)])  # noqa: E731
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first = msg(0)
        cut = struct.unpack("!H", first[2:4])[0]
        sock.sendto(first[:cut], ("127.0.0.1", c.udp))
        sock.sendto(first[cut:], ("127.0.0.1", c.udp))
        sock.close()
        t = socket.create_connection(("::1", c.tcp))
        t.sendall(msg(0))
        t.close()
        time.sleep(0.5)
        c.stop()
        got12 = [r for r in read_records(out12) if r.get("templateId") == 301]
        if len(got12) != 2 or any(r.get("labWidgetCount") != 4242 or r.get("sourceIPv4Address") != "192.0.2.1"
                                  for r in got12):
            failures.append(f"RFC 5610: records of the template using the announced element: {got12} (want 2 "
                            "with labWidgetCount 4242)")

        # 13. UDP datagrams beyond an Ethernet MTU (up to the largest UDP
        # payload) decode whole
        out13 = os.path.join(tmp, "out13")
        os.mkdir(out13)
        c = Collector(build, out13, os.path.join(tmp, "c13.log"))
        procs.append(c.p)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sizes13 = [3, 90, 400, 2726]  # records of 24 bytes: messages of 92 B to 65,444 B
        sock.sendto(ipfix_message(0, [(2, TEMPLATE)]), ("127.0.0.1", c.udp))
        seq, first = 0, 1
        for n in sizes13:
            m = ipfix_message(seq, [data_set(n, first)])
            sock.sendto(m, ("127.0.0.1", c.udp))
            seq, first = seq + n, first + n
        sock.close()
        time.sleep(0.5)
        c.stop()
        got13 = sorted(r["packetDeltaCount"] for r in read_records(out13) if r.get("templateId") == 300)
        if got13 != list(range(1, first)):
            wrong = len(set(got13) - set(range(1, first)))
            failures.append(f"large UDP datagrams: {len(got13)} records decoded ({wrong} with a wrong "
                            f"packetDeltaCount), want {first - 1} with 1..{first - 1} (messages of {sizes13} "
                            "records): " + c.text()[-400:])

        # 14. SIGHUP reloads the config file: allow and rotation apply,
        # a bad file is refused, a restart-only key is named
        out14 = os.path.join(tmp, "out14")
        os.mkdir(out14)
        cfg14 = os.path.join(tmp, "c14.toml")

        def config14(allow, rotate_interval=86400, formats=("jsonl",), broken=False):
            with open(cfg14, "w") as f:
                if broken:
                    f.write("[listen]\nallow = [\"127.0.0.0/8\"\n")
                    return
                f.write(f"[listen]\nallow = [\"{allow}\"]\n[output]\nformat = {json.dumps(list(formats))}\n"
                        f"rotate_interval = {rotate_interval}\n")

        def hup14(needle, count):
            c.p.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and c.text().count(needle) < count:
                time.sleep(0.05)
            if c.text().count(needle) < count or c.p.poll() is not None:
                failures.append(f"reload: no '{needle}' (#{count}) after SIGHUP, or the collector ended:\n"
                                + c.text()[-1500:])

        config14("10.0.0.0/8")
        c = Collector(build, out14, os.path.join(tmp, "c14.log"), ["--config", cfg14])
        procs.append(c.p)
        export(build, pcap, f"tcp://[::1]:{c.tcp}", refused=True)  # not in 10.0.0.0/8
        config14("::1/128", rotate_interval=1)
        hup14("reload: applied (changed: allow, rotation)", 1)
        files_before = len([n for n in os.listdir(out14) if n.endswith(".jsonl")])
        accepted = export(build, pcap, f"tcp://[::1]:{c.tcp}")
        config14("::1/128", broken=True)
        hup14("reload refused", 1)
        config14("::1/128", rotate_interval=1, formats=("jsonl", "csv"))
        hup14("reload: output.format changed; it applies at the next start", 1)
        time.sleep(1.2)  # the next second's file
        accepted2 = export(build, pcap, f"tcp://[::1]:{c.tcp}")
        time.sleep(0.3)
        c.stop()
        summary14 = c.summary()
        recs14 = read_records(out14)
        finals14 = [n for n in os.listdir(out14) if n.endswith(".jsonl")]
        stamps = {re.match(r"flows-(\d{8}T\d{6}Z)", n).group(1) for n in finals14}
        want14 = accepted["records"] + accepted2["records"]
        if int(summary14.get("refused_exporters", 0)) < 1 or len(recs14) != want14:
            failures.append(f"reload: refused_exporters {summary14.get('refused_exporters')} (want some), {len(recs14)} "
                            f"records written (want {want14}: both exports after the reload)")
        # A day per file before the reload: both exports would share one
        # stamp (the second file numbered -1). One second per file after it.
        if files_before != 0 or len(finals14) != 2 or len(stamps) != 2:
            failures.append(f"reload: rotate_interval 1 from the reload on: files {sorted(finals14)}, want 2 with "
                            f"their own seconds ({files_before} finished before)")
        refusals = [l for l in c.text().splitlines() if "reload refused" in l]
        if not refusals or "c14.toml" not in refusals[0]:
            failures.append(f"reload: the refusal does not name the file: {refusals}")
        if [n for n in os.listdir(out14) if n.endswith(".csv")]:
            failures.append("reload: a restart-only format change was applied")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if failures:
        return 1
    print(f"ok collector_e2e: UDP and TCP totals exact; {len(files)} rotated files, every record once; "
          "files intact after kill -9; allowlist honoured; UDP templates kept across a restart; SIGHUP rotates; silent UDP sessions end; template limit; ipfix output (with and without JSONL); jsonl, csv, sqlite and ipfix hold the same records; enterprise elements named by RFC 5610 over UDP and TCP; UDP datagrams up to 64 KiB; SIGHUP reloads allow and rotation, refuses a broken file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
