#!/usr/bin/env bash
# Package tier (root, qemu): builds the Debian package (cpack) from
# BUILD_DIR, boots Debian 12's stock kernel with systemd as init on a
# writable overlay of this machine's root (tests/vm/run_vm.sh,
# BPFIX_VM_INIT=systemd) and runs in_guest.sh there: install, verify, run
# both daemons under systemd, purge. The host is not touched beyond the
# package file in BUILD_DIR.
#
# Usage: check_package.sh BUILD_DIR
set -euo pipefail
(($# == 1)) || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
[[ $prefix == /usr ]] || { echo "FAIL package: $build is configured with CMAKE_INSTALL_PREFIX=$prefix; a Debian package needs /usr (scripts/build sets it)" >&2; exit 1; }
rm -f "$build"/bpfix_*.deb
(cd "$build" && cpack -G DEB >"$build/cpack.log" 2>&1) || { cat "$build/cpack.log" >&2; echo "FAIL package: cpack failed" >&2; exit 1; }
deb=$(ls "$build"/bpfix_*.deb)
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes; Depends: $(dpkg-deb -f "$deb" Depends)"
BPFIX_VM_INIT=systemd exec "$here/../vm/run_vm.sh" "$build" "bash $here/in_guest.sh $deb"
