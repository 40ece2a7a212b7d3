#!/usr/bin/env bash
# Installs what warren's build and tests need on a fresh Debian 12 (or newer) machine, as root.
# Idempotent: a second run only checks.
set -euo pipefail
need=()
for p in busybox-static uidmap libseccomp-dev liblzma-dev pkg-config python3 file xz-utils debootstrap nftables dnsmasq-base squashfs-tools gpg gpgv zstd bzip2 lxc musl-tools; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The Rust musl target, which scripts/build.sh builds the short-lived tools for (it falls back to
# glibc where the target can't be fetched)
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "${host/-gnu/-musl}" != "$host" ] && command -v rustup >/dev/null &&
  ! rustup target list --installed | grep -qx "${host/-gnu/-musl}"; then
  rustup target add "${host/-gnu/-musl}" >/dev/null 2>&1 ||
    echo "note: rustup could not add ${host/-gnu/-musl}; scripts/build.sh builds for glibc" >&2
fi
# Incus, for the tests that drive the real incus against warren's image server (bookworm has it in
# backports only)
if ! dpkg-query -W -f='${Status}' incus 2>/dev/null | grep -q "install ok installed"; then
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ ||
      echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/warren-backports.list
    apt-get update -qq
    apt-get install -y -qq -t bookworm-backports --no-install-recommends incus incus-client
  else
    apt-get install -y -qq --no-install-recommends incus incus-client
  fi
fi
# Debian's LXC config files (package liblxc-common), unpacked, never installed: the config
# parser's compatibility test reads every one of them.
pkgdir=${WARREN_LXC_PKG_ROOT:-/var/tmp/warren-lxc-pkg}
if [ ! -d "$pkgdir/usr/share/lxc/config" ]; then
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download -qq liblxc-common >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq liblxc-common; } )
  mkdir -p "$pkgdir"
  dpkg -x "$tmp"/liblxc-common_*.deb "$pkgdir"
  rm -rf "$tmp"
fi
# The regular user the non-root tests act as, with its own subordinate ids (newuidmap reads
# them from /etc/subuid and /etc/subgid). A system account without a login shell or password.
if ! id warren-tester >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin warren-tester
fi
grep -q '^warren-tester:' /etc/subuid 2>/dev/null || usermod --add-subuids 200000-265535 warren-tester
grep -q '^warren-tester:' /etc/subgid 2>/dev/null || usermod --add-subgids 200000-265535 warren-tester
# A Debian bookworm rootfs with systemd (debootstrap from Debian's mirror), for the systemd-guest
# tests. Built once and kept, keyed by what goes into it: change the key when the inputs change.
debian_key=bookworm-minbase-systemd-v1
debian_rootfs=${WARREN_DEBIAN_ROOTFS:-/var/tmp/warren-fixtures/$debian_key}
if [ ! -x "$debian_rootfs/lib/systemd/systemd" ]; then
  rm -rf "$debian_rootfs.tmp"
  mkdir -p "$(dirname "$debian_rootfs")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iproute2 \
    bookworm "$debian_rootfs.tmp" http://deb.debian.org/debian >/dev/null
  rm -rf "$debian_rootfs"
  mv "$debian_rootfs.tmp" "$debian_rootfs"
fi
echo "host ready (LXC configs in $pkgdir/usr/share/lxc/config)"
