//! `busybox`: with `url`, busybox-<release>.tar.bz2 is downloaded, verified and compiled static, as
//! distrobuilder does; without `url` (a warren extension) the host's static busybox is used, so a
//! busybox image builds with no network at all. Either way the rootfs gets the applet links and a
//! minimal /etc.

use super::{other, SourceContext, SourceError};
use crate::download;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fetch(ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
    let binary = if ctx.def.source.url.is_empty() {
        host_busybox()?
    } else {
        compile(ctx)?
    };
    let root = ctx.rootfs;
    for d in [
        "bin",
        "dev",
        "etc",
        "etc/init.d",
        "home",
        "lib",
        "mnt",
        "proc",
        "root",
        "run",
        "sbin",
        "sys",
        "tmp",
        "usr/bin",
        "usr/lib",
        "usr/sbin",
        "var/cache",
        "var/lib",
        "var/log",
        "var/spool",
        "var/tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| other(format!("mkdir {d}: {e}")))?;
    }
    for (d, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)] {
        let _ = std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(mode));
    }
    let target = root.join("bin/busybox");
    std::fs::copy(&binary, &target).map_err(|e| other(format!("copy busybox: {e}")))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| other(e.to_string()))?;
    ctx.fetched
        .push((binary.clone(), download::sha256_file(&binary)?));
    let list = Command::new(&binary)
        .arg("--list-full")
        .output()
        .map_err(|e| other(format!("busybox --list-full: {e}")))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = root.join(applet);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let _ = std::os::unix::fs::symlink(target, link);
    }
    let files: &[(&str, &str, u32)] = &[
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
        ("etc/group", "root:x:0:\n", 0o644),
        ("etc/shadow", "root:*:10933:0:99999:7:::\n", 0o600),
        ("etc/hostname", "distrobuilder\n", 0o644),
        (
            "etc/hosts",
            "127.0.0.1\tlocalhost\n127.0.1.1\tdistrobuilder\n",
            0o644,
        ),
        (
            "etc/os-release",
            "NAME=\"BusyBox\"\nID=busybox\nPRETTY_NAME=\"BusyBox\"\n",
            0o644,
        ),
    ];
    for (path, content, mode) in files {
        let p = root.join(path);
        if p.symlink_metadata().is_err() {
            std::fs::write(&p, content).map_err(|e| other(format!("write {path}: {e}")))?;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode));
        }
    }
    Ok(())
}

pub(super) fn host_busybox() -> Result<PathBuf, SourceError> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(p);
        if path.is_file() {
            if is_static(path) {
                return Ok(path.to_path_buf());
            }
            return Err(other(format!(
                "{p} is dynamically linked: install busybox-static, or give source.url to compile busybox"
            )));
        }
    }
    Err(other("no busybox on this host: apt-get install busybox-static, or give source.url to compile busybox"))
}

/// An ELF without a PT_INTERP program header needs no dynamic loader.
fn is_static(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    };
    let (Some(phoff), phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != 3)
            .unwrap_or(true)
    })
}

fn compile(ctx: &mut SourceContext<'_>) -> Result<PathBuf, SourceError> {
    let def = ctx.def;
    let url = crate::pongo::render(&def.source.url, &crate::context(def))
        .map_err(|e| other(format!("source.url: {e}")))?;
    let file = format!("busybox-{}.tar.bz2", def.image.release);
    let verification = download::policy(
        &url,
        &def.source.keys,
        def.source.skip_verification,
        ctx.insecure,
    )?;
    let dir = ctx.dir();
    std::fs::create_dir_all(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let tarball = dir.join(&file);
    download::fetch_verified(
        &format!("{}/{file}", url.trim_end_matches('/')),
        &tarball,
        &verification,
    )?;
    let src = dir.join(format!("busybox-{}", def.image.release));
    let built = src.join("busybox");
    if built.is_file() {
        return Ok(built);
    }
    let run = |what: &str, cmd: &mut Command| -> Result<(), SourceError> {
        let status = cmd.status().map_err(|e| other(format!("{what}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(other(format!("{what} failed ({status})")))
        }
    };
    crate::progress::step(&format!("compiling busybox {}", def.image.release));
    run(
        "tar -xjf",
        Command::new("tar")
            .arg("-xjf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir),
    )?;
    run(
        "make defconfig",
        Command::new("make").arg("-C").arg(&src).arg("defconfig"),
    )?;
    let config = src.join(".config");
    let text = std::fs::read_to_string(&config)
        .map_err(|e| other(format!("{}: {e}", config.display())))?;
    let text = text.replace("# CONFIG_STATIC is not set", "CONFIG_STATIC=y");
    std::fs::write(&config, text).map_err(|e| other(format!("{}: {e}", config.display())))?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    run(
        "make busybox",
        Command::new("make")
            .arg("-C")
            .arg(&src)
            .arg(format!("-j{jobs}"))
            .arg("busybox"),
    )?;
    Ok(built)
}
