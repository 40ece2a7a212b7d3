//! Incus image metadata: `metadata.yaml` (architecture, dates, properties, templates) and the
//! split (`incus.tar.*` + `rootfs.squashfs`) and unified (one tarball with `rootfs/`) layouts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TemplateEntry {
    pub when: Vec<String>,
    pub create_only: bool,
    pub template: String,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub architecture: String,
    pub creation_date: i64,
    pub expiry_date: i64,
    pub properties: BTreeMap<String, String>,
    pub templates: BTreeMap<String, TemplateEntry>,
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Metadata {
    /// `metadata.yaml` as Incus reads it (keys in yaml.v2's order).
    pub fn to_yaml(&self) -> String {
        let mut y = String::new();
        y.push_str(&format!("architecture: {}\n", quoted(&self.architecture)));
        y.push_str(&format!("creation_date: {}\n", self.creation_date));
        y.push_str(&format!("expiry_date: {}\n", self.expiry_date));
        y.push_str("properties:\n");
        for (k, v) in &self.properties {
            y.push_str(&format!("  {k}: {}\n", quoted(v)));
        }
        if self.templates.is_empty() {
            y.push_str("templates: {}\n");
        } else {
            y.push_str("templates:\n");
            for (path, t) in &self.templates {
                y.push_str(&format!("  {}:\n", quoted(path)));
                y.push_str("    when:\n");
                for w in &t.when {
                    y.push_str(&format!("    - {w}\n"));
                }
                y.push_str(&format!("    create_only: {}\n", t.create_only));
                y.push_str(&format!("    template: {}\n", quoted(&t.template)));
                if t.properties.is_empty() {
                    y.push_str("    properties: {}\n");
                } else {
                    y.push_str("    properties:\n");
                    for (k, v) in &t.properties {
                        y.push_str(&format!("      {k}: {}\n", quoted(v)));
                    }
                }
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_yaml_quotes_strings_and_lists_templates() {
        let mut m = Metadata {
            architecture: "x86_64".into(),
            creation_date: 1,
            expiry_date: 2,
            ..Default::default()
        };
        m.properties.insert("release".into(), "3.20".into());
        m.templates.insert(
            "/etc/hostname".into(),
            TemplateEntry {
                when: vec!["create".into()],
                create_only: false,
                template: "hostname.tpl".into(),
                properties: BTreeMap::new(),
            },
        );
        let y = m.to_yaml();
        assert!(y.contains("  release: \"3.20\"\n"), "{y}");
        assert!(y.contains("  \"/etc/hostname\":\n    when:\n    - create\n    create_only: false\n    template: \"hostname.tpl\"\n"), "{y}");
    }
}
