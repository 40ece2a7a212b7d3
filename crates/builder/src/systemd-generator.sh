#!/bin/sh
# warren-build's systemd generator for system containers (installed as
# /etc/systemd/system-generators/lxc). It runs at every boot, before units load, and writes
# only under /run, so the image behaves normally anywhere else.
#
# Why: systemd takes a writable /sys to mean "udev runs here". In a container /sys is often
# mounted read-write (unprivileged LXC's sys:rw, nesting, sys:rw on privileged ones) while no
# udev runs, so systemd-networkd waits forever for udev to initialise links and they stay
# "pending" (no DHCP). distrobuilder's generator only handles this for unprivileged containers
# without nesting; here the test is the mount itself, as systemd looks at it.
set -eu

# Only in containers (LXC, warren, Incus set container=lxc for init).
grep -qa 'container=lxc' /proc/1/environ 2>/dev/null || exit 0

out="${1:-/run/systemd/generator}"
sd=/run/systemd/system
mkdir -p "$sd"

# The systemd version, for options older systemd would reject.
ver=0
for bin in /usr/lib/systemd/systemd /lib/systemd/systemd; do
    if [ -x "$bin" ]; then
        ver=$("$bin" --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
        break
    fi
done
[ -n "$ver" ] || ver=0

# Privileged: the whole 32-bit uid range is mapped.
privileged=0
grep -qw '4294967295$' /proc/self/uid_map 2>/dev/null && privileged=1

# Is /sys writable by its mount flags? (The mount's own options and its superblock's, as
# statvfs' ST_RDONLY combines them; the last mount on /sys is the one visible.)
sys_rw=0
while read -r _id _parent _dev _root mnt opts rest; do
    [ "$mnt" = /sys ] || continue
    rest=" $rest"
    super=${rest#* - }
    super_opts=${super#* * }
    case ",$opts," in *,ro,*) sys_rw=0; continue ;; esac
    case ",$super_opts," in *,ro,*) sys_rw=0; continue ;; esac
    sys_rw=1
done < /proc/self/mountinfo

dropin() { # unit, file name, content
    mkdir -p "$sd/$1.d"
    printf '%s\n' "$3" > "$sd/$1.d/$2"
}

# 1. /sys read-write without udev: networkd and resolved get a read-only /sys of their own,
#    so they stop waiting for udev. /proc stays writable: networkd sets per-link sysctls.
if [ "$sys_rw" = 1 ]; then
    for unit in systemd-networkd.service systemd-resolved.service; do
        dropin "$unit" zzz-lxc-ropath.conf "[Service]
BindReadOnlyPaths=/sys"
    done
fi

# 2. Sandboxing options that need kernel features a container lacks, relaxed for all services.
#    Each is gated by the systemd version that introduced it.
relax="[Service]"
# ProcSubset/ProtectProc: mounting a restricted /proc fails under a container's /proc.
[ "$ver" -ge 247 ] && relax="$relax
ProcSubset=all
ProtectProc=default"
# The container manager owns cgroups and kernel tunables: read-only remounts of them fail.
[ "$ver" -ge 232 ] && relax="$relax
ProtectControlGroups=no
ProtectKernelTunables=no"
# no_new_privs is fine but some images' services need setuid helpers under it.
[ "$ver" -ge 239 ] && relax="$relax
NoNewPrivileges=no"
# Credentials need a mount the container may not be allowed to make.
[ "$ver" -ge 249 ] && relax="$relax
LoadCredential="
# A private network namespace per service fails without CAP_SYS_ADMIN over the netns.
[ "$ver" -ge 254 ] && relax="$relax
PrivateNetwork=no"
[ "$ver" -ge 256 ] && relax="$relax
ImportCredential="
if [ "$privileged" = 1 ]; then
    # Privileged containers: mount namespacing options that remount host-shared trees.
    relax="$relax
ProtectHome=no
ProtectSystem=no
PrivateDevices=no
PrivateTmp=no"
    [ "$ver" -ge 244 ] && relax="$relax
ProtectKernelLogs=no"
    [ "$ver" -ge 232 ] && relax="$relax
ProtectKernelModules=no"
    [ "$ver" -ge 231 ] && relax="$relax
ReadWritePaths=
ReadOnlyPaths="
fi
if [ "$ver" -ge 244 ]; then
    dropin service zzz-lxc-service.conf "$relax"
else
    for f in /lib/systemd/system/*.service /usr/lib/systemd/system/*.service /etc/systemd/system/*.service; do
        [ -e "$f" ] || continue
        dropin "$(basename "$f")" zzz-lxc-service.conf "$relax"
    done
fi

# 3. Units that can't succeed in a container: their failures are ignored, not fatal.
dropin systemd-udev-trigger.service zzz-lxc-override.conf "[Service]
ExecStart=
ExecStart=-udevadm trigger --type=subsystems --action=add
ExecStart=-udevadm trigger --type=devices --action=add"
for bin in /usr/lib/systemd/systemd-sysctl /lib/systemd/systemd-sysctl; do
    if [ -x "$bin" ]; then
        dropin systemd-sysctl.service zzz-lxc-override.conf "[Service]
ExecStart=
ExecStart=-$bin"
        break
    fi
done
# systemd-nsresourced uses ProtectSystem=strict and needs /run writable.
dropin systemd-nsresourced.service zzz-lxc-ropath.conf "[Service]
ReadWritePaths=/run"

# 4. Units for hardware and kernel facilities a container doesn't have: masked.
for unit in dev-hugepages.mount run-ribchester-general.mount systemd-hwdb-update.service \
    systemd-journald-audit.socket systemd-modules-load.service systemd-pstore.service \
    ua-messaging.service systemd-firstboot.service systemd-binfmt.service auditd.service \
    colord.service mdmonitor.service; do
    ln -sf /dev/null "$sd/$unit"
done
[ -e /dev/tty1 ] || ln -sf /dev/null "$sd/vconsole-setup-kludge@tty1.service"

# 5. NetworkManager: let it manage the container's veth.
if [ -d /etc/udev ]; then
    mkdir -p /run/udev/rules.d
    printf '%s\n' 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="eth*", ENV{NM_UNMANAGED}="0"' > /run/udev/rules.d/90-lxc-net.rules
fi
: "$out"
exit 0
