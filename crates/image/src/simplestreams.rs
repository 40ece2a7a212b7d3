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
