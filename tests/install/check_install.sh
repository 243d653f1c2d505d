#!/usr/bin/env bash
# Install tier: `cmake --install` of BUILD_DIR into a scratch DESTDIR puts
# every file where the FHS and GNUInstallDirs say, the unit names the
# installed paths, the installed exporter validates the installed example
# config, and the installed collector runs. No root; removes what it made.
#
# Usage: check_install.sh BUILD_DIR
set -euo pipefail
(($# == 1)) || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
dest=$(mktemp -d /tmp/bpfix-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL install: $*" >&2; exit 1; }

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
[[ -n $prefix ]] || fail "no CMAKE_INSTALL_PREFIX in $build/CMakeCache.txt"
DESTDIR=$dest cmake --install "$build" >"$dest.log" 2>&1 || { cat "$dest.log" >&2; rm -f "$dest.log"; fail "cmake --install failed"; }
rm -f "$dest.log"
root=$dest$prefix
# sysconfdir is /etc for the /usr prefix, PREFIX/etc otherwise (GNUInstallDirs)
if [[ $prefix == /usr ]]; then etc=$dest/etc; else etc=$root/etc; fi

want=(
  "$root/bin/bpfix-exporter" "$root/bin/bpfix-collector"
  "$etc/bpfix/exporter.toml" "$etc/bpfix/collector.toml"
  "$root/share/doc/bpfix/README.md" "$root/share/doc/bpfix/examples/exporter.toml"
  "$root/share/doc/bpfix/examples/collector.toml"
  "$root/lib/systemd/system/bpfix-exporter.service" "$root/lib/systemd/system/bpfix-collector.service"
  "$root/lib/systemd/system/bpfix-collector@.service" "$root/lib/systemd/system/bpfix-collector.socket"
  "$root/share/bpfix/bpfix-elements.xml" "$root/share/bpfix/bpfix-elements.libfds.xml"
  "$root/share/bpfix/bpfix-elements.pmacct.lst"
  "$root/share/man/man8/bpfix-exporter.8" "$root/share/man/man8/bpfix-collector.8"
)
for f in "${want[@]}"; do
  [[ -f $f ]] || fail "missing ${f#"$dest"} (installed: $(cd "$dest" && find . -type f | sort | tr '\n' ' '))"
done
for f in "$root/bin/bpfix-exporter" "$root/bin/bpfix-collector"; do
  [[ -x $f ]] || fail "${f#"$dest"} is not executable"
done
# Nothing else: no test, benchmark or build helper is installed.
extra=$(cd "$dest" && find . -type f | sort | while read -r f; do
  found=0
  for w in "${want[@]}"; do [[ $dest/${f#./} == "$w" ]] && found=1; done
  ((found)) || echo "${f#.}"
done)
[[ -z $extra ]] || fail "installed files nobody asked for: $extra"

units=$root/lib/systemd/system
for unit in "$units"/bpfix-*.service; do
  grep -qE '@[A-Z_]+@' "$unit" && fail "unconfigured @VARIABLE@ left in ${unit#"$dest"}: $(grep -E '@[A-Z_]+@' "$unit")"
  grep -qx 'Type=notify' "$unit" || fail "${unit#"$dest"} is not Type=notify"
  grep -q '^WatchdogSec=' "$unit" || fail "${unit#"$dest"} sets no WatchdogSec"
done
grep -qE '@[A-Z_]+@' "$units/bpfix-collector.socket" && fail "unconfigured @VARIABLE@ left in bpfix-collector.socket"
sysconf=${etc#"$dest"}/bpfix
check_exec() {  # UNIT, the ExecStart it must have
  grep -qxF "ExecStart=$2" "$units/$1" ||
    fail "$1: ExecStart does not name the installed paths: $(grep '^ExecStart=' "$units/$1") (want $2)"
}
check_exec bpfix-exporter.service "$prefix/bin/bpfix-exporter --config $sysconf/exporter.toml"
check_exec bpfix-collector.service \
  "$prefix/bin/bpfix-collector --config $sysconf/collector.toml --output-dir \${STATE_DIRECTORY}"
check_exec bpfix-collector@.service \
  "$prefix/bin/bpfix-collector --config $sysconf/collector-%i.toml --output-dir \${STATE_DIRECTORY}"

# The man pages render without warnings and document every option the
# programs' --help lists (they would drift otherwise).
for prog in bpfix-exporter bpfix-collector; do
  page=$root/share/man/man8/$prog.8
  warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l $page failed: $warn"
  [[ -z $warn ]] || fail "$prog.8 renders with warnings: $warn"
  text=$(sed 's/\\-/-/g' "$page")
  for opt in $("$root/bin/$prog" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qF -- "$opt" <<<"$text" || fail "$prog.8 does not document $opt (from $prog --help)"
  done
done

# The installed programs run, and the installed example config is valid.
# The shipped exporter.toml names no interface: --check-config says what
# the start would (nothing to meter); with one named, the file is valid.
out=$("$root/bin/bpfix-exporter" --config "$etc/bpfix/exporter.toml" --check-config 2>&1) &&
  fail "--check-config passed the shipped exporter.toml, which meters nothing (the start refuses it)"
grep -q "nothing to meter" <<<"$out" || fail "--check-config on the shipped exporter.toml said: $out"
"$root/bin/bpfix-exporter" --config "$etc/bpfix/exporter.toml" --interface 'bpfix-check*' --check-config >/dev/null ||
  fail "the installed exporter refuses the installed example config"
"$root/bin/bpfix-collector" --config "$etc/bpfix/collector.toml" --listen udp://127.0.0.1:0 \
  --output-dir "$dest" --check-config >/dev/null || fail "the installed collector refuses the installed example config"
echo "ok install: ${#want[@]} files under $prefix (sysconfdir ${etc#"$dest"}), 3 service units (Type=notify, watchdog) with the installed paths and bpfix-collector.socket, man pages covering every option, example configs valid"
