#!/usr/bin/env bash
# Release build of the tools: warren-lxc (statically linked, small code: profile "cli"), and beside it
# warren-monitor, statically linked with small code (profile "monitor"), because an idle monitor's
# memory is mostly its mapped code.
#
# Both are built for musl when its Rust target and musl-gcc are there (scripts/setup-host.sh adds
# them), else for glibc. Why musl: each start of a static glibc binary asks the CPU for its cache
# sizes through a few dozen cpuid instructions, and in a VM every cpuid is a trap to the hypervisor
# (0.2 ms a run on the machine BENCHMARKS.md measures); a start/wait/stop cycle runs four binaries.
# `build.sh lxc`: warren-lxc and warren-monitor only (what scripts/test.sh tests again).
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-all}
host=$(rustc -vV | sed -n 's/^host: //p')
musl=${host/-gnu/-musl}
if [ "$musl" != "$host" ] && command -v musl-gcc >/dev/null &&
  rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  # libseccomp is linked statically from Debian's libseccomp.a, which is a plain C archive; its
  # own directory must not be searched whole, or the linker would find glibc's libc.a there
  seccomp=$(gcc -print-file-name=libseccomp.a)
  mkdir -p target/musl-seccomp
  cp -u "$seccomp" target/musl-seccomp/
  export LIBSECCOMP_LIB_PATH=$PWD/target/musl-seccomp
  cargo rustc --profile cli --locked --target "$musl" -p warren-lxc --bin warren-lxc
  # non-PIE: no relocation pages
  cargo rustc --profile monitor --locked --target "$musl" -p warren-lxc --bin warren-monitor -- \
    -C relocation-model=static
  mkdir -p target/release
  install -m 0755 "target/$musl/cli/warren-lxc" target/release/warren-lxc
  install -m 0755 "target/$musl/monitor/warren-monitor" target/release/warren-monitor
else
  # static: no dynamic loader at each start of a short-lived tool (about half a millisecond each)
  cargo rustc --profile cli --locked -p warren-lxc --bin warren-lxc -- -C target-feature=+crt-static
  install -m 0755 target/cli/warren-lxc target/release/warren-lxc
  # static and non-PIE: no dynamic loader, no libc.so mapping, no relocation pages
  cargo rustc --profile monitor --locked -p warren-lxc --bin warren-monitor -- \
    -C target-feature=+crt-static -C relocation-model=static
  install -m 0755 target/monitor/warren-monitor target/release/warren-monitor
fi
[ "$only" = lxc ] && exit 0
# the lxc-usernet helper (installed setuid root beside warren-lxc for regular users' veths)
cargo rustc --release --locked -p warren-lxc --bin warren-user-nic -- -C target-feature=+crt-static
# the image builder
cargo build --release --locked -p warren-builder
