//! Writing configs back out: one `key = value` line per setting, quoting values the parser would
//! otherwise change, so that what is written reads back the same.

use crate::parse::{Config, Line};
use std::path::Path;

/// One config line for `key = value`. The value is wrapped in double quotes when reading it back
/// unquoted would alter it: leading or trailing blanks, or matching quotes at both ends.
pub fn format_setting(key: &str, value: &str) -> String {
    let b = value.as_bytes();
    let needs_quotes = value != value.trim()
        || (b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0]);
    if needs_quotes {
        format!("{key} = \"{value}\"")
    } else {
        format!("{key} = {value}")
    }
}

/// Config text from settings in order (what `create` writes for a new container).
pub fn render_settings<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in settings {
        out.push_str(&format_setting(k, v));
        out.push('\n');
    }
    out
}

impl Config {
    /// The config as text: the top-level lines in order, includes kept as `lxc.include` lines
    /// (not expanded), comments, blank lines and non-`lxc.` lines only when `comments` is set.
    pub fn to_text(&self, comments: bool) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Blank if comments => out.push('\n'),
                Line::Comment(c) | Line::Other(c) if comments => {
                    out.push_str(c);
                    out.push('\n');
                }
                Line::Setting { key, value } => {
                    out.push_str(&format_setting(key, value));
                    out.push('\n');
                }
                _ => {}
            }
        }
        out
    }

    /// Writes [`Config::to_text`] (with comments) to `path`, through a temporary file renamed into
    /// place so a crash never leaves a half-written config.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = self.to_text(true);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}
