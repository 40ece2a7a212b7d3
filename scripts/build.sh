#!/usr/bin/env bash
# Release build of the tools: warren-lxc (statically linked), and beside it warren-monitor, statically linked with
# small code (profile "monitor"), because an idle monitor's memory is mostly its mapped code.
set -euo pipefail
cd "$(dirname "$0")/.."
# static: no dynamic loader at each start of a short-lived tool (about half a millisecond each)
cargo rustc --release --locked -p warren-lxc --bin warren-lxc -- -C target-feature=+crt-static
# the lxc-usernet helper (installed setuid root beside warren-lxc for regular users' veths)
cargo rustc --release --locked -p warren-lxc --bin warren-user-nic -- -C target-feature=+crt-static
# static and non-PIE: no dynamic loader, no libc.so mapping, no relocation pages
cargo rustc --profile monitor --locked -p warren-lxc --bin warren-monitor -- \
  -C target-feature=+crt-static -C relocation-model=static
install -m 0755 target/monitor/warren-monitor target/release/warren-monitor
# the image builder
cargo build --release --locked -p warren-builder
