//! The step cache (`--step-cache DIR`, default /var/cache/warren-build; `--no-cache` turns it off):
//! the unpacked or bootstrapped source, the customised rootfs and the packed outputs, each kept by a
//! hash of everything that determines it, so a rebuild skips every stage whose inputs are unchanged.
//! distrobuilder's `--cache-dir` stays what it is there: the per-build work directory.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
#[error("step cache {path}: {message}")]
pub struct CacheError {
    pub path: String,
    pub message: String,
}

/// How many entries the cache keeps (oldest go first).
const KEEP: usize = 12;

#[derive(Debug, Clone)]
pub struct StepCache {
    dir: Option<PathBuf>,
}

/// A hash of the given parts, each length-prefixed so no two lists collide.
pub fn key(stage: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(stage.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn err(path: &Path, message: impl Into<String>) -> CacheError {
    CacheError {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// `cp -a` (reflinks where the filesystem has them): owners, modes, times, xattrs, links, nodes.
fn copy_tree(from: &Path, to: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(to).map_err(|e| err(to, e.to_string()))?;
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .map_err(|e| err(to, format!("cp: {e}")))?;
    if !out.status.success() {
        return Err(err(
            to,
            format!("cp: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    Ok(())
}

impl StepCache {
    pub fn new(dir: Option<PathBuf>) -> StepCache {
        StepCache { dir }
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn entry(&self, stage: &str, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{stage}-{key}")))
    }

    /// Copies a cached tree into `target` (which must be empty or absent); false on a miss.
    pub fn restore(&self, stage: &str, key: &str, target: &Path) -> Result<bool, CacheError> {
        let Some(entry) = self.entry(stage, key) else {
            return Ok(false);
        };
        if !entry.join("complete").exists() {
            return Ok(false);
        }
        copy_tree(&entry.join("data"), target)?;
        let _ = Command::new("touch").arg(&entry).status();
        Ok(true)
    }

    /// Keeps a copy of `source` under the key. Written aside and renamed: a reader never sees half
    /// an entry, and a failed copy leaves none.
    pub fn store(&self, stage: &str, key: &str, source: &Path) -> Result<(), CacheError> {
        let Some(entry) = self.entry(stage, key) else {
            return Ok(());
        };
        let Some(dir) = self.dir.as_ref() else {
            return Ok(());
        };
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
        let tmp = dir.join(format!(".tmp-{stage}-{key}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let r = copy_tree(source, &tmp.join("data")).and_then(|_| {
            std::fs::write(tmp.join("complete"), "").map_err(|e| err(&tmp, e.to_string()))?;
            let _ = std::fs::remove_dir_all(&entry);
            std::fs::rename(&tmp, &entry).map_err(|e| err(&entry, e.to_string()))
        });
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        r?;
        self.prune();
        Ok(())
    }

    fn prune(&self) {
        let Some(dir) = self.dir.as_ref() else { return };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= KEEP {
            return;
        }
        entries.sort();
        for (_, p) in entries.iter().take(entries.len() - KEEP) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}
