//! A published image tree that serves LXC's download protocol and simplestreams at once, as
//! images.linuxcontainers.org does:
//!
//! ```text
//! meta/1.0/index-system[.asc], index-user        dist;release;arch;variant;serial;/images/.../
//! streams/v1/index.json, images.json             simplestreams
//! images/<os>/<release>/<arch>/<variant>/<serial>/
//!     meta.tar.xz[.asc] rootfs.tar.xz[.asc]      LXC
//!     incus.tar.xz[.asc] rootfs.squashfs[.asc]   Incus (items incus.tar.xz, squashfs, root.tar.xz)
//!     image.json
//! keys/signing.asc                               the public key clients verify with
//! ```
//!
//! The indexes are a function of the `images/` directory, rewritten whole (write aside, rename) after
//! each change, so a reader never sees half an index; versions appear and disappear by renames too.

use crate::info::{self, ImageInfo};
use crate::sign::{SignError, Signer};
use crate::simplestreams::{Index, Item, Product, Products, Version};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Info(#[from] info::InfoError),
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path, e: impl std::fmt::Display) -> TreeError {
    TreeError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The files an image version may have, by their name in the tree.
pub const LXC_FILES: [&str; 2] = ["meta.tar.xz", "rootfs.tar.xz"];
pub const INCUS_FILES: [&str; 2] = ["incus.tar.xz", "rootfs.squashfs"];

/// One published version.
#[derive(Debug, Clone)]
pub struct Entry {
    pub info: ImageInfo,
    /// Relative to the tree: `images/<os>/<release>/<arch>/<variant>/<serial>`.
    pub path: String,
    pub files: BTreeSet<String>,
}

impl Entry {
    pub fn has_lxc(&self) -> bool {
        LXC_FILES.iter().all(|f| self.files.contains(*f))
    }
    pub fn has_incus(&self) -> bool {
        INCUS_FILES.iter().all(|f| self.files.contains(*f))
    }
}

pub struct Tree {
    pub root: PathBuf,
}

fn sha256_file(path: &Path) -> Result<(String, u64), TreeError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| io(path, e))?;
    Ok((hex::encode(h.finalize()), n))
}

/// sha256 of the concatenation of files (Incus's combined fingerprints).
fn sha256_concat(paths: &[PathBuf]) -> Result<String, TreeError> {
    let mut h = Sha256::new();
    for p in paths {
        let mut f = std::fs::File::open(p).map_err(|e| io(p, e))?;
        std::io::copy(&mut f, &mut h).map_err(|e| io(p, e))?;
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes `path` through a temporary file and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), TreeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, data).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

impl Tree {
    pub fn open(root: &Path) -> Result<Tree, TreeError> {
        std::fs::create_dir_all(root.join("images")).map_err(|e| io(root, e))?;
        let root = std::fs::canonicalize(root).map_err(|e| io(root, e))?;
        Ok(Tree { root })
    }

    /// Adds the image a build wrote into `dir` (image.json plus LXC and/or Incus files), signed.
    pub fn publish(&self, dir: &Path, signer: &Signer) -> Result<Entry, TreeError> {
        let info = ImageInfo::read(dir)?;
        let mut files = Vec::new();
        for name in LXC_FILES.iter().chain(INCUS_FILES.iter()) {
            if dir.join(name).is_file() {
                files.push(*name);
            }
        }
        let lxc = LXC_FILES.iter().all(|f| files.contains(f));
        let incus = INCUS_FILES.iter().all(|f| files.contains(f));
        if !lxc && !incus {
            return Err(TreeError::Refused(format!(
                "{}: no image to publish: it needs meta.tar.xz + rootfs.tar.xz (build-lxc) or incus.tar.xz + rootfs.squashfs (build-incus), xz-compressed",
                dir.display()
            )));
        }
        let rel = format!(
            "images/{}/{}/{}/{}/{}",
            info.os, info.release, info.arch, info.variant, info.serial
        );
        let target = self.root.join(&rel);
        if target.exists() {
            return Err(TreeError::Refused(format!(
                "{} {} is already published; remove it first, or build with a new image.serial",
                info.product(),
                info.serial
            )));
        }
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let tmp = parent.join(format!(".{}.tmp-{}", info.serial, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let staged = (|| {
            for name in files.iter().chain(std::iter::once(&info::FILE)) {
                let from = dir.join(name);
                let to = tmp.join(name);
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).map_err(|e| io(&from, e))?;
                }
                if *name != info::FILE {
                    signer.sign(&to)?;
                }
            }
            std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))
        })();
        if let Err(e) = staged {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.write_indexes(signer, None)?;
        Ok(Entry {
            info,
            path: rel,
            files: files.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Every published version, sorted by product then serial.
    pub fn entries(&self) -> Result<Vec<Entry>, TreeError> {
        let mut out = Vec::new();
        let images = self.root.join("images");
        // exactly five levels: os/release/arch/variant/serial
        let mut level: Vec<(PathBuf, String)> = vec![(images, "images".into())];
        for _ in 0..5 {
            let mut next = Vec::new();
            for (dir, rel) in level {
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') || !e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                    {
                        continue;
                    }
                    next.push((e.path(), format!("{rel}/{name}")));
                }
            }
            level = next;
        }
        for (dir, rel) in level {
            let Ok(info) = ImageInfo::read(&dir) else {
                continue;
            };
            let files = LXC_FILES
                .iter()
                .chain(INCUS_FILES.iter())
                .filter(|f| dir.join(f).is_file())
                .map(|f| f.to_string())
                .collect();
            out.push(Entry {
                info,
                path: rel,
                files,
            });
        }
        out.sort_by(|a, b| {
            (a.info.product(), &a.info.serial).cmp(&(b.info.product(), &b.info.serial))
        });
        Ok(out)
    }

    /// Rewrites both protocols' indexes from `images/`, leaving out `except` (versions about to go).
    pub fn write_indexes(
        &self,
        signer: &Signer,
        except: Option<&BTreeSet<String>>,
    ) -> Result<(), TreeError> {
        let entries: Vec<Entry> = self
            .entries()?
            .into_iter()
            .filter(|e| except.map_or(true, |x| !x.contains(&e.path)))
            .collect();
        // LXC: the newest version of each product that has the LXC files
        let mut newest: BTreeMap<String, &Entry> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.has_lxc()) {
            newest.insert(e.info.product(), e);
        }
        let mut index = String::new();
        for e in newest.values() {
            let i = &e.info;
            index.push_str(&format!(
                "{};{};{};{};{};/{}/\n",
                i.os, i.release, i.arch, i.variant, i.serial, e.path
            ));
        }
        // simplestreams
        let mut products = Products::new();
        for e in entries.iter().filter(|e| e.has_incus()) {
            let i = &e.info;
            let dir = self.root.join(&e.path);
            let mut items = BTreeMap::new();
            let meta = dir.join("incus.tar.xz");
            let squash = dir.join("rootfs.squashfs");
            let (meta_sha, meta_size) = sha256_file(&meta)?;
            let (sq_sha, sq_size) = sha256_file(&squash)?;
            let mut meta_item = Item {
                ftype: "incus.tar.xz".into(),
                path: format!("{}/incus.tar.xz", e.path),
                sha256: meta_sha,
                size: meta_size,
                combined_squashfs_sha256: Some(sha256_concat(&[meta.clone(), squash.clone()])?),
                ..Default::default()
            };
            items.insert(
                "root.squashfs".to_string(),
                Item {
                    ftype: "squashfs".into(),
                    path: format!("{}/rootfs.squashfs", e.path),
                    sha256: sq_sha,
                    size: sq_size,
                    ..Default::default()
                },
            );
            if e.has_lxc() {
                let rootxz = dir.join("rootfs.tar.xz");
                let (sha, size) = sha256_file(&rootxz)?;
                let combined = sha256_concat(&[meta.clone(), rootxz])?;
                meta_item.combined_rootxz_sha256 = Some(combined.clone());
                meta_item.combined_sha256 = Some(combined);
                items.insert(
                    "root.tar.xz".to_string(),
                    Item {
                        ftype: "root.tar.xz".into(),
                        path: format!("{}/rootfs.tar.xz", e.path),
                        sha256: sha,
                        size,
                        ..Default::default()
                    },
                );
            }
            items.insert("incus.tar.xz".to_string(), meta_item);
            let product = products.products.entry(i.product()).or_insert_with(|| {
                let mut aliases = vec![format!("{}/{}/{}", i.os, i.release, i.variant)];
                if i.variant == "default" {
                    aliases.push(format!("{}/{}", i.os, i.release));
                }
                Product {
                    aliases: aliases.join(","),
                    arch: i.arch.clone(),
                    os: i.os.clone(),
                    release: i.release.clone(),
                    release_title: i.release.clone(),
                    variant: i.variant.clone(),
                    versions: BTreeMap::new(),
                }
            });
            product.versions.insert(i.serial.clone(), Version { items });
        }
        let index_json = Index::for_products(products.products.keys().cloned().collect());
        let streams = self.root.join("streams/v1");
        // A shrinking list is published index-first (no index names a product images.json lacks),
        // a growing one images-first.
        let old: BTreeSet<String> = std::fs::read(streams.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
            .and_then(|i| {
                i.index
                    .get("images")
                    .map(|e| e.products.iter().cloned().collect())
            })
            .unwrap_or_default();
        let new: BTreeSet<String> = products.products.keys().cloned().collect();
        if new.is_subset(&old) && new != old {
            write_atomic(&streams.join("index.json"), &json_bytes(&index_json))?;
            write_atomic(&streams.join("images.json"), &json_bytes(&products))?;
        } else {
            write_atomic(&streams.join("images.json"), &json_bytes(&products))?;
            write_atomic(&streams.join("index.json"), &json_bytes(&index_json))?;
        }
        let meta = self.root.join("meta/1.0");
        for name in ["index-system", "index-user"] {
            let path = meta.join(name);
            let staged = meta.join(format!(".{name}.staged"));
            write_atomic(&staged, index.as_bytes())?;
            signer.sign(&staged)?;
            std::fs::rename(
                meta.join(format!(".{name}.staged.asc")),
                meta.join(format!("{name}.asc")),
            )
            .map_err(|e| io(&meta, e))?;
            std::fs::rename(&staged, &path).map_err(|e| io(&path, e))?;
        }
        write_atomic(
            &self.root.join("keys/signing.asc"),
            signer.public_key()?.as_bytes(),
        )?;
        Ok(())
    }

    /// Removes versions: the indexes stop naming them first, then their files go.
    fn remove_entries(&self, victims: &[Entry], signer: &Signer) -> Result<(), TreeError> {
        let paths: BTreeSet<String> = victims.iter().map(|e| e.path.clone()).collect();
        self.write_indexes(signer, Some(&paths))?;
        for v in victims {
            let dir = self.root.join(&v.path);
            let gone = dir.with_file_name(format!(
                ".{}.removing-{}",
                v.info.serial,
                std::process::id()
            ));
            std::fs::rename(&dir, &gone).map_err(|e| io(&dir, e))?;
            std::fs::remove_dir_all(&gone).map_err(|e| io(&gone, e))?;
        }
        Ok(())
    }

    /// `PRODUCT` (`os:release:arch:variant`) or `PRODUCT:SERIAL`.
    pub fn remove(&self, spec: &str, signer: &Signer) -> Result<Vec<Entry>, TreeError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (product, serial) = match parts.len() {
            4 => (spec.to_string(), None),
            5 => (parts[..4].join(":"), Some(parts[4])),
            _ => {
                return Err(TreeError::Refused(format!(
                    "\"{spec}\" is not os:release:arch:variant[:serial] (see `warren-build list`)"
                )))
            }
        };
        let victims: Vec<Entry> = self
            .entries()?
            .into_iter()
            .filter(|e| e.info.product() == product && serial.map_or(true, |s| e.info.serial == s))
            .collect();
        if victims.is_empty() {
            return Err(TreeError::Refused(format!(
                "nothing published matches \"{spec}\" (see `warren-build list`)"
            )));
        }
        self.remove_entries(&victims, signer)?;
        Ok(victims)
    }

    /// Keeps the newest `keep` versions of each product (or of `product`).
    pub fn prune(
        &self,
        keep: usize,
        product: Option<&str>,
        signer: &Signer,
    ) -> Result<Vec<Entry>, TreeError> {
        let mut by_product: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for e in self.entries()? {
            if product.map_or(true, |p| e.info.product() == p) {
                by_product.entry(e.info.product()).or_default().push(e);
            }
        }
        let mut victims = Vec::new();
        for (_, mut versions) in by_product {
            versions.sort_by(|a, b| b.info.serial.cmp(&a.info.serial));
            victims.extend(versions.into_iter().skip(keep));
        }
        if !victims.is_empty() {
            self.remove_entries(&victims, signer)?;
        }
        Ok(victims)
    }
}

/// Pretty JSON with a final newline.
fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
