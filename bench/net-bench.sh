#!/usr/bin/env bash
# Networking, warren-lxc against the real LXC (when installed), same run, same busybox rootfs, on
# one bridge with DHCP served by one dnsmasq (made by `warren-lxc net start`, --no-ping, no
# upstream servers; an nftables rule drops forwarded traffic leaving the bridge):
#   lease    start -> the container's DHCP lease appears in dnsmasq's lease file (udhcpc from
#            the busybox rootfs's rcS)
#   vcycle   start -> wait RUNNING -> stop -k with one veth on the bridge
# Prints each figure (median of N runs, ms) and the ratio warren/LXC. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-20}
./scripts/build.sh >/dev/null 2>&1
W=$PWD/target/release/warren-lxc
work=$(mktemp -d /tmp/warren-netbench.XXXXXX)
br=wbench$$; br=${br:0:15}
net=10.209.77
wp=$work/warren; lp=$work/lxc; mkdir -p "$wp" "$lp" "$work/run"
printf 'LXC_BRIDGE="%s"\nLXC_ADDR="%s.1"\nLXC_NETWORK="%s.0/24"\nLXC_DHCP_RANGE="%s.2,%s.254"\nLXC_DHCP_PING="false"\n' \
  "$br" "$net" "$net" "$net" "$net" > "$work/lxc-net"
netargs=(--config "$work/lxc-net" --run-dir "$work/run" --leases-dir "$work" --no-upstream)
cleanup() {
  $W stop -P "$wp" -n bw -k >/dev/null 2>&1 || true
  command -v lxc-stop >/dev/null && lxc-stop -P "$lp" -n bl -k >/dev/null 2>&1 || true
  $W net stop "${netargs[@]}" >/dev/null 2>&1 || true
  nft delete table inet "warren_bench_$br" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
nft -f - <<NFT
table inet warren_bench_$br {
  chain forward { type filter hook forward priority -10; policy accept; iifname "$br" oifname != "$br" drop; }
}
NFT
$W net start "${netargs[@]}" >/dev/null
leases=$work/dnsmasq.$br.leases
export WARREN_LXC_DEFAULT_CONF=/dev/null
$W create -P "$wp" -n bw -t busybox -q >/dev/null
printf 'lxc.net.0.type = veth\nlxc.net.0.link = %s\nlxc.net.0.flags = up\n' "$br" >> "$wp/bw/config"
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
lxc.net.0.type = veth
lxc.net.0.link = $br
lxc.net.0.flags = up
CFG
fi

setmac() { # config file: a fresh MAC each run, so each lease is new
  local mac
  mac=$(printf '00:16:3e:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
  sed -i '/^lxc.net.0.hwaddr/d' "$1"; echo "lxc.net.0.hwaddr = $mac" >> "$1"; echo "$mac"
}
# ms from start to the lease of a fresh MAC, N times; the median
lease_ms() { # start-cmd stop-cmd config
  local i mac t0 t1 times=()
  for ((i = 0; i < N; i++)); do
    mac=$(setmac "$3")
    t0=${EPOCHREALTIME/./}
    $1 >/dev/null 2>&1
    until grep -q "$mac" "$leases" 2>/dev/null; do
      t1=${EPOCHREALTIME/./}; [ $(( t1 - t0 )) -gt 10000000 ] && break
    done
    t1=${EPOCHREALTIME/./}
    times+=($(( t1 - t0 )))
    $2 >/dev/null 2>&1
  done
  printf '%s\n' "${times[@]}" | median_of
}
printf '%-30s %10s %10s %8s\n' "operation (median, N=$N)" "warren" "LXC" "ratio"
wl=$(lease_ms "$W start -P $wp -n bw -q" "$W stop -P $wp -n bw -k" "$wp/bw/config")
ll=-; [ $have_lxc = 1 ] && ll=$(lease_ms "lxc-start -P $lp -n bl" "lxc-stop -P $lp -n bl -k" "$lp/bl/config")
row "start -> DHCP lease ms" "$wl" "$ll"
w_cycle() { $W start -P "$wp" -n bw -q && $W wait -P "$wp" -n bw -s RUNNING && $W stop -P "$wp" -n bw -k; }
l_cycle() { lxc-start -P "$lp" -n bl && lxc-wait -P "$lp" -n bl -s RUNNING && lxc-stop -P "$lp" -n bl -k; }
wc=$(median_ms w_cycle)
lc=-; [ $have_lxc = 1 ] && lc=$(median_ms l_cycle)
row "cycle with one veth ms" "$wc" "$lc"
