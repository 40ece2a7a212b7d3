//! The runtime's log: LXC-style levels, written to the file `-o` names (append), one line per event.
//!
//! A process-wide sink, because forked children (the container's setup process) log through the
//! same descriptor and a failed start must be understandable from the log alone.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// LXC's log priorities, most verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
    Alert,
    Fatal,
}

impl Level {
    /// Parses LXC's names (`DEBUG`, `info`, `WARN`, ...) and numbers 0-8.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TRACE" | "0" => Level::Trace,
            "DEBUG" | "1" => Level::Debug,
            "INFO" | "2" => Level::Info,
            "NOTICE" | "3" => Level::Notice,
            "WARN" | "WARNING" | "4" => Level::Warn,
            "ERROR" | "5" => Level::Error,
            "CRIT" | "6" => Level::Crit,
            "ALERT" | "7" => Level::Alert,
            "FATAL" | "8" => Level::Fatal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Crit => "CRIT",
            Level::Alert => "ALERT",
            Level::Fatal => "FATAL",
        }
    }
}

struct Sink {
    file: Option<File>,
    level: Level,
    prefix: String,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    file: None,
    level: Level::Error,
    prefix: String::new(),
});

/// Open (append) the log file and set the level. `prefix` is the container name shown on each line.
pub fn init(file: Option<&Path>, level: Level, prefix: &str) -> std::io::Result<()> {
    let file = match file {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    if let Ok(mut sink) = SINK.lock() {
        sink.file = file;
        sink.level = level;
        sink.prefix = prefix.to_string();
    }
    Ok(())
}

/// Whether a message at `level` would be written (to skip formatting costly messages).
pub fn enabled(level: Level) -> bool {
    SINK.lock()
        .map(|s| s.file.is_some() && level >= s.level)
        .unwrap_or(false)
}

/// Write one line: `<prefix> <timestamp> <LEVEL> <module> - <message>` as LXC's log does.
pub fn write(level: Level, module: &str, msg: &str) {
    let Ok(mut sink) = SINK.lock() else { return };
    if level < sink.level {
        return;
    }
    let prefix = sink.prefix.clone();
    if let Some(f) = sink.file.as_mut() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{} {}.{:06} {} {} - {} (pid {})\n",
            prefix,
            now.as_secs(),
            now.subsec_micros(),
            level.name(),
            module,
            msg,
            std::process::id()
        );
        let _ = f.write_all(line.as_bytes());
    }
}

#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, module_path!(), &format!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Error, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_lxc() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("8"), Some(Level::Fatal));
        assert_eq!(Level::parse("loud"), None);
    }
}
