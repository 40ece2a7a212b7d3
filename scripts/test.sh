#!/usr/bin/env bash
# The whole test suite, as root on Debian 12+: sets the host up, builds once, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
export WARREN_DEBIAN_ROOTFS=${WARREN_DEBIAN_ROOTFS:-/var/tmp/warren-fixtures/bookworm-minbase-systemd-v1}
export WARREN_LXC_PKG_DIR=${WARREN_LXC_PKG_ROOT:-/var/tmp/warren-lxc-pkg}/usr/share/lxc/config
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
