"""Shared helpers for the bpfix golden tests (standard library only).

- Rec: one expected flow record; Case: one pcap recipe + expectations.
- write_pcap(): a byte-exact, deterministic pcap writer (our own, so the
  timestamps, caplen/origlen, link type, byte order and precision are exactly
  what the case says).
- run_exporter()/read_records(): run bpfix-exporter and bpfix-collector.
- normalize_got()/compare_records(): compare flow records as sorted
  multisets and print a readable diff.
"""

import datetime
import ipaddress
import json
import os
import re
import signal
import struct
import subprocess
from dataclasses import dataclass, field
from typing import List, Optional

# All cases start at this packet time (2023-11-14T22:13:20Z).
T0_NS = 1_700_000_000 * 1_000_000_000

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

TCP_FLAG_NAMES = [(0x100, "NS"), (0x80, "CWR"), (0x40, "ECE"), (0x20, "URG"),
                  (0x10, "ACK"), (0x08, "PSH"), (0x04, "RST"), (0x02, "SYN"),
                  (0x01, "FIN")]

REASONS = {1: "idle", 2: "active", 3: "end-of-flow", 4: "forced-end",
           5: "lack-of-resources"}


def ns(t_s):
    """Packet time in ns for an offset t_s (seconds, float) from T0."""
    return T0_NS + round(t_s * 1_000_000_000)


def ms(t_s):
    """flowStart/EndMilliseconds for a packet at offset t_s (truncated)."""
    return ns(t_s) // 1_000_000


@dataclass
class Frame:
    ts_ns: int
    data: bytes
    origlen: Optional[int] = None   # wire length if > len(data)


@dataclass
class Rec:
    """An expected flow record. start/end are packet-time offsets (s)."""
    src: str
    dst: str
    proto: int
    pkts: int
    octets: int
    start: float
    end: float
    reason: int
    sport: int = 0
    dport: int = 0
    flags: int = 0
    icmp: int = 0
    vlan: int = 0
    cvlan: int = 0
    tos: int = 0

    def norm(self):
        ver = ipaddress.ip_address(self.src).version
        return NormRec(ver=ver, src=str(ipaddress.ip_address(self.src)),
                       dst=str(ipaddress.ip_address(self.dst)),
                       sport=self.sport, dport=self.dport, proto=self.proto,
                       icmp=self.icmp, vlan=self.vlan, cvlan=self.cvlan,
                       tos=self.tos, pkts=self.pkts, octets=self.octets,
                       flags=self.flags, reason=self.reason,
                       start_ms=ms(self.start), end_ms=ms(self.end),
                       template=256 if ver == 4 else 257)


@dataclass
class Case:
    name: str
    desc: str
    frames: List[Frame]
    expected: List[Rec]
    linktype: int = LINKTYPE_ETHERNET
    args: List[str] = field(default_factory=list)
    non_ip: int = 0
    malformed: int = 0
    snaplen: int = 262144
    nano: bool = False
    big_endian: bool = False
    # bytes appended to the pcap image (e.g. a record cut in the middle)
    trailer: bytes = b""
    # frames in the summary, if it differs from len(frames)
    frames_total: Optional[int] = None
    # TOML text passed with --config (written next to the pcap)
    config: Optional[str] = None


# --------------------------------------------------------------------------
# pcap writing

def pcap_bytes(linktype, frames, snaplen=262144, nano=False, big_endian=False):
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for f in frames:
        sec, frac = divmod(f.ts_ns, 1_000_000_000)
        if not nano:
            assert frac % 1000 == 0, "microsecond pcap needs us timestamps"
            frac //= 1000
        caplen = len(f.data)
        origlen = f.origlen if f.origlen is not None else caplen
        assert origlen >= caplen and caplen <= snaplen
        out.append(struct.pack(e + "IIII", sec, frac, caplen, origlen))
        out.append(f.data)
    return b"".join(out)


def write_case_pcap(case, path):
    img = pcap_bytes(case.linktype, case.frames, case.snaplen, case.nano,
                     case.big_endian) + case.trailer
    with open(path, "wb") as fh:
        fh.write(img)
    return path


# --------------------------------------------------------------------------
# running the binaries

SUMMARY_RE = re.compile(
    r"^bpfix-exporter: summary: frames=(\d+) ip_packets=(\d+) ip_octets=(\d+) "
    r"non_ip=(\d+) malformed=(\d+) flows=(\d+) metadata_records=(\d+) records=(\d+) messages=(\d+) "
    r"not_sent_records=(\d+) dns_unenriched=(\d+) rtt_unenriched=(\d+)$")
SUMMARY_KEYS = ["frames", "ip_packets", "ip_octets", "non_ip", "malformed",
                "flows", "metadata_records", "records", "messages", "not_sent_records", "dns_unenriched",
                "rtt_unenriched"]


class RunError(Exception):
    pass


def describe_rc(rc):
    if rc < 0:
        try:
            return "killed by signal %d (%s)" % (-rc, signal.Signals(-rc).name)
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


def exporter_path(build_dir):
    return os.path.join(build_dir, "bin", "bpfix-exporter")


def collector_path(build_dir):
    return os.path.join(build_dir, "bin", "bpfix-collector")


def run_exporter(build_dir, pcap, out, args, timeout=30):
    cmd = [exporter_path(build_dir), "--pcap", pcap, "--collector",
           "file:" + out] + list(args)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError("exporter timed out after %d s: %s" % (timeout, " ".join(cmd)))
    return cmd, p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def parse_summary(stderr):
    lines = stderr.rstrip("\n").split("\n")
    last = lines[-1] if lines else ""
    m = SUMMARY_RE.match(last)
    if not m:
        raise RunError("last stderr line is not the summary line; last line: %r"
                       % last)
    return dict(zip(SUMMARY_KEYS, (int(x) for x in m.groups())))


def read_records(build_dir, ipfix_file, timeout=30):
    cmd = [collector_path(build_dir), "--read", ipfix_file]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError("collector timed out: %s" % " ".join(cmd))
    if p.returncode != 0:
        raise RunError("%s: %s\nstderr:\n%s" % (" ".join(cmd), describe_rc(p.returncode),
                                                p.stderr.decode(errors="replace")))
    recs = []
    for i, line in enumerate(p.stdout.decode(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            recs.append(json.loads(line))
        except ValueError as ex:
            raise RunError("collector output line %d is not JSON (%s): %r" % (i, ex, line))
    return recs


def count_ipfix_messages(path):
    """Number of IPFIX messages in an RFC 5655 file, checking the framing."""
    with open(path, "rb") as fh:
        data = fh.read()
    off, n = 0, 0
    while off < len(data):
        if len(data) - off < 16:
            raise RunError("IPFIX file %s: %d trailing bytes at offset %d"
                           % (path, len(data) - off, off))
        ver, length = struct.unpack_from("!HH", data, off)
        if ver != 10 or length < 16 or off + length > len(data):
            raise RunError("IPFIX file %s: bad message header at offset %d "
                           "(version %d, length %d)" % (path, off, ver, length))
        off += length
        n += 1
    return n


# --------------------------------------------------------------------------
# normalization and comparison

@dataclass(frozen=True)
class NormRec:
    ver: object
    src: object
    dst: object
    sport: object
    dport: object
    proto: object
    icmp: object
    vlan: object
    cvlan: object
    tos: object
    pkts: object
    octets: object
    flags: object
    reason: object
    start_ms: object
    end_ms: object
    template: object

    def sort_key(self):
        return tuple(str(x).rjust(40) for x in (
            self.ver, self.src, self.dst, self.proto, self.sport, self.dport,
            self.icmp, self.vlan, self.cvlan, self.start_ms, self.end_ms,
            self.pkts, self.octets, self.flags, self.reason, self.tos,
            self.template))

    def flow_key(self):
        return (self.ver, self.src, self.dst, self.proto, self.sport,
                self.dport, self.icmp, self.vlan, self.cvlan)

    def show(self):
        def t(v):
            if isinstance(v, int):
                return "%+.3f" % ((v - T0_NS // 1_000_000) / 1000.0)
            return repr(v)
        flags = self.flags
        if isinstance(flags, int):
            names = "|".join(n for b, n in TCP_FLAG_NAMES if flags & b) or "-"
            flags = "0x%03x(%s)" % (flags, names)
        reason = self.reason
        if isinstance(reason, int):
            reason = "%d(%s)" % (reason, REASONS.get(reason, "?"))
        a = "[%s]:%s" if self.ver == 6 else "%s:%s"
        return ("v%s %s -> %s proto %s icmp %s vlan %s/%s tos %s | pkts %s octets %s "
                "flags %s reason %s | start %s end %s (T0+s) tmpl %s" % (
                    self.ver, a % (self.src, self.sport), a % (self.dst, self.dport),
                    self.proto, self.icmp, self.vlan, self.cvlan, self.tos,
                    self.pkts, self.octets, flags, reason, t(self.start_ms),
                    t(self.end_ms), self.template))


MISSING = "<missing>"
RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")


def rfc3339_to_ms(v):
    if isinstance(v, int):
        return ("<number %d, expected RFC 3339 string>" % v)
    if not isinstance(v, str):
        return MISSING if v is None else repr(v)
    m = RFC3339_RE.match(v)
    if not m:
        return "<unparsable %r>" % v
    y, mo, d, h, mi, s, frac = m.groups()
    dt = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                           tzinfo=datetime.timezone.utc)
    epoch_s = int(dt.timestamp())
    frac_ms = int((frac or "0").ljust(3, "0")[:3])
    return epoch_s * 1000 + frac_ms


def _addr(v):
    if v is None:
        return MISSING
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return "<bad address %r>" % (v,)


def normalize_got(r):
    if "sourceIPv4Address" in r or "destinationIPv4Address" in r:
        ver, sfx = 4, "IPv4"
    elif "sourceIPv6Address" in r or "destinationIPv6Address" in r:
        ver, sfx = 6, "IPv6"
    else:
        ver, sfx = "<no address>", "IPv4"
    g = lambda k: r.get(k, MISSING)
    return NormRec(ver=ver, src=_addr(r.get("source%sAddress" % sfx)),
                   dst=_addr(r.get("destination%sAddress" % sfx)),
                   sport=g("sourceTransportPort"),
                   dport=g("destinationTransportPort"),
                   proto=g("protocolIdentifier"), icmp=g("icmpTypeCode%s" % sfx),
                   vlan=g("vlanId"), cvlan=g("dot1qCustomerVlanId"),
                   tos=g("ipClassOfService"), pkts=g("packetDeltaCount"),
                   octets=g("octetDeltaCount"), flags=g("tcpControlBits"),
                   reason=g("flowEndReason"),
                   start_ms=rfc3339_to_ms(r.get("flowStartMilliseconds")),
                   end_ms=rfc3339_to_ms(r.get("flowEndMilliseconds")),
                   template=g("templateId"))


def flow_records(recs):
    return [r for r in recs if "flowEndReason" in r]


def stats_records(recs):
    return [r for r in recs if "flowEndReason" not in r and
            ("exportedFlowRecordTotalCount" in r or "ignoredPacketTotalCount" in r)]


def compare_records(expected, got):
    """expected/got: lists of NormRec. Returns list of diff lines (empty = equal)."""
    exp_left = sorted(expected, key=NormRec.sort_key)
    got_left = sorted(got, key=NormRec.sort_key)
    common = []
    for e in list(exp_left):
        if e in got_left:
            got_left.remove(e)
            exp_left.remove(e)
            common.append(e)
    if not exp_left and not got_left:
        return []
    lines = ["flow records differ: %d expected, %d got, %d match"
             % (len(expected), len(got), len(common))]
    # pair the leftovers by flow key to show field-by-field differences
    pairs, exp_only = [], []
    for e in exp_left:
        cand = [g for g in got_left if g.flow_key() == e.flow_key()]
        if cand:
            best = min(cand, key=lambda g: abs(_num(g.start_ms) - _num(e.start_ms)))
            got_left.remove(best)
            pairs.append((e, best))
        else:
            exp_only.append(e)
    for e, g in pairs:
        diffs = ["%s expected %s got %s" % (f, _fmt(f, getattr(e, f)), _fmt(f, getattr(g, f)))
                 for f in e.__dataclass_fields__ if getattr(e, f) != getattr(g, f)]
        lines.append("  DIFFERENT  expected: " + e.show())
        lines.append("                  got: " + g.show())
        lines.append("               fields: " + "; ".join(diffs))
    for e in exp_only:
        lines.append("  MISSING    expected: " + e.show())
    for g in got_left:
        lines.append("  UNEXPECTED      got: " + g.show())
    if common:
        lines.append("  (matching records:)")
        for c in common:
            lines.append("    ok " + c.show())
    return lines


def _num(v):
    return v if isinstance(v, int) else 0


def _fmt(f, v):
    if f == "flags" and isinstance(v, int):
        return "0x%x" % v
    if f in ("start_ms", "end_ms") and isinstance(v, int):
        return "%d(T0%+.3fs)" % (v, (v - T0_NS // 1_000_000) / 1000.0)
    return repr(v) if isinstance(v, str) else str(v)


def check_summary(summary, expect):
    """expect: dict of key -> expected value. Returns list of diff lines."""
    return ["summary %s expected %s got %s" % (k, v, summary.get(k))
            for k, v in expect.items() if summary.get(k) != v]


def run_case(build_dir, case, tmpdir, extra_checks=True):
    """Run one case end to end. Returns (diff lines, summary or None, records)."""
    pcap = write_case_pcap(case, os.path.join(tmpdir, case.name + ".pcap"))
    out = os.path.join(tmpdir, case.name + ".ipfix")
    problems = []
    args = list(case.args)
    if case.config is not None:
        conf = os.path.join(tmpdir, case.name + ".toml")
        with open(conf, "w") as fh:
            fh.write(case.config)
        args += ["--config", conf]
    cmd, rc, _stdout, stderr = run_exporter(build_dir, pcap, out, args)
    if rc != 0:
        tail = "\n".join(stderr.rstrip("\n").split("\n")[-15:])
        return (["exporter %s\n  command: %s\n  stderr tail:\n%s"
                 % (describe_rc(rc), " ".join(cmd), _indent(tail))], None, [])
    try:
        summary = parse_summary(stderr)
    except RunError as ex:
        problems.append(str(ex))
        summary = None
    try:
        recs = read_records(build_dir, out)
        nmsg = count_ipfix_messages(out)
    except RunError as ex:
        return problems + [str(ex)], summary, []
    flows = flow_records(recs)
    exp = [r.norm() for r in case.expected]
    problems += compare_records(exp, [normalize_got(r) for r in flows])
    if summary is not None:
        frames = case.frames_total if case.frames_total is not None else len(case.frames)
        problems += check_summary(summary, {
            "frames": frames,
            "ip_packets": sum(r.pkts for r in case.expected),
            "ip_octets": sum(r.octets for r in case.expected),
            "non_ip": case.non_ip,
            "malformed": case.malformed,
            "flows": len(flows),
            "records": len(recs),
            "messages": nmsg,
            "not_sent_records": 0,
            "dns_unenriched": 0,
            "rtt_unenriched": 0,
        })
    if extra_checks:
        st = stats_records(recs)
        if not st:
            problems.append("no statistics options record in the IPFIX file")
        else:
            last = st[-1]
            for k, v in (("exportedFlowRecordTotalCount", len(flows)),
                         ("ignoredPacketTotalCount", case.malformed),
                         ("notSentFlowTotalCount", 0)):
                if last.get(k) != v:
                    problems.append("statistics record %s expected %s got %s"
                                    % (k, v, last.get(k, MISSING)))
    if problems:
        problems.append("  command: " + " ".join(cmd))
    return problems, summary, recs


def _indent(s, n=4):
    return "\n".join(" " * n + l for l in s.split("\n"))
