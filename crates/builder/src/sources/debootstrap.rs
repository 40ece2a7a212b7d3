//! `debootstrap`: the host's debootstrap against the definition's mirror (`url`, `suite`,
//! `variant`, `components`, `same_as`, early package sets, armored keys as its keyring).

use super::{other, SourceContext, SourceError};
use crate::filter::{applies, Phase};
use std::process::Command;

pub fn fetch(ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
    let def = ctx.def;
    let src = &def.source;
    let suite = if src.suite.is_empty() {
        def.image.release.clone()
    } else {
        src.suite.clone()
    };
    let url = if src.url.is_empty() {
        "http://deb.debian.org/debian".to_string()
    } else {
        crate::pongo::render(&src.url, &crate::context(def))
            .map_err(|e| other(format!("source.url: {e}")))?
    };
    let mut cmd = Command::new("debootstrap");
    if !src.variant.is_empty() {
        cmd.arg(format!("--variant={}", src.variant));
    }
    cmd.arg(format!("--arch={}", def.image.architecture_mapped));
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for set in def
        .packages
        .sets
        .iter()
        .filter(|s| s.early && applies(&s.filter, def, Phase::Dir))
    {
        let list = if set.action == "install" {
            &mut include
        } else {
            &mut exclude
        };
        list.extend(set.packages.iter().cloned());
    }
    if !include.is_empty() {
        cmd.arg(format!("--include={}", include.join(",")));
    }
    if !exclude.is_empty() {
        cmd.arg(format!("--exclude={}", exclude.join(",")));
    }
    if !src.components.is_empty() {
        cmd.arg(format!("--components={}", src.components.join(",")));
    }
    let work = tempfile::Builder::new()
        .prefix("debootstrap-")
        .tempdir_in(ctx.sources_dir)
        .map_err(|e| other(format!("{}: {e}", ctx.sources_dir.display())))?;
    if src.skip_verification {
        crate::download::policy(&url, &[], true, ctx.insecure)?;
        cmd.arg("--no-check-gpg");
    } else if !src.keys.is_empty() {
        let keyring = work.path().join("keyring.gpg");
        let mut binary = Vec::new();
        for (i, k) in src.keys.iter().enumerate() {
            let out = dearmor(k).map_err(|e| other(format!("source.keys.{i}: {e}")))?;
            binary.extend(out);
        }
        std::fs::write(&keyring, binary)
            .map_err(|e| other(format!("{}: {e}", keyring.display())))?;
        cmd.arg(format!("--keyring={}", keyring.display()));
    }
    // same_as: a scripts directory of our own where <suite> is <same_as>'s script; the host's
    // /usr/share/debootstrap is never changed.
    if !src.same_as.is_empty() {
        let scripts = std::path::Path::new("/usr/share/debootstrap/scripts");
        if !scripts.join(&suite).exists() {
            let dir = work.path().join("debootstrap");
            copy_tree(std::path::Path::new("/usr/share/debootstrap"), &dir)
                .map_err(|e| other(format!("copy debootstrap's scripts: {e}")))?;
            let _ = std::os::unix::fs::symlink(&src.same_as, dir.join("scripts").join(&suite));
            cmd.env("DEBOOTSTRAP_DIR", &dir);
        }
    }
    // The downloaded .debs are kept in the sources dir (debootstrap checks them against the
    // suite's signed Packages lists each time), so a rebuild doesn't fetch them again.
    let debs = ctx.sources_dir.join(format!(
        "debootstrap-{suite}-{}",
        def.image.architecture_mapped
    ));
    if std::fs::create_dir_all(&debs).is_ok() {
        if let Ok(abs) = std::fs::canonicalize(&debs) {
            cmd.arg(format!("--cache-dir={}", abs.display()));
        }
    }
    cmd.arg(&suite).arg(ctx.rootfs).arg(&url);
    crate::progress::step(&format!("debootstrap {suite} from {url}"));
    let status = cmd
        .status()
        .map_err(|e| other(format!("debootstrap: {e} (apt-get install debootstrap)")))?;
    if !status.success() {
        let log = ctx.rootfs.join("debootstrap/debootstrap.log");
        return Err(other(format!(
            "debootstrap failed ({status}); its log is {}",
            log.display()
        )));
    }
    // debootstrap copies the build host's hostname into the rootfs: not ours to ship.
    let _ = std::fs::write(ctx.rootfs.join("etc/hostname"), "distrobuilder\n");
    // ... and its resolv.conf: the build sandbox binds the host's over it while it runs, the image
    // itself gets none of the build host's name servers.
    let resolv = ctx.rootfs.join("etc/resolv.conf");
    if resolv
        .symlink_metadata()
        .map(|m| m.is_file())
        .unwrap_or(false)
    {
        let _ = std::fs::write(&resolv, "");
    }
    Ok(())
}

fn dearmor(key: &str) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut child = Command::new("gpg")
        .args(["--batch", "--homedir"])
        .arg(home.path())
        .arg("--dearmor")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("gpg: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(key.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "gpg --dearmor: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
