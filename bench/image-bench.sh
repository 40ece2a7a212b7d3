#!/usr/bin/env bash
# Download + unpack + start of an image from warren's image server, warren-lxc against the real
# Incus (bookworm-backports), same server, same images, in the same run:
#   busybox   the example image (~1 MB)
#   debian    Debian bookworm minbase (the distrobuilder bench's definition, ~45 MB rootfs.tar.xz)
# warren: `warren-lxc create -t download` (signatures checked) + start, cache flushed each time.
# Incus:  `incus launch REMOTE:ALIAS` with the cached image deleted each time (squashfs item).
# Prints medians of N runs (default 3, alternating, a sync before each), in seconds. Run as root. Installs incus if missing (adds
# bookworm-backports), starts incusd if it isn't running, and gives it a dir pool.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-3}
./scripts/build.sh >/dev/null 2>&1
WB=$PWD/target/release/warren-build
WL=$PWD/target/release/warren-lxc
if ! command -v incus >/dev/null; then
  grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/warren-backports.list
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports --no-install-recommends incus incus-client dnsmasq-base
fi
incusd_up

store=/var/tmp/warren-bench/images
mkdir -p "$store"
work=$(mktemp -d /var/tmp/warren-image-bench.XXXXXX)
port=$((20000 + RANDOM % 20000))
server=
cleanup() {
  incus delete -f ib-c >/dev/null 2>&1 || true
  incus remote remove wbench >/dev/null 2>&1 || true
  $WL stop -P "$work/lxc" -n wb-c -k >/dev/null 2>&1 || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SOURCE_DATE_EPOCH=1790000000
for def in examples/busybox.yaml crates/builder/tests/debian-bookworm-minbase.yaml; do
  $WB build-all "$def" "$work/out-$(basename "$def" .yaml)" --step-cache "$store/step-cache" --sources-dir "$store/sources" \
     -o image.serial=20260101_0000 -o image.expiry=3650d >"$work/build.log" 2>&1 || { tail -5 "$work/build.log"; exit 1; }
  $WB publish "$work/tree" "$work/out-$(basename "$def" .yaml)" >/dev/null
done
$WB serve "$work/tree" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
sleep 0.5
cert=$work/.tree-tls/cert.pem
incus remote add wbench "https://127.0.0.1:$port" --protocol=simplestreams >/dev/null
mkdir -p ~/.config/incus/servercerts && cp "$cert" ~/.config/incus/servercerts/wbench.crt
mkdir -p "$work/lxc"
echo "lxc.net.0.type = empty" > "$work/net.conf"
export WARREN_LXC_DEFAULT_CONF=/dev/null WARREN_LXC_CACHE=$work/cache WARREN_DOWNLOAD_TRUST_DIR=$work/trust

warren_once() { # dist release arch
  $WL destroy -P "$work/lxc" -n wb-c -f >/dev/null 2>&1 || true
  sync
  local t0=${EPOCHREALTIME/./}
  $WL create -P "$work/lxc" -n wb-c -f "$work/net.conf" -t download -- -d "$1" -r "$2" -a "$3" \
      --server "127.0.0.1:$port" --keyfile "$work/tree/keys/signing.asc" --server-cert "$cert" --flush-cache >/dev/null
  $WL start -P "$work/lxc" -n wb-c >/dev/null
  echo $(( ${EPOCHREALTIME/./} - t0 ))
  $WL stop -P "$work/lxc" -n wb-c -k >/dev/null
}
incus_once() { # alias
  incus delete -f ib-c >/dev/null 2>&1 || true
  for f in $(incus image list -c f --format csv 2>/dev/null); do incus image delete "$f" >/dev/null 2>&1 || true; done
  sync
  local t0=${EPOCHREALTIME/./}
  incus launch "wbench:$1" ib-c >/dev/null 2>&1
  echo $(( ${EPOCHREALTIME/./} - t0 ))
  incus delete -f ib-c >/dev/null 2>&1
}
secs() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1e6}'; }

printf '%-30s %10s %10s %8s\n' "download+unpack+start (s)" "warren" "incus" "ratio"
for img in "busybox 1.35 x86_64 busybox/1.35" "debian bookworm amd64 debian/bookworm"; do
  set -- $img
  : >"$work/w.times"; : >"$work/c.times"
  # alternating, each after a sync: the disk's write-back of the previous run is nobody's cost
  for ((i = 0; i < N; i++)); do
    warren_once "$1" "$2" "$3" >>"$work/w.times"
    incus_once "$4" >>"$work/c.times"
  done
  w=$(secs <"$work/w.times"); c=$(secs <"$work/c.times")
  row "$1 ($(du -h "$work/tree/images/$1/$2/$3/default/20260101_0000/rootfs.tar.xz" | cut -f1) xz)" "$w" "$c"
done
