#!/usr/bin/env bash
# warren's CLI against warrend, and incus's CLI against incusd, each on its own daemon, the same
# busybox image, in the same run: launch, exec -- /bin/true, list, stop -f, start, delete -f, and
# launch from an image server (a warren-build serve tree on 127.0.0.1) with a cold cache (the
# image deleted before each run) and a warm one. Prints medians of N runs (default 10) in ms and
# the ratio warren/incus. Run as root; starts incusd (dir pool) if it isn't running.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-10}
./scripts/build.sh >/dev/null 2>&1
cargo build --release --locked -p warren-daemon >/dev/null 2>&1
R=$PWD/target/release
incusd_up
work=$(mktemp -d /var/tmp/warren-cli-bench.XXXXXX)
wpid= spid=
export WARREN_DIR=$work/w WARREN_CONF=$work/wc INCUS_CONF=$work/ic
cleanup() {
  $R/warren delete -f wb wr >/dev/null 2>&1 || true
  incus delete -f ib ir >/dev/null 2>&1 || true
  incus image delete cbench-bb >/dev/null 2>&1 || true
  for fp in $(incus image list --format csv 2>/dev/null | awk -F, '$1 == "" {print $2}'); do
    incus image delete "$fp" >/dev/null 2>&1 || true
  done
  incus remote remove srv >/dev/null 2>&1 || true
  [ -n "$wpid" ] && kill "$wpid" 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  unmount_under "$work"
  rm -rf "$work"
}
trap cleanup EXIT
$R/warren-build build-all examples/busybox.yaml "$work/img" --no-cache --sources-dir "$work/src" >/dev/null 2>&1
$R/warren-build build-incus examples/busybox.yaml "$work/uni" --type unified --no-cache --sources-dir "$work/src" >/dev/null 2>&1
$R/warren-build publish "$work/tree" "$work/img" >/dev/null 2>&1
$R/warren-build serve "$work/tree" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
spid=$!
sleep 0.5
port=$(sed -n 's|.*https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/serve.log" | head -1)
cert=$(sed -n 's|^certificate \([^ ]*\) .*|\1|p' "$work/serve.log" | head -1)
$R/warrend >/dev/null 2>&1 &
wpid=$!
sleep 0.3
$R/warren admin init --minimal --network none
img=$(ls "$work"/uni/*.tar.xz)
$R/warren image import "$img" --alias cbench-bb >/dev/null
incus image import "$img" --alias cbench-bb >/dev/null
$R/warren remote add srv "https://127.0.0.1:$port" --accept-certificate >/dev/null
mkdir -p "$INCUS_CONF/servercerts"
cp "$cert" "$INCUS_CONF/servercerts/srv.crt"
incus remote add srv "https://127.0.0.1:$port" --protocol=simplestreams >/dev/null
W() { $R/warren "$@"; }
I() { incus "$@"; }
t() { local t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1; echo $(( ${EPOCHREALTIME/./} - t0 )); }
one() { # client-fn name
  local c=$1 n=$2
  echo "launch $(t $c launch cbench-bb "$n")"
  echo "exec $(t $c exec "$n" -- /bin/true)"
  echo "list $(t $c list --format csv)"
  echo "stop-f $(t $c stop -f "$n")"
  echo "start $(t $c start "$n")"
  echo "delete-f $(t $c delete -f "$n")"
  # from the image server: cold (no cached image), then warm
  # the images without an alias are the ones the server's launch cached
  for fp in $($c image list --format csv | awk -F, '$1 == "" {print $2}'); do
    $c image delete "$fp" >/dev/null 2>&1 || true
  done
  echo "remote-cold $(t $c launch srv:busybox/1.35 "${n}r")"
  $c delete -f "${n}r" >/dev/null 2>&1
  echo "remote-warm $(t $c launch srv:busybox/1.35 "${n}r")"
  $c delete -f "${n}r" >/dev/null 2>&1
}
: >"$work/w.txt"; : >"$work/i.txt"
for ((k = 0; k < N; k++)); do
  one W wb >>"$work/w.txt"
  one I ib >>"$work/i.txt"
done
printf '%-30s %10s %10s %8s\n' "(ms, median of $N)" "warren" "incus" "ratio"
for step in launch exec list stop-f start delete-f remote-cold remote-warm; do
  w=$(awk -v s=$step '$1 == s {print $2}' "$work/w.txt" | median_of)
  i=$(awk -v s=$step '$1 == s {print $2}' "$work/i.txt" | median_of)
  row "$step" "$w" "$i"
done
