#!/usr/bin/env bash
# VM tier: runs commands inside Debian 12's stock kernel under qemu, on this
# machine's own root (shared read-only), so the project's binaries and
# tests run unchanged on the kernel our users boot.
#
# Usage: run_vm.sh BUILD_DIR 'COMMAND' ['COMMAND' ...]
#
# Each COMMAND runs in the guest with bash, in BUILD_DIR, as root; the
# guest's /tmp is its own tmpfs. The exit code is 0 only when every command
# exited 0. The kernel package (the one linux-image-amd64 depends on now)
# is fetched with apt-get download and unpacked once into the cache,
# $BPFIX_VM_CACHE (default /var/cache/bpfix/vm), outside the source tree.
# Fails (never skips) when the VM cannot boot or the guest does not report.
# Needs qemu-system-x86, busybox-static and kmod (scripts/install-deps).
#
# BPFIX_VM_INIT=systemd boots systemd instead, as on an installed host: the
# root is then a writable overlay (a tmpfs over the shared host root, so
# packages can be installed and purged), the commands run from a oneshot
# unit once basic.target is reached, and the VM powers off after them.
set -euo pipefail

(($# >= 2)) || { echo "usage: $0 BUILD_DIR COMMAND..." >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
cache=${BPFIX_VM_CACHE:-/var/cache/bpfix/vm}
case $cache in /tmp | /tmp/*) echo "FAIL vm: BPFIX_VM_CACHE must not be under /tmp: the guest has its own /tmp" >&2; exit 1 ;; esac
die() { echo "FAIL vm: $*" >&2; exit 1; }
for tool in qemu-system-x86_64 busybox depmod modprobe apt-get dpkg cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done

# 1. The kernel: Debian 12's current stock image, cached.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [[ -z $pkg ]]; then
  apt-get update -qq || true
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[[ -n $pkg ]] || die "apt-cache cannot tell which kernel linux-image-amd64 stands for"
ver=${pkg#linux-image-}
kdir=$cache/$ver
if [[ ! -f $kdir/.ready ]]; then
  echo "vm: fetching $pkg into $kdir"
  mkdir -p "$cache"
  rm -rf "$kdir" "$cache/dl"
  mkdir -p "$cache/dl"
  (cd "$cache/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
    { apt-get update -qq && (cd "$cache/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null); } ||
    die "apt-get download $pkg failed"
  dpkg -x "$cache"/dl/"${pkg}"_*.deb "$kdir"
  depmod -b "$kdir" "$ver"
  rm -rf "$cache/dl"
  touch "$kdir/.ready"
fi
vmlinuz=$kdir/boot/vmlinuz-$ver
[[ -f $vmlinuz ]] || die "no $vmlinuz in the package"

# 2. An initramfs: busybox and what it takes to mount the host's root over
#    virtio 9p; every other module loads later from the cache (modprobe
#    and the kernel's own autoloading, through /lib/modules in the guest).
init_mode=${BPFIX_VM_INIT:-busybox}
[[ $init_mode == busybox || $init_mode == systemd ]] || die "BPFIX_VM_INIT=$init_mode: busybox or systemd"
append=
[[ $init_mode == systemd ]] && append="systemd.show_status=0 systemd.log_color=0"
work=$(mktemp -d /tmp/bpfix-vm.XXXXXX)
cleanup() { [[ -n ${qemu_pid:-} ]] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/initrd"/{bin,dev,proc,sys,host,mods} "$work/out"
cp "$(command -v busybox)" "$work/initrd/bin/busybox"
: >"$work/initrd/mods/order"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$kdir" -S "$ver" --show-depends "$m" | while read -r cmd path _; do
    [[ $cmd == insmod ]] || continue
    name=$(basename "$path")
    grep -qx "$name" "$work/initrd/mods/order" && continue
    cp "$path" "$work/initrd/mods/$name"
    echo "$name" >>"$work/initrd/mods/order"
  done
done
# The source and build trees the tests use, when they sit under /tmp.
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
tmp_trees=
for d in "$src" "$build"; do
  case $d in /tmp/*) tmp_trees="$tmp_trees $d" ;; esac
done
cat >"$work/initrd/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in \$(cat /mods/order); do insmod /mods/\$m || echo "GUEST insmod \$m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || echo "GUEST cannot mount the host root"
mkdir -p /mnt; mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 outshare /mnt || echo "GUEST cannot mount the results share"
if [ "$init_mode" = systemd ]; then
  mkdir -p /ovl /newroot; mount -t tmpfs -o size=2g ovl /ovl; mkdir -p /ovl/upper /ovl/work
  mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot || echo "GUEST cannot mount the overlay root"
  mkdir -p /newroot/tmp/out; mount --move /mnt /newroot/tmp/out
  mkdir -p /newroot/usr/lib/modules; ln -sfn $kdir/lib/modules/$ver /newroot/usr/lib/modules/$ver
  # Boot must not empty /tmp (Debian's tmpfiles.d says D /tmp): the trees
  # the tests use may sit there.
  echo 'd /tmp 1777 root root -' >/newroot/etc/tmpfiles.d/tmp.conf
  cat >/newroot/etc/systemd/system/vm-tier-commands.service <<UNIT
[Unit]
Description=bpfix VM tier commands
[Service]
Type=oneshot
ExecStart=/bin/bash /tmp/out/guest.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
UNIT
  umount /proc /sys /dev 2>/dev/null
  exec switch_root /newroot /lib/systemd/systemd --unit=vm-tier-commands.service
fi
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
mount -t devpts devpts /host/dev/pts 2>/dev/null
# The guest's /tmp is its own; a source or build tree under the host's /tmp
# is bound back at its path (read-only, as the rest of the host).
mkdir -p /hosttmp; mount --bind /host/tmp /hosttmp
mount -t tmpfs tmp /host/tmp; mount -t tmpfs run /host/run
for d in $tmp_trees; do mkdir -p /host\$d; mount --bind /hosttmp\${d#/tmp} /host\$d; done
mount -t bpf bpf /host/sys/fs/bpf; mount -t tracefs tracefs /host/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
mkdir -p /host/tmp/out; mount --bind /mnt /host/tmp/out
# The kernel's modules are in the cache, not in the host's /lib/modules
# (read-only here): modprobe in the tests and the kernel's autoloading (run
# from this initramfs' root) go through wrappers that point it there.
mkdir -p /host/tmp/vmbin
printf '#!/bin/sh\nexec /sbin/modprobe -d $kdir "\$@"\n' >/host/tmp/vmbin/modprobe
printf '#!/bin/busybox sh\nexec /bin/busybox chroot /host /sbin/modprobe -d $kdir "\$@"\n' >/sbin-modprobe
chmod +x /host/tmp/vmbin/modprobe /sbin-modprobe
echo /sbin-modprobe >/proc/sys/kernel/modprobe
# ctest writes its logs into the build tree
[ -d /host$build/Testing ] && mount -t tmpfs testing /host$build/Testing
# loopback up, as on any booted system (the interop tests talk over it)
chroot /host /sbin/ip link set lo up
echo "GUEST kernel \$(uname -r)"
chroot /host /bin/bash /tmp/out/guest.sh
echo GUEST-DONE
poweroff -f
INIT
chmod +x "$work/initrd/init"
{
  echo '#!/bin/bash'
  if [[ $init_mode == systemd ]]; then
    echo 'echo "GUEST kernel $(uname -r) under $(systemctl --version | head -1)"'
    echo 'trap "echo GUEST-DONE; sync; systemctl poweroff --force --force" EXIT'
    echo 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf'
  fi
  echo "cd '$build' || exit 1"
  echo 'export PATH=/tmp/vmbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root'
  # software emulation: tests scale their waits (tests/integration/netns_lib.py)
  echo "export BPFIX_TEST_TIME_SCALE=${BPFIX_TEST_TIME_SCALE:-4}"
  i=0
  for cmd in "$@"; do
    i=$((i + 1))
    printf '%s\n' "$cmd" >"$work/out/cmd-$i.sh"
    echo "echo \"GUEST-RUN $i: \$(cat /tmp/out/cmd-$i.sh)\""
    echo 'start=$(date +%s)'
    echo "bash /tmp/out/cmd-$i.sh 2>&1; rc=\$?"
    echo "echo \"GUEST-RC $i \$rc \$((\$(date +%s) - start)) s\""
    echo "echo \"$i \$rc\" >>/tmp/out/results"
  done
} >"$work/out/guest.sh"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"

# 3. Boot, run, collect.
mkdir -p "$build/Testing"
echo "vm: booting $ver (qemu, software emulation) to run ${#} command(s)"
t0=$(date +%s)
qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 3072 -nographic -no-reboot -nic none \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1 $append" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$work/out,mount_tag=outshare,security_model=none,multidevs=remap" \
  </dev/null >"$work/console.log" 2>&1 &
qemu_pid=$!
limit=${BPFIX_VM_TIMEOUT:-2400}
while kill -0 "$qemu_pid" 2>/dev/null; do
  if (($(date +%s) - t0 > limit)); then
    kill "$qemu_pid"
    cat "$work/console.log" | tail -50
    die "the guest did not finish within $limit s (BPFIX_VM_TIMEOUT)"
  fi
  sleep 1
done
wait "$qemu_pid" || true
qemu_pid=
sed -e 's/\r$//' "$work/console.log" | grep -v '^$' || true
grep -q "GUEST kernel $ver" "$work/console.log" || die "the VM did not boot $ver (console above)"
grep -q GUEST-DONE "$work/console.log" || die "the guest did not finish (console above)"
[[ -f $work/out/results ]] || die "the guest reported no results"
failed=0
i=0
for cmd in "$@"; do
  i=$((i + 1))
  rc=$(awk -v i="$i" '$1 == i {print $2}' "$work/out/results")
  if [[ $rc != 0 ]]; then
    echo "FAIL vm: '$cmd' exited ${rc:-(never ran)} on $ver" >&2
    failed=1
  fi
done
echo "vm: $ver, $# command(s), $(($(date +%s) - t0)) s in the VM$( ((failed)) || echo ', all passed')"
exit "$failed"
