//! `image.json`: what warren-build writes beside every image it makes (os, release, arch,
//! variant, serial, ...), so that publishing needs no definition and no guessing from file names.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FILE: &str = "image.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageInfo {
    /// `image.distribution`.
    pub os: String,
    pub release: String,
    /// The architecture as the distribution names it (`amd64`), LXC's index and simplestreams use it.
    pub arch: String,
    /// The Incus name (`x86_64`).
    pub architecture: String,
    pub variant: String,
    /// `YYYYMMDD_hhmm`.
    pub serial: String,
    pub description: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InfoError {
    pub path: String,
    pub message: String,
}

impl ImageInfo {
    pub fn read(dir: &Path) -> Result<ImageInfo, InfoError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| InfoError {
            path: path.display().to_string(),
            message: format!("{e} (is this a directory warren-build wrote an image into?)"),
        })?;
        let info: ImageInfo = serde_json::from_str(&text).map_err(|e| InfoError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        for (field, value) in [
            ("os", &info.os),
            ("release", &info.release),
            ("arch", &info.arch),
            ("variant", &info.variant),
            ("serial", &info.serial),
        ] {
            if !is_path_word(value) {
                return Err(InfoError {
                    path: path.display().to_string(),
                    message: format!("{field} \"{value}\" can't name a directory of the tree"),
                });
            }
        }
        Ok(info)
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(FILE), format!("{text}\n"))
    }

    /// `os:release:arch:variant`, the simplestreams product key.
    pub fn product(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.os, self.release, self.arch, self.variant
        )
    }
}

/// A word that is safe as one path component of a tree: no `/`, not `.` or `..`, no control chars.
pub fn is_path_word(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '~'))
}
