//! Simplestreams as Incus reads it: `streams/v1/index.json` and `streams/v1/images.json`
//! (products `os:release:arch:variant`, versions `YYYYMMDD_hhmm`, items with sha256 and the
//! combined fingerprints), read and written.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Index {
    pub format: String,
    pub index: BTreeMap<String, IndexEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    pub datatype: String,
    pub path: String,
    pub format: String,
    pub products: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Products {
    pub content_id: String,
    pub datatype: String,
    pub format: String,
    pub products: BTreeMap<String, Product>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Product {
    pub aliases: String,
    pub arch: String,
    pub os: String,
    pub release: String,
    pub release_title: String,
    pub variant: String,
    pub versions: BTreeMap<String, Version>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub items: BTreeMap<String, Item>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub ftype: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub combined_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub combined_squashfs_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub combined_rootxz_sha256: Option<String>,
}

impl Index {
    /// The index of one products file listing `products`.
    pub fn for_products(products: Vec<String>) -> Index {
        let mut index = BTreeMap::new();
        index.insert(
            "images".to_string(),
            IndexEntry {
                datatype: "image-downloads".into(),
                path: "streams/v1/images.json".into(),
                format: "products:1.0".into(),
                products,
            },
        );
        Index {
            format: "index:1.0".into(),
            index,
        }
    }
}

impl Products {
    pub fn new() -> Products {
        Products {
            content_id: "images".into(),
            datatype: "image-downloads".into(),
            format: "products:1.0".into(),
            products: BTreeMap::new(),
        }
    }
}

/// The simplestreams name of this machine's architecture (`amd64`, `arm64`, ...).
pub fn host_arch() -> String {
    let machine = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default();
    canonical_arch(&machine)
}

/// An architecture's Debian-style name, whichever name a server used (`x86_64` or `amd64`).
pub fn canonical_arch(name: &str) -> String {
    match name {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i586" | "i386" => "i386",
        "armv7l" => "armhf",
        "ppc64le" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
    .to_string()
}

/// An image a server offers, resolved for one architecture: its metadata tarball and its squashfs
/// rootfs, and the fingerprint Incus gives the pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub product: String,
    pub version: String,
    pub metadata: Item,
    pub rootfs: Item,
    pub fingerprint: String,
    pub aliases: Vec<String>,
}

impl Version {
    /// Its metadata tarball and squashfs, when it has both.
    pub fn split_pair(&self) -> Option<(&Item, &Item)> {
        let meta = self
            .items
            .values()
            .find(|i| i.ftype == "incus.tar.xz" || i.ftype == "lxd.tar.xz")?;
        let root = self.items.values().find(|i| i.ftype == "squashfs")?;
        Some((meta, root))
    }
}

impl Products {
    /// The newest version of the product that `wanted` names for `arch`: one of its aliases,
    /// `os/release[/variant]`, or a fingerprint (or a prefix of one, at least 12 characters).
    pub fn resolve(&self, wanted: &str, arch: &str) -> Option<Resolved> {
        let by_fingerprint = wanted.len() >= 12 && wanted.chars().all(|c| c.is_ascii_hexdigit());
        let mut found: Option<Resolved> = None;
        for (key, p) in &self.products {
            if canonical_arch(&p.arch) != canonical_arch(arch) && !by_fingerprint {
                continue;
            }
            let aliases: Vec<String> = p
                .aliases
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            let named = aliases.iter().any(|a| a == wanted)
                || format!("{}/{}", p.os, p.release).eq_ignore_ascii_case(wanted)
                || format!("{}/{}/{}", p.os, p.release, p.variant).eq_ignore_ascii_case(wanted);
            for (version, v) in &p.versions {
                let Some((meta, root)) = v.split_pair() else {
                    continue;
                };
                let Some(fp) = meta.combined_squashfs_sha256.clone() else {
                    continue;
                };
                let matches = if by_fingerprint {
                    fp.starts_with(&wanted.to_ascii_lowercase())
                } else {
                    named
                };
                // versions (`YYYYMMDD_hhmm`) sort as text; a fingerprint names one version
                let newer = match &found {
                    None => true,
                    Some(_) if by_fingerprint => false,
                    Some(r) => version.as_str() > r.version.as_str(),
                };
                if matches && newer {
                    found = Some(Resolved {
                        product: key.clone(),
                        version: version.clone(),
                        metadata: meta.clone(),
                        rootfs: root.clone(),
                        fingerprint: fp,
                        aliases: aliases.clone(),
                    });
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;

    fn item(ftype: &str, combined: Option<&str>) -> Item {
        Item {
            ftype: ftype.into(),
            path: format!("images/x/{ftype}"),
            sha256: "00".into(),
            size: 1,
            combined_squashfs_sha256: combined.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn newest_version_by_alias_or_fingerprint() {
        let mut p = Products::new();
        let mut product = Product {
            aliases: "bb, busybox/1.35".into(),
            arch: "amd64".into(),
            os: "BusyBox".into(),
            release: "1.35".into(),
            variant: "default".into(),
            ..Default::default()
        };
        for (v, fp) in [
            ("20261101_0000", "aaaa1111bbbb2222"),
            ("20261129_0000", "cccc3333dddd4444"),
        ] {
            let mut items = BTreeMap::new();
            items.insert("incus.tar.xz".to_string(), item("incus.tar.xz", Some(fp)));
            items.insert("root.squashfs".to_string(), item("squashfs", None));
            product.versions.insert(v.into(), Version { items });
        }
        p.products
            .insert("busybox:1.35:amd64:default".into(), product);
        let r = p.resolve("bb", "amd64").expect("by alias");
        assert_eq!(r.fingerprint, "cccc3333dddd4444");
        assert_eq!(
            p.resolve("busybox/1.35/default", "amd64")
                .map(|r| r.version),
            Some("20261129_0000".into())
        );
        assert_eq!(
            p.resolve("aaaa1111bbbb", "amd64").map(|r| r.version),
            Some("20261101_0000".into())
        );
        assert!(p.resolve("bb", "arm64").is_none());
        assert!(
            p.resolve("bb", "x86_64").is_some(),
            "either name of the architecture"
        );
        assert!(p.resolve("nosuch", "amd64").is_none());
    }
}
