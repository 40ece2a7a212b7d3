#!/usr/bin/env bash
# warrend against the real incusd (Incus 6.0.4), the same incus client driving both, the same
# busybox image (examples/busybox.yaml as a unified tarball), in the same run:
#   launch, exec -- /bin/true, stop -f, start, delete -f, list (one container), then with 21
#   running: list, daemon RSS, and the memory each container costs beyond its own processes
#   (warren's monitor; Incus's LXC monitor)
# Prints medians of N runs (default 10) in ms and the ratio warren/incus. Run as root. Starts
# incusd (dir pool) if it isn't running; warrend gets a WARREN_DIR of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-10}
# warren-lxc static and its monitor size-optimised, as installed (scripts/build.sh), then warrend
./scripts/build.sh >/dev/null 2>&1
cargo build --release --locked -p warren-daemon >/dev/null 2>&1
R=$PWD/target/release
incusd_up
work=$(mktemp -d /var/tmp/warren-daemon-bench.XXXXXX)
wpid=
cleanup() {
  INCUS_SOCKET=$work/w/unix.socket incus delete -f wb >/dev/null 2>&1 || true
  incus delete -f ib >/dev/null 2>&1 || true
  for ((k = 0; k < 21; k++)); do
    INCUS_SOCKET=$work/w/unix.socket incus delete -f "wm$k" >/dev/null 2>&1 || true
    incus delete -f "im$k" >/dev/null 2>&1 || true
  done
  incus image delete wbench-bb >/dev/null 2>&1 || true
  [ -n "$wpid" ] && kill "$wpid" 2>/dev/null || true
  unmount_under "$work"
  rm -rf "$work"
}
trap cleanup EXIT
$R/warren-build build-incus examples/busybox.yaml "$work/img" --type unified --no-cache --sources-dir "$work/src" >/dev/null 2>&1
img=$(ls "$work"/img/*.tar.xz)
WARREN_DIR=$work/w $R/warrend >/dev/null 2>&1 &
wpid=$!
sleep 0.3
# no network: the incusd it is compared with has none in its default profile
WARREN_DIR=$work/w $R/warren admin init --minimal --network none
export INCUS_CONF=$work/client
W() { INCUS_SOCKET=$work/w/unix.socket incus "$@"; }
I() { incus "$@"; }
W image import "$img" --alias wbench-bb >/dev/null
I image import "$img" --alias wbench-bb >/dev/null

one() { # client-fn name, prints ms of each step
  local c=$1 n=$2 t0
  t0=${EPOCHREALTIME/./}; $c launch wbench-bb "$n" >/dev/null 2>&1; echo "launch $(( ${EPOCHREALTIME/./} - t0 ))"
  t0=${EPOCHREALTIME/./}; $c exec "$n" -- /bin/true; echo "exec $(( ${EPOCHREALTIME/./} - t0 ))"
  t0=${EPOCHREALTIME/./}; $c list --format csv >/dev/null; echo "list $(( ${EPOCHREALTIME/./} - t0 ))"
  t0=${EPOCHREALTIME/./}; $c stop -f "$n"; echo "stop-f $(( ${EPOCHREALTIME/./} - t0 ))"
  t0=${EPOCHREALTIME/./}; $c start "$n"; echo "start $(( ${EPOCHREALTIME/./} - t0 ))"
  t0=${EPOCHREALTIME/./}; $c delete -f "$n"; echo "delete-f $(( ${EPOCHREALTIME/./} - t0 ))"
}
: >"$work/w.txt"; : >"$work/i.txt"
for ((k = 0; k < N; k++)); do
  one W wb >>"$work/w.txt"
  one I ib >>"$work/i.txt"
done
printf '%-30s %10s %10s %8s\n' "(ms, median of $N)" "warrend" "incusd" "ratio"
for step in launch exec list stop-f start delete-f; do
  w=$(awk -v s=$step '$1 == s {print $2}' "$work/w.txt" | median_of)
  i=$(awk -v s=$step '$1 == s {print $2}' "$work/i.txt" | median_of)
  row "$step" "$w" "$i"
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ipid=$(pgrep -f '/usr/libexec/incus/incusd' | head -1)
w_idle=$(rss "$wpid"); i_idle=$(rss "$ipid")
# 21 running containers each
for ((k = 0; k < 21; k++)); do
  W launch wbench-bb "wm$k" >/dev/null 2>&1
  I launch wbench-bb "im$k" >/dev/null 2>&1
done
w_list=$(median_ms W list --format csv); i_list=$(median_ms I list --format csv)
row "list (21 running)" "$w_list" "$i_list"
echo
w_busy=$(rss "$wpid"); i_busy=$(rss "$ipid")
# per container: its monitor (warren: "[warren monitor]"; Incus: "[lxc monitor]"), RSS and PSS
# (PSS shares the monitor's code pages out among the monitors that map them) in KiB
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
w_mon=0; w_pss=0
for p in $(pgrep -f "\\[warren monitor\\] $work/w/containers" || true); do
  w_mon=$(( w_mon + $(rss "$p") )); w_pss=$(( w_pss + $(pss "$p") ))
done
i_mon=0; i_pss=0
for p in $(pgrep -f "\\[lxc monitor\\] /var/lib/incus/containers im" || true); do
  i_mon=$(( i_mon + $(rss "$p") )); i_pss=$(( i_pss + $(pss "$p") ))
done
printf '%-30s %10s %10s %8s\n' "(KiB)" "warrend" "incusd" "ratio"
row "daemon RSS, idle" "$w_idle" "$i_idle"
row "daemon RSS, 21 running" "$w_busy" "$i_busy"
row "per container: monitor RSS" "$(( w_mon / 21 ))" "$(( i_mon / 21 ))"
row "per container: monitor PSS" "$(( w_pss / 21 ))" "$(( i_pss / 21 ))"
row "per container: PSS + daemon" "$(( (w_pss + (w_busy - w_idle)) / 21 ))" "$(( (i_pss + (i_busy - i_idle)) / 21 ))"
