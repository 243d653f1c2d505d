#!/usr/bin/python3
"""The third-party definition files for bpfix's enterprise elements
(templates/generate_defs.py):

1. the copies committed in templates/ are what the generator makes from
   templates/bpfix-elements.xml (`--check`);
2. from a registry of three test elements (unsigned32, string,
   ipv4Address) under PEN 4242, the generated pmacct primitives file lets a
   real nfacctd (pmacct) name and decode them: an IPFIX message with those
   elements, sent over UDP on loopback (port 47740), comes out of nfacctd's
   print plugin with the values sent;
3. the generated libfds (ipfixcol2) file is well-formed XML with one element
   per registry record, its id, name and IPFIX type, under the PEN asked
   for. (ipfixcol2 is not packaged for Debian 12; this checks structure.)

usage: element_defs.py SOURCE_DIR
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PORT = 47740
REGISTRY = """<?xml version="1.0" encoding="UTF-8"?>
<registry xmlns="http://www.iana.org/assignments" xmlns:cert="http://www.cert.org/ipfix" id="ipfix">
  <registry id="ipfix-information-elements">
    <record><name>bpfixTestLatencyMicroseconds</name><dataType>unsigned32</dataType>
      <dataTypeSemantics>quantity</dataTypeSemantics><elementId>1</elementId>
      <cert:enterpriseId>32473</cert:enterpriseId><units>microseconds</units>
      <description><paragraph>A test latency.</paragraph></description></record>
    <record><name>bpfixTestQueryName</name><dataType>string</dataType>
      <dataTypeSemantics>default</dataTypeSemantics><elementId>2</elementId>
      <cert:enterpriseId>32473</cert:enterpriseId>
      <description><paragraph>A test name.</paragraph></description></record>
    <record><name>bpfixTestPeer</name><dataType>ipv4Address</dataType>
      <dataTypeSemantics>default</dataTypeSemantics><elementId>3</elementId>
      <cert:enterpriseId>32473</cert:enterpriseId>
      <description><paragraph>A test address.</paragraph></description></record>
  </registry>
</registry>
"""


def ipfix(seq, sets):
    body = b"".join(struct.pack("!HH", sid, 4 + len(d)) + d for sid, d in sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, 1) + body


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    src = sys.argv[1]
    gen = os.path.join(src, "templates", "generate_defs.py")
    failures = []
    r = subprocess.run([sys.executable, gen, "--check", os.path.join(src, "templates", "bpfix-elements.xml"),
                        os.path.join(src, "templates")], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append("committed definition files: " + r.stderr.strip())

    tmp = tempfile.mkdtemp(prefix="bpfix-defs-")
    proc = None
    try:
        reg = os.path.join(tmp, "reg.xml")
        with open(reg, "w") as f:
            f.write(REGISTRY)
        subprocess.run([sys.executable, gen, "--pen", "4242", reg, tmp], check=True, capture_output=True)

        # 3. libfds structure
        root = ET.parse(os.path.join(tmp, "bpfix-elements.libfds.xml")).getroot()
        got = [(e.findtext("id"), e.findtext("name"), e.findtext("dataType")) for e in root.findall("element")]
        want = [("1", "bpfixTestLatencyMicroseconds", "unsigned32"), ("2", "bpfixTestQueryName", "string"),
                ("3", "bpfixTestPeer", "ipv4Address")]
        if root.tag != "ipfix-elements" or root.findtext("scope/pen") != "4242" or got != want:
            failures.append(f"libfds file: root {root.tag}, pen {root.findtext('scope/pen')}, elements {got}")

        # 2. nfacctd with the generated primitives
        out = os.path.join(tmp, "out.csv")
        conf = os.path.join(tmp, "nfacctd.conf")
        with open(conf, "w") as f:
            f.write(f"daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: {PORT}\n"
                    f"aggregate_primitives: {os.path.join(tmp, 'bpfix-elements.pmacct.lst')}\nplugins: print\n"
                    "aggregate: src_host, bpfixTestLatencyMicroseconds, bpfixTestQueryName, bpfixTestPeer\n"
                    f"print_output: csv\nprint_output_file: {out}\nprint_refresh_time: 1\n")
        log = open(os.path.join(tmp, "nfacctd.log"), "w")
        proc = subprocess.Popen(["nfacctd", "-f", conf], stdout=log, stderr=subprocess.STDOUT)
        tmpl = struct.pack("!HH", 300, 4) + struct.pack("!HH", 8, 4) + struct.pack("!HHI", 0x8001, 4, 4242) + \
            struct.pack("!HHI", 0x8002, 0xFFFF, 4242) + struct.pack("!HHI", 0x8003, 4, 4242)
        name = b"www.example.org"
        rec = struct.pack("!4sI", bytes([10, 1, 2, 3]), 1234) + bytes([len(name)]) + name + bytes([192, 0, 2, 9])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rows = []
        deadline = time.monotonic() + 15
        seq = 0
        while time.monotonic() < deadline and not rows:
            # until nfacctd listens and its print plugin has written the record
            sock.sendto(ipfix(seq, [(2, tmpl), (300, rec)]), ("127.0.0.1", PORT))
            seq += 1
            time.sleep(1)
            if os.path.exists(out):
                with open(out) as f:
                    rows = [l.strip().split(",") for l in f if l.strip()]
                rows = rows[1:] if rows and rows[0][0] == "SRC_IP" else []
        sock.close()
        if not rows or any(r[:4] != ["10.1.2.3", "1234", "www.example.org", "192.0.2.9"] for r in rows):
            with open(os.path.join(tmp, "nfacctd.log")) as f:
                tail = f.read()[-600:]
            failures.append(f"nfacctd with the generated primitives printed {rows}, want 10.1.2.3,1234,"
                            f"www.example.org,192.0.2.9; log: {tail}")
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["pkill", "-f", f"nfacctd -f {tmp}"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if failures:
        return 1
    print("ok element_defs: committed definition files current; nfacctd names and decodes generated primitives; "
          "libfds file well-formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
