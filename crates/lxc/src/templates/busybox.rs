//! The `busybox` template: a rootfs from the host's statically linked busybox, with applet links, a
//! working /sbin/init and inittab (a shell on the console, getty on tty1), as LXC's lxc-busybox.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{TemplateContext, TemplateOutput};

/// Whether the ELF file at `path` is statically linked (has no PT_INTERP program header).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        bail!("{} is not a 64-bit ELF binary", path.display());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let phentsize = u16_at(0x36);
    let phnum = u16_at(0x38);
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > data.len() {
            bail!("{} has a truncated program header table", path.display());
        }
        let p_type = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
        if p_type == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The static busybox to copy: `$WARREN_BUSYBOX`, else /bin/busybox or /usr/bin/busybox.
pub fn find_busybox() -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("WARREN_BUSYBOX") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec!["/bin/busybox".into(), "/usr/bin/busybox".into()],
    };
    for c in &candidates {
        if c.is_file() {
            if is_static_elf(c)? {
                return Ok(c.clone());
            }
            bail!(
                "{} is dynamically linked; the busybox template needs a static busybox (apt-get install busybox-static)",
                c.display()
            );
        }
    }
    bail!("no busybox found; install a static one (apt-get install busybox-static)")
}

const INITTAB: &str = "\
# warren busybox template: rcS once, a shell on the console, getty on tty1.
# No umount -a -r at shutdown: the runtime tears the mounts down, and in a privileged
# container a read-only remount of / reaches the host filesystem's superblock.
::sysinit:/etc/init.d/rcS
tty1::respawn:/sbin/getty -L tty1 115200 vt100
console::askfirst:/bin/sh
";

const RCS: &str = "\
#!/bin/sh
# warren busybox template: proc, sys, dev are mounted by the runtime (lxc.mount.auto, lxc.autodev)
[ -e /proc/self ] || mount -t proc proc /proc
ip link set lo up 2>/dev/null
# DHCP on the interfaces the runtime left without an address (lxc.net.N.ipv4.address)
for i in /sys/class/net/eth*; do
  [ -e \"$i\" ] || continue
  ip -4 addr show dev \"${i##*/}\" | grep -q inet && continue
  udhcpc -i \"${i##*/}\" -x hostname:\"$(hostname)\" -b -t 10 -T 1 -s /usr/share/udhcpc/default.script >/var/log/udhcpc.log 2>&1
done
";

const UDHCPC_SCRIPT: &str = "\
#!/bin/sh
case \"$1\" in
  deconfig) ip addr flush dev \"$interface\"; ip link set \"$interface\" up ;;
  renew|bound)
    ip addr flush dev \"$interface\"
    ip addr add \"$ip/${mask:-24}\" ${broadcast:+broadcast $broadcast} dev \"$interface\"
    [ -n \"$router\" ] && { ip route del default 2>/dev/null; ip route add default via ${router%% *} dev \"$interface\"; }
    : > /etc/resolv.conf
    for d in $dns; do echo \"nameserver $d\" >> /etc/resolv.conf; done ;;
esac
exit 0
";

pub fn create(ctx: &TemplateContext<'_>) -> Result<TemplateOutput> {
    let bb = find_busybox()?;
    let root = ctx.rootfs;
    let w = |rel: &str, text: &str, mode: u32| -> Result<()> {
        let p = root.join(rel);
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", p.display()))
    };
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "proc",
        "sys",
        "dev",
        "dev/pts",
        "tmp",
        "root",
        "run",
        "var/log",
        "var/run",
        "usr/share/udhcpc",
        "mnt",
        "home",
        "lib",
    ] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::set_permissions(root.join("root"), std::fs::Permissions::from_mode(0o700))?;
    let dest = root.join("bin/busybox");
    std::fs::copy(&bb, &dest)
        .with_context(|| format!("copy {} to {}", bb.display(), dest.display()))?;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    let list = Command::new(&bb)
        .arg("--list-full")
        .output()
        .with_context(|| format!("run {} --list-full", bb.display()))?;
    if !list.status.success() {
        bail!("{} --list-full failed", bb.display());
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let link = root.join(applet);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        symlink(&target, &link).with_context(|| format!("link {}", link.display()))?;
    }
    if root.join("sbin/init").symlink_metadata().is_err() {
        symlink("../bin/busybox", root.join("sbin/init"))?;
    }
    w("etc/inittab", INITTAB, 0o644)?;
    w("etc/init.d/rcS", RCS, 0o755)?;
    w("usr/share/udhcpc/default.script", UDHCPC_SCRIPT, 0o755)?;
    w("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    w("etc/group", "root:x:0:\ntty:x:5:\n", 0o644)?;
    w("etc/shadow", "root::0:0:99999:7:::\n", 0o600)?;
    w("etc/hostname", &format!("{}\n", ctx.name), 0o644)?;
    w("etc/resolv.conf", "", 0o644)?;
    w(
        "etc/profile",
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        0o644,
    )?;
    Ok(TemplateOutput {
        config_lines: vec![
            format!(
                "lxc.include = {}/common.conf",
                warren_lxc_config::WARREN_CONFIG_DIR
            ),
            "# busybox init halts on SIGUSR1 and reboots on SIGTERM".to_string(),
            "lxc.signal.halt = SIGUSR1".to_string(),
            "lxc.signal.reboot = SIGTERM".to_string(),
            "lxc.tty.max = 1".to_string(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dynamic_binaries() {
        // the test binary itself is dynamically linked
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        assert!(is_static_elf(&f).is_err());
    }
}
