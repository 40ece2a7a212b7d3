//! Progress on stderr: a self-rewriting line on a terminal, nothing between start and end lines
//! otherwise (logs stay readable).

use std::io::{IsTerminal, Write};

fn tty() -> bool {
    std::io::stderr().is_terminal()
}

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// A running byte count, redrawn in place at most every 64 KiB step.
pub fn bytes(what: &str, done: u64) {
    if tty() && done % (1 << 20) < (1 << 16) {
        let _ = write!(std::io::stderr(), "\r\x1b[K{what}: {}", human(done));
    }
}

/// Ends a progress line with a summary.
pub fn done(summary: &str) {
    if tty() {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
    let _ = writeln!(std::io::stderr(), "{summary}");
}

/// A phase starting.
pub fn step(what: &str) {
    let _ = writeln!(std::io::stderr(), "==> {what}");
}
