//! Reading LXC config text: lines, quoting, `lxc.include` of files and directories, list resets,
//! legacy-key detection and value validation, into a [`Config`] that remembers where every
//! setting came from.

use crate::error::{Error, Warning};
use crate::keys::{self, KeyShape, KeyStatus, Legacy, Lookup};
use crate::value::{self, ValueKind};
use std::path::{Path, PathBuf};

/// Where a setting was read: a file (or pseudo file name) and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
}

/// One effective `key = value` setting, after includes and resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub source: Source,
}

/// One line of the top-level config as written (includes not expanded), for the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Blank,
    /// A `#` comment, kept verbatim.
    Comment(String),
    /// A line that is not an `lxc.` key; LXC ignores those, warren keeps them verbatim.
    Other(String),
    Setting {
        key: String,
        value: String,
    },
}

/// How includes are resolved.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Path prefix rewrites applied to `lxc.include` targets, first match wins: `(from, to)` makes
    /// an include of `from/x` read `to/x`. Used to parse a distribution's configs from an unpacked
    /// package instead of `/usr/share/lxc/config`.
    pub include_redirect: Vec<(PathBuf, PathBuf)>,
    /// Use the copies of warren's own configs built into the library when an include names a file
    /// under [`crate::WARREN_CONFIG_DIR`] that is not installed.
    pub use_embedded: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            include_redirect: Vec::new(),
            use_embedded: true,
        }
    }
}

/// Include depth beyond which a chain is refused even without a loop (a runaway generator).
const MAX_INCLUDE_DEPTH: usize = 32;

/// A parsed container config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The top-level file (or the pseudo name given to [`Config::parse_str`]).
    pub file: PathBuf,
    /// Whether `file` is a real file the config was loaded from.
    pub from_disk: bool,
    /// The top-level file's lines as written.
    pub lines: Vec<Line>,
    /// Effective settings in order, includes expanded, resets and replacements applied.
    pub entries: Vec<Entry>,
    /// Non-fatal remarks, in the order found.
    pub warnings: Vec<Warning>,
    options: ParseOptions,
}

impl Config {
    /// An empty config (no settings) that will be written to `file`.
    pub fn new(file: impl Into<PathBuf>) -> Config {
        Config {
            file: file.into(),
            from_disk: false,
            lines: Vec::new(),
            entries: Vec::new(),
            warnings: Vec::new(),
            options: ParseOptions::default(),
        }
    }

    /// Reads the config at `path` with default options.
    pub fn load(path: &Path) -> Result<Config, Error> {
        Config::load_with(path, &ParseOptions::default())
    }

    pub fn load_with(path: &Path, options: &ParseOptions) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::parse_str(&text, path, options)?;
        cfg.from_disk = true;
        Ok(cfg)
    }

    /// Parses `text` as if it were the file `file` (used in messages, and as the base directory
    /// of relative includes and fstab paths).
    pub fn parse_str(text: &str, file: &Path, options: &ParseOptions) -> Result<Config, Error> {
        let mut cfg = Config::new(file);
        cfg.options = options.clone();
        let mut stack = vec![identity(file)];
        cfg.read_text(text, file, true, &mut stack)?;
        Ok(cfg)
    }

    fn read_text(
        &mut self,
        text: &str,
        file: &Path,
        top: bool,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let src = Source {
                file: file.to_path_buf(),
                line,
            };
            // LXC skips leading blanks; a '#' after them starts a comment line. There are no
            // trailing comments: '#' inside a value is part of it.
            let body = raw.trim_start();
            if body.is_empty() {
                if top {
                    self.lines.push(Line::Blank);
                }
                continue;
            }
            if body.starts_with('#') {
                if top {
                    self.lines.push(Line::Comment(raw.to_string()));
                }
                continue;
            }
            if !body.starts_with("lxc.") {
                self.warn(
                    &src,
                    format!("ignored line (not an lxc. key): {}", body.trim_end()),
                );
                if top {
                    self.lines.push(Line::Other(raw.to_string()));
                }
                continue;
            }
            let Some((key, value)) = split_line(body) else {
                return Err(Error::Syntax {
                    file: src.file,
                    line,
                    key: body.trim_end().to_string(),
                    why: "expected \"key = value\"".into(),
                });
            };
            if top {
                self.lines.push(Line::Setting {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
            self.apply(key, value, &src, stack)?;
        }
        Ok(())
    }

    fn warn(&mut self, src: &Source, message: String) {
        self.warnings.push(Warning {
            file: src.file.clone(),
            line: src.line,
            message,
        });
    }

    fn net_indices(&self) -> (u32, u32) {
        let max = self
            .entries
            .iter()
            .filter_map(|e| keys::lookup(&e.key).and_then(|l| l.net_index))
            .max();
        match max {
            Some(m) => (m + 1, m),
            None => (0, 0),
        }
    }

    /// Validates `key = value` and applies it to the effective settings.
    fn apply(
        &mut self,
        key: &str,
        value: &str,
        src: &Source,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let looked = check_key(key, src, self.net_indices())?;
        if value.is_empty() {
            if key == "lxc.mount.fstab" {
                // LXC refuses an empty fstab too (it clears and then fails).
                return Err(invalid(src, key, value, "name an fstab file"));
            }
            self.clear(key, &looked);
            return Ok(());
        }
        check_value(key, value, &looked, src)?;
        match keys::status_of(key, value, &looked) {
            KeyStatus::UnsupportedOnHost => self.warn(
                src,
                format!(
                    "{key} is not supported on this host (no AppArmor/SELinux support); ignored"
                ),
            ),
            KeyStatus::Implemented | KeyStatus::NotYetEnforced => {}
        }
        if key == "lxc.include" {
            self.include(value, src, stack)?;
        }
        if !looked.info.list {
            self.entries.retain(|e| e.key != key);
        }
        self.entries.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            source: src.clone(),
        });
        Ok(())
    }

    /// An empty value: drop what it covers. A bare family (`lxc.cgroup`, `lxc.hook`, `lxc.net`)
    /// covers all of its keys, `lxc.net.N` one interface, anything else just its own key.
    fn clear(&mut self, key: &str, looked: &Lookup) {
        if looked.bare_family {
            let prefix = looked.info.name;
            self.entries.retain(|e| {
                !(e.key.starts_with(prefix)
                    && keys::lookup(&e.key).is_some_and(|l| std::ptr::eq(l.info, looked.info)))
            });
        } else if key == "lxc.net" {
            self.entries.retain(|e| !e.key.starts_with("lxc.net."));
        } else if looked.info.value == ValueKind::ClearOnly {
            let idx = looked.net_index;
            self.entries
                .retain(|e| keys::lookup(&e.key).map(|l| l.net_index) != Some(idx));
        } else {
            self.entries.retain(|e| e.key != key);
        }
    }

    fn include(
        &mut self,
        value: &str,
        src: &Source,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let key = "lxc.include";
        let named = resolve_relative(value, &src.file);
        let path = redirect(&named, &self.options.include_redirect);
        if stack.len() > MAX_INCLUDE_DEPTH {
            return Err(Error::IncludeLoop {
                file: src.file.clone(),
                line: src.line,
                key: key.into(),
                path,
            });
        }
        let wants_dir = value.ends_with('/');
        if wants_dir || path.is_dir() {
            let rd = match std::fs::read_dir(&path) {
                Ok(rd) => rd,
                // A drop-in directory that does not exist is an empty one (LXC agreed on this
                // for `.../userns.conf.d/`, which packages do not always ship).
                Err(e) if wants_dir && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(Error::ReadFile {
                        file: src.file.clone(),
                        line: src.line,
                        key: key.into(),
                        path,
                        source,
                    })
                }
            };
            let mut files: Vec<PathBuf> = rd
                .filter_map(|d| d.ok())
                .map(|d| d.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.len() > 5 && n.ends_with(".conf"))
                })
                .collect();
            files.sort();
            for f in files {
                self.include_file(&f, None, src, stack)?;
            }
            return Ok(());
        }
        let embedded = if self.options.use_embedded && !path.exists() {
            crate::shipped::embedded_for(&named).or_else(|| crate::shipped::embedded_for(&path))
        } else {
            None
        };
        self.include_file(&path, embedded, src, stack)
    }

    fn include_file(
        &mut self,
        path: &Path,
        embedded: Option<&'static str>,
        src: &Source,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let id = identity(path);
        if stack.contains(&id) {
            return Err(Error::IncludeLoop {
                file: src.file.clone(),
                line: src.line,
                key: "lxc.include".into(),
                path: path.to_path_buf(),
            });
        }
        let text = match embedded {
            Some(t) => t.to_string(),
            None => std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
                file: src.file.clone(),
                line: src.line,
                key: "lxc.include".into(),
                path: path.to_path_buf(),
                source,
            })?,
        };
        stack.push(id);
        let res = self.read_text(&text, path, false, stack);
        stack.pop();
        res
    }

    /// Sets (or with an empty value, clears) one key, in the effective settings and in the lines
    /// the writer emits: the first line with that key is replaced in place, later ones removed,
    /// and the setting appended when absent. For list keys this replaces the whole list.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let src = Source {
            file: self.file.clone(),
            line: 0,
        };
        let looked = check_key(key, &src, self.net_indices())?;
        if !value.is_empty() {
            check_value(key, value, &looked, &src)?;
        }
        // Clear first so list keys are replaced, not extended.
        self.clear(key, &looked);
        if !value.is_empty() {
            let mut stack = vec![identity(&self.file)];
            self.apply(key, value, &src, &mut stack)?;
        }
        set_in_lines(&mut self.lines, key, (!value.is_empty()).then_some(value));
        Ok(())
    }

    /// Every effective entry for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key == key)
    }

    /// The value of `key` as `lxc-info -c KEY` prints it: the last value of a single-valued key
    /// (`lxc.rootfs.path` without its `dir:` prefix), list keys one value per line (token lists
    /// such as `lxc.cap.drop` space separated). `None` when unset.
    pub fn get(&self, key: &str) -> Option<String> {
        let values: Vec<&str> = self.get_all(key).map(|e| e.value.as_str()).collect();
        let last = *values.last()?;
        if key == "lxc.rootfs.path" {
            return Some(last.strip_prefix("dir:").unwrap_or(last).to_string());
        }
        let list = keys::lookup(key).is_some_and(|l| l.info.list);
        if !list {
            return Some(last.to_string());
        }
        let sep = match key {
            "lxc.cap.drop"
            | "lxc.cap.keep"
            | "lxc.mount.auto"
            | "lxc.namespace.clone"
            | "lxc.namespace.keep" => " ",
            _ => "\n",
        };
        Some(values.join(sep))
    }
}

/// The identity of a file for loop detection: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Relative include and fstab paths are taken relative to the directory of the file naming them
/// (LXC uses its working directory, which is rarely what a config author means).
pub(crate) fn resolve_relative(value: &str, including: &Path) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match including.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn redirect(path: &Path, rules: &[(PathBuf, PathBuf)]) -> PathBuf {
    for (from, to) in rules {
        if let Ok(rest) = path.strip_prefix(from) {
            return to.join(rest);
        }
    }
    path.to_path_buf()
}

/// Splits `key = value` (blanks around `=` optional), trimming both and removing one pair of
/// matching surrounding quotes from the value, as LXC does.
pub(crate) fn split_line(body: &str) -> Option<(&str, &str)> {
    let (k, v) = body.split_once('=')?;
    let key = k.trim();
    if key.is_empty() {
        return None;
    }
    Some((key, unquote(v.trim())))
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn invalid(src: &Source, key: &str, value: &str, why: impl Into<String>) -> Error {
    Error::InvalidValue {
        file: src.file.clone(),
        line: src.line,
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Legacy and unknown key checks.
pub(crate) fn check_key(key: &str, src: &Source, nets: (u32, u32)) -> Result<Lookup, Error> {
    if let Some(l) = keys::legacy(key, nets.0, nets.1) {
        return Err(match l {
            Legacy::Renamed(new) => Error::LegacyKey {
                file: src.file.clone(),
                line: src.line,
                key: key.to_string(),
                new,
            },
            Legacy::Removed => Error::RemovedKey {
                file: src.file.clone(),
                line: src.line,
                key: key.to_string(),
            },
        });
    }
    keys::lookup(key).ok_or_else(|| Error::UnknownKey {
        file: src.file.clone(),
        line: src.line,
        key: key.to_string(),
    })
}

/// Validates a non-empty value for an already looked-up key.
pub(crate) fn check_value(
    key: &str,
    value: &str,
    looked: &Lookup,
    src: &Source,
) -> Result<(), Error> {
    if looked.bare_family {
        return Err(invalid(
            src,
            key,
            value,
            format!(
                "only an empty value (clearing every {}* setting) is allowed",
                looked.info.name
            ),
        ));
    }
    value::validate(looked.info.value, value).map_err(|why| invalid(src, key, value, why))?;
    if looked.info.shape == KeyShape::Prefix
        && looked.info.name == "lxc.hook."
        && value.trim().is_empty()
    {
        return Err(invalid(src, key, value, "empty hook command"));
    }
    Ok(())
}

/// Replaces the first `Setting` of `key` with `value` (or removes it when `None`), removing the
/// later ones, appending when there was none.
fn set_in_lines(lines: &mut Vec<Line>, key: &str, value: Option<&str>) {
    let mut seen = false;
    lines.retain_mut(|l| match l {
        Line::Setting { key: k, value: v } if k == key => {
            if seen || value.is_none() {
                return false;
            }
            seen = true;
            *v = value.unwrap_or_default().to_string();
            true
        }
        _ => true,
    });
    if let (false, Some(v)) = (seen, value) {
        lines.push(Line::Setting {
            key: key.to_string(),
            value: v.to_string(),
        });
    }
}

/// Sets `key` to `value` in config text, keeping every other line (comments included) as is:
/// the first line setting `key` is rewritten, later ones removed, and the line appended when
/// absent. `None` removes the key. The key and value are validated; includes are not read.
pub fn set_key_in_text(text: &str, key: &str, value: Option<&str>) -> Result<String, Error> {
    let src = Source {
        file: PathBuf::from("<set>"),
        line: 0,
    };
    let looked = check_key(key, &src, (0, 0))?;
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        check_value(key, v, &looked, &src)?;
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut seen = false;
    for raw in text.lines() {
        let body = raw.trim_start();
        let hit = !body.starts_with('#') && split_line(body).is_some_and(|(k, _)| k == key);
        if hit {
            if seen {
                continue;
            }
            seen = true;
            if let Some(v) = value {
                out.push_str(&crate::write::format_setting(key, v));
                out.push('\n');
            }
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    if let (false, Some(v)) = (seen, value) {
        out.push_str(&crate::write::format_setting(key, v));
        out.push('\n');
    }
    Ok(out)
}
