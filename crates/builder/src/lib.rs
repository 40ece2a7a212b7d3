//! warren-build's library: distrobuilder-compatible definitions, downloaders, the build sandbox,
//! package managers, file generators and packing into LXC and Incus images.

pub mod arch;
pub mod build;
pub mod definition;
pub mod download;
pub mod filter;
pub mod generators;
pub mod load;
pub mod managers;
pub mod overrides;
pub mod pack;
pub mod packages;
pub use warren_image::pongo;
pub mod progress;
pub mod sandbox;
pub mod sources;
pub mod stepcache;
pub mod yaml;

/// The definition as a template context: keys are the YAML names (`image.release`, ...).
pub fn context(def: &definition::Definition) -> serde_json::Value {
    serde_json::to_value(def).unwrap_or(serde_json::Value::Null)
}
