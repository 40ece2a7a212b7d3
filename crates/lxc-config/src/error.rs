//! Errors and warnings of the config parser and of the spec mapping.

use std::fmt;
use std::path::PathBuf;

/// Everything that makes a config unusable. Each variant names the file and line (1-based) the
/// problem comes from, and the key involved, so a user can go straight to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}:{line}: unknown key \"{key}\"", file.display())]
    UnknownKey {
        file: PathBuf,
        line: usize,
        key: String,
    },
    #[error("{}:{line}: invalid value \"{value}\" for {key}: {why}", file.display())]
    InvalidValue {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        why: String,
    },
    #[error("{}:{line}: \"{key}\" is a pre-3.0 key; use \"{new}\" instead", file.display())]
    LegacyKey {
        file: PathBuf,
        line: usize,
        key: String,
        new: String,
    },
    #[error("{}:{line}: \"{key}\" is a pre-3.0 key that LXC 3.0 removed; delete the line", file.display())]
    RemovedKey {
        file: PathBuf,
        line: usize,
        key: String,
    },
    /// A line that is not `key = value` (the key field holds the line's text).
    #[error("{}:{line}: syntax error in \"{key}\": {why}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        key: String,
        why: String,
    },
    /// A file named by `lxc.include` or `lxc.mount.fstab` could not be read.
    #[error("{}:{line}: {key}: cannot read {}: {source}", file.display(), path.display())]
    ReadFile {
        file: PathBuf,
        line: usize,
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: include loop: {} is already being read", file.display(), path.display())]
    IncludeLoop {
        file: PathBuf,
        line: usize,
        key: String,
        path: PathBuf,
    },
    /// A valid setting this version of warren cannot act on (e.g. a non-`dir` rootfs).
    #[error("{}:{line}: {key}: {why}", file.display())]
    Unsupported {
        file: PathBuf,
        line: usize,
        key: String,
        why: String,
    },
    /// The top-level config file itself could not be read (there is no line or key to name).
    #[error("cannot read config {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A non-fatal remark about a config line. The library collects them; callers decide whether and
/// how to print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}
