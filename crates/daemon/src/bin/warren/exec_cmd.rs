//! `warren exec NAME -- CMD...`: the command in the instance, with the terminal (`-t`, or when
//! stdin and stdout are terminals: one pty, raw mode, the window's size) or separate
//! stdin/stdout/stderr (`-T`), over the operation's websockets; exits with the command's code.

use crate::client::{sync, wait, websocket};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use warren_daemon::ws;

pub struct Exec {
    pub name: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: u32,
    pub group: u32,
    pub force_tty: bool,
    pub no_tty: bool,
}

/// Copies the websocket's data frames to `out` until its end (an empty text frame, or close).
fn pump_out(mut from: UnixStream, mut out: impl Write) {
    while let Ok((op, payload)) = ws::read_frame(&mut from) {
        match op {
            0x0 | 0x2 => {
                if out.write_all(&payload).is_err() {
                    break;
                }
                let _ = out.flush();
            }
            0x1 | 0x8 => break,
            0x9 => {
                let _ = from.write_all(&ws::masked_frame(0xA, &payload));
            }
            _ => {}
        }
    }
}

/// Copies `input` into the websocket as binary frames, then the empty text frame that ends it.
fn pump_in(mut input: impl Read, mut to: UnixStream) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&ws::masked_frame(0x2, &buf[..n])).is_err() {
                    return;
                }
            }
        }
    }
    let _ = to.write_all(&ws::masked_frame(0x1, b""));
}

fn window_size() -> (u16, u16) {
    warren_sys::get_window_size(warren_sys::std_fd(1))
        .map(|s| (s.cols, s.rows))
        .unwrap_or((80, 24))
}

pub fn run(cfg: &Config, e: Exec) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, &e.name)?;
    if e.command.is_empty() {
        bail!("Missing the command: warren exec NAME -- COMMAND [ARGS...]");
    }
    let tty_in = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let tty_out = nix::unistd::isatty(std::io::stdout()).unwrap_or(false);
    let interactive = !e.no_tty && (e.force_tty || (tty_in && tty_out));
    let mut env = serde_json::Map::new();
    if interactive {
        env.insert(
            "TERM".into(),
            json!(std::env::var("TERM").unwrap_or_else(|_| "xterm".into())),
        );
    }
    for kv in &e.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv}: KEY=VALUE"))?;
        env.insert(k.into(), json!(v));
    }
    let (cols, rows) = if interactive { window_size() } else { (0, 0) };
    let body = json!({"command": e.command, "wait-for-websocket": true, "interactive": interactive,
                      "environment": env, "width": cols, "height": rows, "record-output": false,
                      "user": e.user, "group": e.group, "cwd": e.cwd.clone().unwrap_or_default()});
    let op = sync("POST", &format!("/1.0/instances/{name}/exec"), Some(body))?;
    let id = op["id"].as_str().unwrap_or("").to_string();
    let fds = &op["metadata"]["fds"];
    let secret = |fd: &str| -> Result<String> {
        fds[fd]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("warrend gave no websocket for {fd}"))
    };
    let control = websocket(&id, &secret("control")?)?;
    let ws0 = websocket(&id, &secret("0")?)?;
    let code = if interactive {
        let raw = tty_in.then(warren_runtime::term::RawMode::enter);
        let input = ws0.try_clone()?;
        std::thread::spawn(move || pump_in(std::io::stdin(), input));
        pump_out(ws0, std::io::stdout());
        drop(raw);
        wait(&id)
    } else {
        let (ws1, ws2) = (
            websocket(&id, &secret("1")?)?,
            websocket(&id, &secret("2")?)?,
        );
        std::thread::spawn(move || pump_in(std::io::stdin(), ws0));
        let err = std::thread::spawn(move || pump_out(ws2, std::io::stderr()));
        pump_out(ws1, std::io::stdout());
        let _ = err.join();
        wait(&id)
    };
    drop(control);
    let meta: Value = code?;
    Ok(meta["return"].as_i64().unwrap_or(0) as i32)
}
