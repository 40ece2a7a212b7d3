# Shared by the benchmarks: medians of timed runs and the side-by-side rows.
# (bash's $EPOCHREALTIME: no clock process forked inside the measured interval)

# the median, in ms, of microsecond figures on stdin
median_of() {
  sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

# median in ms of N runs of "$@"
median_ms() {
  local i t0 t1 times=()
  for ((i = 0; i < N; i++)); do
    t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1 </dev/null; t1=${EPOCHREALTIME/./}
    times+=($(( t1 - t0 )))
  done
  printf '%s\n' "${times[@]}" | median_of
}

# one row: name, warren's figure, LXC's (or -), and their ratio
row() {
  if [ "$3" = "-" ]; then printf '%-30s %10s %10s %8s\n' "$1" "$2" "-" "-"
  else printf '%-30s %10s %10s %8s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN{printf "%.2f", a/b}')"; fi
}

# the real incusd running (started if it isn't), with a dir pool and the default profile's root disk
incusd_up() {
  if ! incus info >/dev/null 2>&1; then
    mkdir -p /var/log/incus
    PATH=/usr/libexec/incus:$PATH setsid /usr/libexec/incus/incusd --group incus-admin --logfile=/var/log/incus/incus.log >/dev/null 2>&1 &
    if ! /usr/libexec/incus/incusd waitready --timeout=60; then
      echo "incusd did not start; its log says: $(tail -1 /var/log/incus/incus.log)" >&2
      echo "(a database damaged by a killed incusd: move /var/lib/incus/database aside)" >&2
      exit 1
    fi
  fi
  incus storage show default >/dev/null 2>&1 || incus storage create default dir >/dev/null
  incus profile device show default 2>/dev/null | grep -q '^root:' || incus profile device add default root disk path=/ pool=default >/dev/null
}

# lazily unmounts everything at or below $1 (a daemon's overlays and image mounts), deepest first
unmount_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
