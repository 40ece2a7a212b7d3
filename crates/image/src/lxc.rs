//! LXC image metadata (`meta.tar.xz`): config and config-user with their compat levels,
//! create-message, expiry, excludes-user and templates, as lxc-download and `lxc-create -t local`
//! read them.

use crate::compression::{CompressedWriter, Compression, CompressionError};
use crate::tarball;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct LxcMetadata {
    /// File name (`config`, `config.1`, `config-user`, ...) to contents.
    pub configs: BTreeMap<String, String>,
    pub create_message: String,
    /// Unix time the image expires.
    pub expiry: i64,
    /// Device nodes the rootfs has under /dev (`./dev/...`), which unprivileged users can't create.
    pub excludes_user: Vec<String>,
    /// Absolute paths in the rootfs where LXC_NAME is replaced by the container's name.
    pub templates: Vec<String>,
}

impl LxcMetadata {
    /// Writes `meta.tar.xz` (always xz, flat, as distrobuilder writes it) with times set to `mtime`.
    pub fn write(&self, path: &Path, mtime: i64) -> Result<(), CompressionError> {
        let out = CompressedWriter::create(path, Compression::XZ)?;
        let mut b = tar::Builder::new(out);
        let io = |source| CompressionError::Spawn {
            program: "tar",
            source,
        };
        let mut files: BTreeMap<String, String> = self.configs.clone();
        let msg = if self.create_message.is_empty() {
            "\n".to_string()
        } else {
            ensure_newline(&self.create_message)
        };
        files.insert("create-message".into(), msg);
        files.insert("expiry".into(), format!("{}\n", self.expiry));
        let mut excludes = self.excludes_user.join("\n");
        excludes.push('\n');
        files.insert("excludes-user".into(), excludes);
        if !self.templates.is_empty() {
            files.insert(
                "templates".into(),
                format!("{}\n", self.templates.join("\n")),
            );
        }
        for (name, content) in &files {
            tarball::append_file(&mut b, name, content.as_bytes(), 0o644, mtime).map_err(io)?;
        }
        let out = b.into_inner().map_err(io)?;
        out.finish()
    }
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// `./dev/...` lines for the device nodes under `rootfs/dev`.
pub fn device_nodes(rootfs: &Path) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let mut stack = vec![rootfs.join("dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_char_device() || ft.is_block_device() {
                if let Ok(rel) = e.path().strip_prefix(rootfs) {
                    out.push(format!("./{}", rel.display()));
                }
            }
        }
    }
    out.sort();
    out
}
