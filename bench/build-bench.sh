#!/usr/bin/env bash
# warren-build against the real distrobuilder (3.2, trixie's .deb unpacked: its binary runs on
# bookworm), in the same run, on shared/anchors' Debian bookworm minbase definition (debootstrap
# from Debian's mirror). Figures are wall-clock seconds of one run each:
#   build-lxc          distrobuilder build-lxc         vs  warren-build build-lxc  (both xz)
#   LXC+Incus, xz      distrobuilder build-lxc + pack-incus (on its build-dir)
#                                                      vs  warren-build build-all (xz, one build)
#   LXC+Incus, zstd    the same distrobuilder figure   vs  warren-build build-all --compression zstd
#   cached rebuild     -                                   warren-build build-all (xz), unchanged
# Also: warren-lxc creates a container from distrobuilder's LXC image. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
DEF=${DEF:-$PWD/crates/builder/tests/debian-bookworm-minbase.yaml}
./scripts/build.sh >/dev/null 2>&1
WB=$PWD/target/release/warren-build
WL=$PWD/target/release/warren-lxc
store=/var/tmp/warren-bench
DB=$store/db/usr/bin/distrobuilder
if [ ! -x "$DB" ]; then
  # trixie's package, fetched with a private apt state: the host's sources are never changed
  t=$store/apt; mkdir -p "$t/lists/partial" "$t/cache/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" > "$t/sources.list"
  O=(-o "Dir::Etc::SourceList=$t/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$t/lists" -o "Dir::Cache=$t/cache")
  apt-get "${O[@]}" update -qq
  (cd "$store" && apt-get "${O[@]}" download distrobuilder)
  dpkg -x "$store"/distrobuilder_*.deb "$store/db"
fi
for p in rsync squashfs-tools debootstrap; do dpkg-query -W "$p" >/dev/null 2>&1 || apt-get install -y -qq "$p"; done
work=$(mktemp -d /var/tmp/warren-build-bench.XXXXXX)
cleanup() { $WL destroy -P "$work/lxc" -n fromdb >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
secs() { local t0=${EPOCHREALTIME/./}; "$@" >"$work/last.log" 2>&1 || { tail -5 "$work/last.log" >&2; return 1; }; echo $(( (${EPOCHREALTIME/./} - t0) / 1000000 )); }
row() { if [ "$3" = "-" ]; then printf '%-22s %9s %14s %8s\n' "$1" "$2" "-" "-"; else printf '%-22s %9s %14s %8s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN{printf "%.2f", a/b}')"; fi; }

echo "distrobuilder $($DB --version), warren-build $($WB --version | awk '{print $2}'); $(nproc) cores; $DEF"
mkdir -p "$work/db-lxc" "$work/db-incus"
db_lxc=$(secs "$DB" build-lxc "$DEF" "$work/db-lxc" --cache-dir "$work/db-cache" --sources-dir "$work/db-src")
db_dir=$(secs "$DB" build-dir "$DEF" "$work/db-rootfs" --cache-dir "$work/db-cache" --sources-dir "$work/db-src")
db_incus=$(secs "$DB" pack-incus "$DEF" "$work/db-rootfs" "$work/db-incus" --cache-dir "$work/db-cache")
sync
w_lxc=$(secs "$WB" build-lxc "$DEF" "$work/w-lxc" --no-cache --sources-dir "$work/w-src")
w_all=$(secs "$WB" build-all "$DEF" "$work/w-all" --no-cache --sources-dir "$work/w-src")
w_zstd=$(secs "$WB" build-all "$DEF" "$work/w-zstd" --no-cache --compression zstd --sources-dir "$work/w-src")
# the step cache: a first build fills it, the unchanged rebuild is the figure
secs "$WB" build-all "$DEF" "$work/w-warm" --step-cache "$work/step-cache" --sources-dir "$work/w-src" >/dev/null
w_cached=$(secs "$WB" build-all "$DEF" "$work/w-cached" --step-cache "$work/step-cache" --sources-dir "$work/w-src")

printf '%-22s %9s %14s %8s\n' "" "warren" "distrobuilder" "ratio"
row "build-lxc (xz)" "$w_lxc" "$db_lxc"
row "LXC+Incus (xz)" "$w_all" "$((db_lxc + db_incus))"
row "LXC+Incus (zstd)" "$w_zstd" "$((db_lxc + db_incus))"
row "cached rebuild" "$w_cached" "-"
echo "(distrobuilder build-dir: ${db_dir}s, pack-incus: ${db_incus}s)"
ls -l "$work/db-lxc" "$work/db-incus" "$work/w-all" "$work/w-zstd" | grep -v '^total'

# warren-lxc creates a container from distrobuilder's LXC image
mkdir -p "$work/lxc"
echo "lxc.net.0.type = empty" > "$work/empty.conf"
if WARREN_LXC_DEFAULT_CONF=/dev/null $WL create -P "$work/lxc" -n fromdb -f "$work/empty.conf" -t local -- \
    --metadata "$work/db-lxc/meta.tar.xz" --fstree "$work/db-lxc/rootfs.tar.xz" >"$work/create.log" 2>&1; then
  echo "warren-lxc created a container from distrobuilder's image: hostname $(cat "$work/lxc/fromdb/rootfs/etc/hostname")"
else
  echo "warren-lxc could not create from distrobuilder's image:"; tail -3 "$work/create.log"
fi
