#!/usr/bin/env bash
# The main job, as root on Debian 12+: build warren, build a small busybox image offline with
# warren-build, make a container from it, start it, run a command in it, stop and destroy it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
./scripts/build.sh
bin=target/release/warren-lxc
lxcpath=$(mktemp -d /tmp/warren-demo.XXXXXX)
name=demo
trap '$bin stop -P "$lxcpath" -n $name -k >/dev/null 2>&1 || true; rm -rf "$lxcpath"' EXIT
export WARREN_LXC_DEFAULT_CONF=/dev/null
echo "lxc.net.0.type = empty" > "$lxcpath/net.conf"
set -x
target/release/warren-build build-lxc examples/busybox.yaml "$lxcpath/image" --no-cache
$bin create -P "$lxcpath" -n $name -f "$lxcpath/net.conf" -t local -- \
  --metadata "$lxcpath/image/meta.tar.xz" --fstree "$lxcpath/image/rootfs.tar.xz"
$bin start -P "$lxcpath" -n $name -q
$bin ls -P "$lxcpath" -f
$bin attach -P "$lxcpath" -n $name -- sh -c 'cat /etc/motd; echo "hello from $(hostname), PID 1 is $(cat /proc/1/comm)"'
$bin info -P "$lxcpath" -n $name
$bin stop -P "$lxcpath" -n $name -k
$bin destroy -P "$lxcpath" -n $name
