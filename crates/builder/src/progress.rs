//! Progress on stderr: on a terminal, one self-rewriting line with every running task's byte
//! count and rate (downloads, unpacking, the packers running side by side); otherwise only the
//! start and end lines, so logs stay readable.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Tasks {
    running: BTreeMap<String, (u64, Instant)>,
    drawn: Option<Instant>,
}

static TASKS: Mutex<Tasks> = Mutex::new(Tasks {
    running: BTreeMap::new(),
    drawn: None,
});

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

/// `what` has done `done` bytes; the line is redrawn at most ten times a second.
pub fn bytes(what: &str, done: u64) {
    if !tty() {
        return;
    }
    let Ok(mut t) = TASKS.lock() else { return };
    let now = Instant::now();
    let entry = t.running.entry(what.to_string()).or_insert((0, now));
    entry.0 = done;
    if t.drawn
        .is_some_and(|d| now.duration_since(d) < Duration::from_millis(100))
    {
        return;
    }
    t.drawn = Some(now);
    let line: Vec<String> = t
        .running
        .iter()
        .map(|(name, (n, since))| {
            let secs = now.duration_since(*since).as_secs_f64().max(0.001);
            format!(
                "{name}: {} ({}/s)",
                human(*n),
                human((*n as f64 / secs) as u64)
            )
        })
        .collect();
    let _ = write!(std::io::stderr(), "\r\x1b[K{}", line.join(" | "));
}

/// Ends a task's progress with a summary line.
pub fn finish(what: &str, summary: &str) {
    if let Ok(mut t) = TASKS.lock() {
        t.running.remove(what);
    }
    done(summary);
}

/// A summary line (clearing a progress line first on a terminal).
pub fn done(summary: &str) {
    if tty() {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
    let _ = writeln!(std::io::stderr(), "{summary}");
}

/// A phase starting.
pub fn step(what: &str) {
    done(&format!("==> {what}"));
}

/// A writer that reports the bytes through it as task `what`.
pub struct Counting<W> {
    pub inner: W,
    what: String,
    count: u64,
}

impl<W> Counting<W> {
    pub fn new(inner: W, what: &str) -> Counting<W> {
        Counting {
            inner,
            what: what.to_string(),
            count: 0,
        }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        bytes(&self.what, self.count);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
