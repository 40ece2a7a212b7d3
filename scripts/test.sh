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
# The tools users run are the release build of scripts/build.sh (static, for musl where it can):
# the container lifecycle tests once more against those binaries.
./scripts/build.sh lxc
export WARREN_TEST_LXC_BIN=$PWD/target/release/warren-lxc
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast -p warren-lxc --test lifecycle --test unprivileged
else
  cargo test --locked --no-fail-fast -p warren-lxc --test lifecycle --test unprivileged
fi
