#!/usr/bin/env bash
# warren-lxc against the real LXC (when installed), in the same run, on the same busybox rootfs:
#   cycle    start -> wait RUNNING -> stop -k
#   attach   attach -- /bin/true
#   execute  execute -- /bin/true
#   monitor  RSS of an idle monitor process
#   ucycle   the cycle of an unprivileged container (lxc.idmap u/g 0 100000 65536); LXC needs
#            root:100000:65536 in /etc/subuid and /etc/subgid (newuidmap), else its figure is "-"
# Prints each figure (median of N runs, ms) and the ratio warren/LXC. Run as root.
# LXC's config clears its lxcfs hooks (lxc.hook.mount =, lxc.hook.post-stop =), as
# shared/anchors/lxc-measurements.md explains, so both do the same work.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-30}
./scripts/build.sh >/dev/null 2>&1
# the new binaries written out first: writeback meanwhile slows the first figures by a third
sync; sleep 1
W=$PWD/target/release/warren-lxc
work=$(mktemp -d /tmp/warren-bench.XXXXXX)
wp=$work/warren; lp=$work/lxc; mkdir -p "$wp" "$lp"
cleanup() {
  $W stop -P "$wp" -n bw -k >/dev/null 2>&1 || true
  $W stop -P "$wp" -n uw -k >/dev/null 2>&1 || true
  command -v lxc-stop >/dev/null && lxc-stop -P "$lp" -n ul -k >/dev/null 2>&1 || true
  command -v lxc-stop >/dev/null && lxc-stop -P "$lp" -n bl -k >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export WARREN_LXC_DEFAULT_CONF=/dev/null
$W create -P "$wp" -n bw -t busybox -q >/dev/null
printf 'lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n' > "$work/idmap.conf"
$W create -P "$wp" -n uw -t busybox -q -f "$work/idmap.conf" >/dev/null

have_lxc=0
if command -v lxc-start >/dev/null && [ -f /usr/share/lxc/config/common.conf ]; then
  have_lxc=1
  mkdir -p "$lp/bl"
  cp -a "$wp/bw/rootfs" "$lp/bl/rootfs"
  cat > "$lp/bl/config" <<CFG
lxc.include = /usr/share/lxc/config/common.conf
lxc.hook.mount =
lxc.hook.post-stop =
lxc.rootfs.path = dir:$lp/bl/rootfs
lxc.uts.name = bl
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.autodev = 1
lxc.tty.max = 1
lxc.net.0.type = empty
CFG
  if grep -q '^root:100000:65536' /etc/subuid 2>/dev/null && grep -q '^root:100000:65536' /etc/subgid 2>/dev/null; then
    mkdir -p "$lp/ul"
    cp -a "$wp/bw/rootfs" "$lp/ul/rootfs"
    # LXC 5.0 shifts ownership of the tree (warren uses an idmapped mount instead)
    chown -R -h 100000:100000 "$lp/ul/rootfs"
    chown 100000:100000 "$lp/ul"
    sed -e "s|$lp/bl/rootfs|$lp/ul/rootfs|" -e 's|lxc.uts.name = bl|lxc.uts.name = ul|' "$lp/bl/config" > "$lp/ul/config"
    printf 'lxc.include = /usr/share/lxc/config/userns.conf\nlxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n' >> "$lp/ul/config"
  fi
fi


w_cycle() { $W start -P "$wp" -n bw -q && $W wait -P "$wp" -n bw -s RUNNING && $W stop -P "$wp" -n bw -k; }
l_cycle() { lxc-start -P "$lp" -n bl && lxc-wait -P "$lp" -n bl -s RUNNING && lxc-stop -P "$lp" -n bl -k; }


printf '%-28s %10s %10s %8s\n' "operation (median, N=$N)" "warren" "LXC" "ratio"
w_cycle >/dev/null 2>&1; wc=$(median_ms w_cycle)
lc=-; if [ $have_lxc = 1 ]; then l_cycle >/dev/null 2>&1 || true; lc=$(median_ms l_cycle); fi
row "cycle start/RUNNING/stop-k ms" "$wc" "$lc"

$W start -P "$wp" -n bw -q
wa=$(median_ms $W attach -P "$wp" -n bw -- /bin/true)
la=-; if [ $have_lxc = 1 ]; then lxc-start -P "$lp" -n bl; la=$(median_ms lxc-attach -P "$lp" -n bl -- /bin/true); fi
row "attach -- /bin/true ms" "$wa" "$la"

# idle: the warren monitor lets go of its code pages after 2 s without events
sleep 3
wm=$(ps -o rss= -p "$(pgrep -f "^\[warren monitor\] $wp bw")" | tr -d ' ')
lm=-; if [ $have_lxc = 1 ]; then lm=$(ps -o rss= -p "$(pgrep -f "^\[lxc monitor\] $lp bl")" | tr -d ' '); fi
row "idle monitor RSS KiB" "$wm" "$lm"
$W stop -P "$wp" -n bw -k
[ $have_lxc = 1 ] && lxc-stop -P "$lp" -n bl -k

we=$(median_ms $W execute -P "$wp" -n bw -- /bin/true)
le=-; if [ $have_lxc = 1 ]; then le=$(median_ms lxc-execute -P "$lp" -n bl -- /bin/true); fi
row "execute -- /bin/true ms" "$we" "$le"

# crun run of /bin/true on the same rootfs (the issue's bar for execute). crun 1.8 refuses a
# hybrid host, so like lxc-measurements.md it runs in a private mount namespace without the
# cgroup2 mount (a pure v1 view); on a pure cgroup2 host nothing is unmounted.
if command -v crun >/dev/null && command -v python3 >/dev/null; then
  mkdir -p "$work/oci"
  cp -a "$wp/bw/rootfs" "$work/oci/rootfs"
  (cd "$work/oci" && crun spec >/dev/null)
  python3 - "$work/oci/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
  cr=$(unshare -m bash -c '
    [ -d /sys/fs/cgroup/memory ] && umount /sys/fs/cgroup/unified 2>/dev/null
    cd "$1"; times=()
    for ((i = 0; i < $2; i++)); do
      t0=${EPOCHREALTIME/./}; crun run "warren-bench-$$-$i" >/dev/null 2>&1 </dev/null; t1=${EPOCHREALTIME/./}
      times+=($(( t1 - t0 )))
    done
    printf "%s\n" "${times[@]}" | sort -n | awk "{a[NR]=\$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf \"%.1f\", m/1000}"
  ' _ "$work/oci" "$N")
  printf '%-28s %10s %10s %8s\n' "execute vs crun run ms" "$we" "$cr" "$(awk -v a="$we" -v b="$cr" 'BEGIN{printf "%.2f", a/b}')"
fi
wu() { $W start -P "$wp" -n uw -q && $W wait -P "$wp" -n uw -s RUNNING && $W stop -P "$wp" -n uw -k; }
lu() { lxc-start -P "$lp" -n ul && lxc-wait -P "$lp" -n ul -s RUNNING && lxc-stop -P "$lp" -n ul -k; }
wu >/dev/null 2>&1; wuc=$(median_ms wu)
luc=-; if [ -d "$lp/ul" ]; then lu >/dev/null 2>&1 || true; luc=$(median_ms lu); fi
row "unprivileged cycle ms" "$wuc" "$luc"
# unprivileged create from a big rootfs: an idmapped mount needs no per-file work; the chown-based
# shift (what a filesystem without idmapped mounts needs, and what LXC does) walks every file
big=${WARREN_DEBIAN_ROOTFS:-/var/tmp/warren-fixtures/bookworm-minbase-systemd-v1}
if [ -d "$big" ]; then
  mkdir -p "$wp/big"
  cp -a "$big" "$wp/big/rootfs"
  files=$(find "$wp/big/rootfs" | wc -l); size=$(du -sm "$wp/big/rootfs" | cut -f1)
  printf 'lxc.rootfs.path = dir:%s\nlxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n' "$wp/big/rootfs" > "$wp/big/config"
  t0=${EPOCHREALTIME/./}; $W shift -P "$wp" -n big -q; t1=${EPOCHREALTIME/./}
  printf '%-28s %10s %10s %8s\n' "shift ${size}MB/${files} files ms" "$(( (t1 - t0) / 1000 ))" "-" "-"
  echo "(an idmapped rootfs, warren's default, does no per-file work at create: 0 ms for any size)"
  # the whole create of an unprivileged container from that rootfs as an image pair (xz at its
  # fastest level, which LXC's local template requires): warren with an idmapped mount, warren
  # with the chown-based shift, and LXC's local template (which unpacks in the user namespace)
  mkdir -p "$work/img"
  tar -C "$big" --exclude='./dev/*' -cf - . | xz -0 -T0 > "$work/img/rootfs.tar.xz"
  printf 'lxc.arch = x86_64\n' > "$work/img/config"
  printf 'architecture: x86_64\ncreation_date: 0\n' > "$work/img/metadata.yaml"
  tar -C "$work/img" -cJf "$work/img/meta.tar.xz" config metadata.yaml
  sync
  wcr() { $W create -P "$wp" -n "$1" -t local -q -f "$work/idmap.conf" -- --metadata "$work/img/meta.tar.xz" --fstree "$work/img/rootfs.tar.xz" >/dev/null; }
  # (each after a sync: what an earlier one left to write back must not be counted)
  sync; t0=${EPOCHREALTIME/./}; wcr ci; t1=${EPOCHREALTIME/./}; wi=$(( (t1 - t0) / 1000 ))
  sync; t0=${EPOCHREALTIME/./}; WARREN_FORCE_SHIFT=1 wcr cs; t1=${EPOCHREALTIME/./}; ws=$(( (t1 - t0) / 1000 ))
  lcr=-
  if [ $have_lxc = 1 ] && [ -x /usr/share/lxc/templates/lxc-local ] && [ -d "$lp/ul" ]; then
    printf 'lxc.include = /usr/share/lxc/config/userns.conf\nlxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n' > "$work/lidmap.conf"
    # LXC unpacks as the container's root: the paths must be searchable by it
    chmod 755 "$work" "$lp" "$work/img"
    sync; t0=${EPOCHREALTIME/./}
    lxc-create -P "$lp" -n lcr -t local -f "$work/lidmap.conf" -- --metadata "$work/img/meta.tar.xz" --fstree "$work/img/rootfs.tar.xz" >"$work/lxc-create.log" 2>&1 && lcr=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
  fi
  [ "$lcr" = - ] && [ -f "$work/lxc-create.log" ] && { echo "(lxc-create failed:"; tail -6 "$work/lxc-create.log"; echo ")"; }
  row "unpriv create ${size}MB idmapped" "$wi" "$lcr"
  printf '%-28s %10s %10s %8s\n' "unpriv create ${size}MB shifted" "$ws" "-" "-"
fi
[ $have_lxc = 1 ] || echo "(LXC is not installed: apt-get install lxc for the side-by-side figures)"
