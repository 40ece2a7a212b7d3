#!/usr/bin/env bash
# The main job, as root on Debian 12+: build warren, make a busybox container offline, start it,
# run a command in it, stop and destroy it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
./scripts/build.sh
bin=target/release/warren-lxc
lxcpath=$(mktemp -d /tmp/warren-demo.XXXXXX)
name=demo
trap '$bin stop -P "$lxcpath" -n $name -k >/dev/null 2>&1 || true; rm -rf "$lxcpath"' EXIT
export WARREN_LXC_DEFAULT_CONF=/dev/null
set -x
$bin create -P "$lxcpath" -n $name -t busybox
$bin start -P "$lxcpath" -n $name -q
$bin ls -P "$lxcpath" -f
$bin attach -P "$lxcpath" -n $name -- sh -c 'echo "hello from $(hostname), PID 1 is $(cat /proc/1/comm)"'
$bin info -P "$lxcpath" -n $name
$bin stop -P "$lxcpath" -n $name -k
$bin destroy -P "$lxcpath" -n $name
