//! The LXC container config format: parse (with includes, resets and legacy-key detection),
//! validate every LXC 5/6 key, write back, and map to the runtime's `ContainerSpec`.
#![forbid(unsafe_code)]

mod error;
pub mod keys;
mod mapping;
mod parse;
mod shipped;
pub mod value;
mod write;

pub use error::{Error, Warning};
pub use keys::{KeyInfo, KeyShape, KeyStatus};
pub use mapping::to_spec;
pub use parse::{set_key_in_text, Config, Entry, Line, ParseOptions, Source};
pub use shipped::{embedded_config, install_shipped_configs, SHIPPED_CONFIGS, WARREN_CONFIG_DIR};
pub use write::{format_setting, render_settings};

/// The status of `key` as warren treats it, or `None` for a key LXC does not know.
pub fn key_status(key: &str) -> Option<KeyStatus> {
    keys::lookup(key).map(|l| l.info.status)
}
