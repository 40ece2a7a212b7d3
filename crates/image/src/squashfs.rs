//! `rootfs.squashfs` through mksquashfs, with distrobuilder's options (1M blocks, no exports, xattrs
//! kept) and fixed times for reproducible images.

use crate::compression::{Compression, CompressionError};
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("mksquashfs is not installed (apt-get install squashfs-tools): {0}")]
    Missing(std::io::Error),
    #[error("mksquashfs failed: {0}")]
    Failed(String),
}

pub fn make(
    rootfs: &Path,
    out: &Path,
    c: Compression,
    mtime: Option<i64>,
) -> Result<(), SquashfsError> {
    let _ = std::fs::remove_file(out);
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(rootfs)
        .arg(out)
        .args([
            "-noappend",
            "-b",
            "1M",
            "-no-exports",
            "-no-progress",
            "-no-recovery",
            "-quiet",
        ])
        .args(c.squashfs_args()?);
    // mksquashfs reads SOURCE_DATE_EPOCH itself (creation time, and later file times clamped to
    // it) and refuses -mkfs-time beside it; pass it explicitly so callers decide.
    cmd.env_remove("SOURCE_DATE_EPOCH");
    if let Some(t) = mtime {
        cmd.env("SOURCE_DATE_EPOCH", t.to_string());
    }
    let output = cmd.output().map_err(SquashfsError::Missing)?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        return Err(SquashfsError::Failed(
            text.lines()
                .last()
                .unwrap_or("no message")
                .trim()
                .to_string(),
        ));
    }
    Ok(())
}
