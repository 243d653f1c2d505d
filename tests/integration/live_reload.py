#!/usr/bin/python3
"""Integration (root): SIGHUP reloads the live exporter's configuration
file. The exporter runs in namespace A with two veths, to B and to C, and a
config file that names only the one to B at first.
1. Added interface: the config gains the veth to C; after SIGHUP it is
   metered, and the hooks on the veth to B are the same ones (nothing that
   did not change is attached again).
2. Broken configs are refused whole, and the exporter keeps running with
   what it had: a TOML syntax error, and an interface that does not exist
   (each named in the log).
3. Another collector (a second IPFIX file): records go there from the
   reload on; the first file is a complete session of its own.
4. A [[live.filter]] rule rejecting UDP to C's port: those packets are
   no longer metered (counted as filtered), with the hooks unchanged.
5. Removed interface and rule: the veth to B is no longer metered (its
   hooks are gone), the veth to C is again.
Run once as the kernel attaches by default and, where that is TCX, again
with classic tc filters.
Exactness: one UDP flow crosses each veth in every phase. Its counts must
be exact across all five reloads: one record per flow (the flow stayed
open in the table through them), holding exactly the packets sent while
its interface was metered; the exporter's flow count equals the records
in both files. Everything made here is removed, also on failure.

usage: live_reload.py BUILD_DIR
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_lib import TIME_SCALE, Exporter, Lab, our_filters, run_test, send_udp  # noqa: E402

AB = ("198.51.100.1", "198.51.100.2", 41001, 41002, 100)  # src, dst, sport, dport, payload
AC = ("203.0.113.1", "203.0.113.2", 42001, 42002, 200)


def hooks(ns, ifn):
    """Our hooks on one interface: its tc filters (named by interface: two
    interfaces carry the same programs), or every TCX link of ours."""
    return {l if l.startswith("TCX link") else f"{ifn}: {l}" for l in our_filters(ns, ifn)}


def write_config(path, interfaces, collector, attach, reject_udp_port=None):
    rule = (f'[[live.filter]]\naction = "reject"\nprotocol = "udp"\ndst_port = "{reject_udp_port}"\n'
            if reject_udp_port else "")
    with open(path, "w") as f:
        f.write(f'''[export]
collector = "file:{collector}"
[flows]
idle_timeout = 600
active_timeout = 600
[live]
interfaces = [{", ".join(f'"{i}"' for i in interfaces)}]
drain_interval = 0.2
attach = "{attach}"
{rule}[metrics]
listen = "off"
[log]
level = "info"
''')


def body(build, tmp, failures, extra):
    """Once as the kernel attaches by default; again with classic tc when
    that was TCX (the hooks differ: TCX links, or tc filters)."""
    first, tcx = run_once(build, tmp, failures, "auto")
    if not tcx:
        return first + " (tc filters: this kernel has no TCX)"
    second, _ = run_once(build, tmp, failures, "tc")
    return f"TCX: {first}; tc: {second}"


def run_once(build, tmp, all_failures, attach):
    failures = []
    cfg = os.path.join(tmp, f"exporter-{attach}.toml")
    out1, out2 = os.path.join(tmp, f"one-{attach}.ipfix"), os.path.join(tmp, f"two-{attach}.ipfix")
    with Lab() as lab:
        a, b, c = lab.ns("A"), lab.ns("B"), lab.ns("C")
        if_ab, if_ba, if_ac, if_ca = ("rab" + lab.tag, "rba" + lab.tag, "rac" + lab.tag, "rca" + lab.tag)
        lab.veth(a, if_ab, AB[0] + "/24", b, if_ba, AB[1] + "/24")
        lab.veth(a, if_ac, AC[0] + "/24", c, if_ca, AC[1] + "/24")
        sent = {"ab": 0, "ac": 0}   # packets sent while the interface was metered

        def traffic(n_ab, n_ac, ab_metered, ac_metered):
            send_udp(a, AB[0], AB[1], AB[2], AB[3], n_ab, AB[4])
            send_udp(a, AC[0], AC[1], AC[2], AC[3], n_ac, AC[4])
            sent["ab"] += n_ab if ab_metered else 0
            sent["ac"] += n_ac if ac_metered else 0
            time.sleep(0.6 * TIME_SCALE)  # a few drains: the packets are in the flow table

        def hup(needle, count):
            """SIGHUP, then wait until the log holds `needle` `count` times."""
            os.kill(ex.p.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10 * TIME_SCALE
            while time.monotonic() < deadline:
                if ex.text().count(needle) >= count:
                    break
                time.sleep(0.05)
            else:
                failures.append(f"after SIGHUP no '{needle}' (#{count}) in the log:\n" + ex.text())
            if ex.p.poll() is not None:
                raise SystemExit("FAIL the exporter exited after SIGHUP:\n" + ex.text())

        write_config(cfg, [if_ab], out1, attach)
        ex = Exporter(build, a, [], out1, os.path.join(tmp, f"exporter-{attach}.log"), config=cfg)
        try:
            traffic(50, 30, True, False)
            hooks_ab = hooks(a, if_ab)
            if not hooks_ab:
                failures.append(f"nothing of ours on {if_ab} after start")

            # 1. the veth to C joins
            write_config(cfg, [if_ab, if_ac], out1, attach)
            hup("reload: applied (changed: interfaces)", 1)
            after_ab, after_ac = hooks(a, if_ab), hooks(a, if_ac)
            if not hooks_ab <= after_ab:
                failures.append(f"the hooks on {if_ab} changed across the reload: {sorted(hooks_ab)} -> "
                                f"{sorted(after_ab)}")
            if len(after_ab | after_ac) != 2 * len(hooks_ab) or not after_ac:
                failures.append(f"{if_ac} is not metered after the reload: {sorted(after_ab | after_ac)}")
            traffic(40, 20, True, True)

            # 2. broken configs: refused, nothing changes
            with open(cfg, "w") as f:
                f.write("[live]\ninterfaces = [\n")
            hup("reload refused", 1)
            write_config(cfg, [if_ab, "nosuch" + lab.tag], out2, attach)
            hup("reload refused", 2)
            refusals = [l for l in ex.text().splitlines() if "reload refused" in l]
            if len(refusals) != 2 or os.path.basename(cfg) not in refusals[0] or "nosuch" + lab.tag not in refusals[1]:
                failures.append("the refusals do not name the problem: " + repr(refusals))
            if hooks(a, if_ab) | hooks(a, if_ac) != after_ab | after_ac:
                failures.append("a refused reload changed the hooks")
            traffic(25, 15, True, True)

            # 3. another collector
            write_config(cfg, [if_ab, if_ac], out2, attach)
            hup("reload: applied (changed: collector)", 1)
            traffic(10, 5, True, True)

            # 4. a filter rule: UDP to C's port is no longer metered; the
            # rules switch in the kernel, the hooks stay
            write_config(cfg, [if_ab, if_ac], out2, attach, reject_udp_port=AC[3])
            hup("reload: applied (changed: filters)", 1)
            if hooks(a, if_ab) | hooks(a, if_ac) != after_ab | after_ac:
                failures.append("a filter reload changed the hooks")
            traffic(6, 9, True, False)

            # 5. the veth to B leaves, the filter goes
            write_config(cfg, [if_ac], out2, attach)
            hup("reload: applied (changed: interfaces, filters)", 1)
            left_ab, left_ac = hooks(a, if_ab), hooks(a, if_ac)
            if len(left_ab | left_ac) != len(hooks_ab) or not left_ac or left_ab & hooks_ab:
                failures.append(f"{if_ab} is still metered after leaving the config: {sorted(left_ab | left_ac)}")
            traffic(7, 3, False, True)
        finally:
            rc = ex.stop()
        if rc != 0:
            failures.append(f"exporter exit code {rc}:\n" + ex.text())
        if our_filters(a, if_ab) or our_filters(a, if_ac):
            failures.append("hooks left after SIGTERM")

    ex.out = out1
    one = ex.records()
    ex.out = out2
    two = ex.records()
    print(f"[{attach}] records: {len(one)} in the first file, {len(two)} in the second")

    def flows(recs, key):
        src, dst, sport, dport, _ = key
        return [r for r in recs if r.get("protocolIdentifier") == 17 and r.get("sourceIPv4Address") == src and
                r.get("sourceTransportPort") == sport and r.get("destinationTransportPort") == dport]

    for name, key in (("ab", AB), ("ac", AC)):
        in_one, in_two = flows(one, key), flows(two, key)
        want = (sent[name], sent[name] * (28 + key[4]))
        got = [(r["packetDeltaCount"], r["octetDeltaCount"]) for r in in_one + in_two]
        # Open through every reload: one record, ended by SIGTERM, so in
        # the collector in effect then (the second file).
        if in_one or got != [want]:
            failures.append(f"flow {name}: records {got} ({len(in_one)} in the first file), want one of {want}")
        else:
            print(f"[{attach}] flow {name}: one record, {want[0]} packets, {want[1]} octets: exact across the reloads")
    filtered = re.search(r"summary: .* filtered=(\d+)", ex.text())
    if not filtered or filtered.group(1) != "9":
        failures.append(f"filtered {filtered and filtered.group(1)} packets, want the 9 sent under the rule")
    made = re.search(r"summary: .* flows=(\d+)", ex.text())
    n_flows = sum(1 for r in one + two if "packetDeltaCount" in r)
    if not made or int(made.group(1)) != n_flows:
        failures.append(f"exporter summary says {made and made.group(1)} flow records, files hold {n_flows}")
    all_failures += [f"[attach {attach}] {f}" for f in failures]
    return (f"5 reloads and 2 refusals, 9 packets filtered; flows exact ({sent['ab']} and {sent['ac']} packets), {n_flows} flow records",
            "attaching with TCX links" in ex.text())


if __name__ == "__main__":
    sys.exit(run_test(__doc__, "live_reload", body))
