//! Downloaders: each turns `source:` into an unpacked rootfs, verifying what it downloads.

mod alpine;
mod busybox;
mod debootstrap;
mod rootfs_http;

use crate::definition::Definition;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    #[error("{0}")]
    Other(String),
}

pub fn other(msg: impl Into<String>) -> SourceError {
    SourceError::Other(msg.into())
}

/// Where and how a source is fetched.
pub struct SourceContext<'a> {
    pub def: &'a Definition,
    pub rootfs: &'a Path,
    pub sources_dir: &'a Path,
    pub insecure: bool,
    /// Files the source downloaded, with their sha256 (for the step cache).
    pub fetched: Vec<(PathBuf, String)>,
}

impl SourceContext<'_> {
    pub fn dir(&self) -> PathBuf {
        let img = &self.def.image;
        crate::download::source_dir(
            self.sources_dir,
            &img.distribution,
            &img.release,
            &img.architecture_mapped,
        )
    }
}

/// Fills `ctx.rootfs` from the definition's source.
pub fn fetch(ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
    std::fs::create_dir_all(ctx.rootfs)
        .map_err(|e| other(format!("{}: {e}", ctx.rootfs.display())))?;
    match ctx.def.source.downloader.as_str() {
        "busybox" => busybox::fetch(ctx),
        "alpinelinux-http" => alpine::fetch(ctx),
        "rootfs-http" => rootfs_http::fetch(ctx),
        "debootstrap" => debootstrap::fetch(ctx),
        other_name => Err(other(format!(
            "source.downloader: \"{other_name}\" is not implemented by warren-build"
        ))),
    }?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(ctx.rootfs, std::fs::Permissions::from_mode(0o755));
    Ok(())
}

/// What identifies the upstream source as it is now, cheaply, for the step cache (the published
/// checksum, the suite's InRelease, the host busybox's hash); None: the stage is not cached.
pub fn identity(ctx: &SourceContext<'_>) -> Result<Option<String>, SourceError> {
    let def = ctx.def;
    let render = |s: &str| {
        crate::pongo::render(s, &crate::context(def)).map_err(|e| other(format!("source.url: {e}")))
    };
    Ok(match def.source.downloader.as_str() {
        "busybox" if def.source.url.is_empty() => {
            Some(crate::download::sha256_file(&busybox::host_busybox()?)?)
        }
        "busybox" => {
            let url = render(&def.source.url)?;
            crate::download::get_text(&format!(
                "{}/busybox-{}.tar.bz2.sha256",
                url.trim_end_matches('/'),
                def.image.release
            ))?
        }
        "alpinelinux-http" => alpine::identity(ctx)?,
        "rootfs-http" => {
            let url = render(&def.source.url)?;
            match url.strip_prefix("file://") {
                Some(path) => Some(crate::download::sha256_file(Path::new(path))?),
                None => crate::download::get_text(&format!("{url}.sha256"))?,
            }
        }
        "debootstrap" => {
            let url = if def.source.url.is_empty() {
                "http://deb.debian.org/debian".to_string()
            } else {
                render(&def.source.url)?
            };
            let suite = if def.source.suite.is_empty() {
                &def.image.release
            } else {
                &def.source.suite
            };
            let base = format!("{}/dists/{suite}", url.trim_end_matches('/'));
            match crate::download::get_text(&format!("{base}/InRelease"))? {
                Some(t) => Some(t),
                None => crate::download::get_text(&format!("{base}/Release"))?,
            }
        }
        _ => None,
    })
}

/// Unpacks a tarball (or squashfs) into the rootfs safely.
pub fn unpack(archive: &Path, rootfs: &Path) -> Result<(), SourceError> {
    let mut magic = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open(archive) {
        let _ = std::io::Read::read(&mut f, &mut magic);
    }
    if &magic == b"hsqs" {
        let out = std::process::Command::new("unsquashfs")
            .args(["-f", "-n", "-d"])
            .arg(rootfs)
            .arg(archive)
            .output()
            .map_err(|e| other(format!("unsquashfs: {e} (apt-get install squashfs-tools)")))?;
        if !out.status.success() {
            return Err(other(format!(
                "unsquashfs {}: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        return Ok(());
    }
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let mut done = 0;
    warren_image::unpack::unpack_fstree_with_progress(archive, rootfs, false, &mut |n| {
        done = n;
        crate::progress::bytes(&format!("unpacking {name}"), n);
    })
    .map_err(|e| other(format!("{e:#}")))?;
    crate::progress::finish(
        &format!("unpacking {name}"),
        &format!(
            "unpacked {name}: {} in {:.1}s",
            crate::progress::human(done),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}
