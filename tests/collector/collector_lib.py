"""What the collector tests share: a bpfix-collector on loopback ports the
kernel picks (read back from its log), its log, summary and /metrics."""
import os
import re
import resource
import signal
import subprocess
import time
import urllib.request


class Collector:
    """Starts bpfix-collector with `listen` URLs (port 0), writing into
    `out_dir`, metrics on 127.0.0.1:0; `nofile`: its descriptor limit."""

    def __init__(self, build, out_dir, log, extra=(), listen=("udp://127.0.0.1:0", "tcp://[::1]:0"), nofile=None,
                 passed=()):
        """`passed`: sockets handed over as systemd does (LISTEN_FDS,
        descriptors 3, 4, ...); `listen` then names the URLs they serve."""
        self.log = log

        def child():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            for i, s in enumerate(passed):
                os.dup2(s.fileno(), 200 + i)
            for i in range(len(passed)):
                os.dup2(200 + i, 3 + i)
                os.close(200 + i)

        args = [os.path.join(build, "bin", "bpfix-collector")]
        for url in listen:
            args += ["--listen", url]
        args += ["--output-dir", out_dir, "--metrics", "127.0.0.1:0", *extra]
        env = None
        if passed:
            # LISTEN_PID must be the collector's own pid: the shell's, which exec keeps.
            args = ["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"', *args]
            env = dict(os.environ, LISTEN_FDS=str(len(passed)), LISTEN_FDNAMES=":".join("test" for _ in passed))
        self.p = subprocess.Popen(args, stderr=open(log, "w"), stdout=subprocess.DEVNULL, preexec_fn=child, env=env,
                                  pass_fds=tuple(range(3, 3 + len(passed))))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.text()
            ports = {kind: re.search(rf"listening on {kind}://{re.escape(url.split('//')[1].rsplit(':', 1)[0])}:(\d+)",
                                     text)
                     for kind, url in (u.split("://")[0:1] + [u] for u in listen)}
            metrics = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", text)
            if all(ports.values()) and metrics:
                self.udp = int(ports["udp"].group(1)) if "udp" in ports else None
                self.tcp = int(ports["tcp"].group(1)) if "tcp" in ports else None
                self.metrics = int(metrics.group(1))
                return
            if self.p.poll() is not None:
                raise SystemExit("FAIL collector exited at start:\n" + text)
            time.sleep(0.05)
        self.p.kill()
        raise SystemExit("FAIL collector did not start:\n" + self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        """SIGTERM; its exit code."""
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise SystemExit("FAIL collector did not stop within 20 s after SIGTERM")

    def summary(self):
        """The exit summary's key=value pairs, values as text."""
        m = re.search(r"bpfix-collector: summary: (.*)", self.text())
        return dict(kv.split("=") for kv in m.group(1).split()) if m else {}

    def get(self, path, timeout=5):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}{path}", timeout=timeout).read().decode()

    def metric(self, name, labels=None):
        """A sample of /metrics: the unlabelled one, or the first whose
        labels contain `labels`."""
        for line in self.get("/metrics").splitlines():
            if labels is None and line.startswith(name + " "):
                return int(line.split()[-1])
            if labels is not None and line.startswith(name + "{") and labels in line:
                return int(line.split()[-1])
        return None


def udp_port_state(port):
    """(bytes queued, datagrams dropped) summed over every UDP socket bound
    to `port`, from /proc/net/udp{,6} (rx_queue and drops columns)."""
    queued = drops = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with open(path) as f:
            next(f)
            for line in f:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    queued += int(cols[4].split(":")[1], 16)
                    drops += int(cols[-1])
    return queued, drops
