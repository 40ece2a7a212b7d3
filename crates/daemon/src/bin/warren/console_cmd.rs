//! `warren console NAME`: the instance's console on this terminal (raw mode; `ctrl-a q`
//! detaches, `ctrl-a ctrl-a` sends ctrl-a), or `--show-log`: what it wrote so far.

use crate::client::{get_raw, sync, wait, websocket};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{Read, Write};
use warren_daemon::ws;

pub fn run(cfg: &Config, name: &str, show_log: bool) -> Result<i32> {
    let name = crate::instance_cmds::local_name(cfg, name)?;
    if show_log {
        let (status, body) = get_raw(&format!("/1.0/instances/{name}/console"))?;
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            bail!("{}", v["error"].as_str().unwrap_or("no console log"));
        }
        std::io::stdout().write_all(&body)?;
        println!();
        return Ok(0);
    }
    let (cols, rows) = warren_sys::get_window_size(warren_sys::std_fd(1))
        .map(|s| (s.cols, s.rows))
        .unwrap_or((80, 24));
    let op = sync(
        "POST",
        &format!("/1.0/instances/{name}/console"),
        Some(json!({"width": cols, "height": rows, "type": "console", "force": false})),
    )?;
    let id = op["id"].as_str().unwrap_or("").to_string();
    let secret = |fd: &str| {
        op["metadata"]["fds"][fd]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("warrend gave no websocket for {fd}"))
    };
    let control = websocket(&id, &secret("control")?)?;
    let ws0 = websocket(&id, &secret("0")?)?;
    println!("To detach from the console, press: <ctrl>+a q\r");
    let tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let raw = tty.then(warren_runtime::term::RawMode::enter);
    let (mut to_console, mut from_console) = (ws0.try_clone()?, ws0);
    let mut control_closer = control.try_clone()?;
    // keyboard → console, watching for the escape
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut byte = [0u8; 1];
        let mut escape = false;
        while let Ok(1) = stdin.read(&mut byte) {
            match (escape, byte[0]) {
                (true, b'q') => break,
                (false, 0x01) => {
                    escape = true;
                    continue;
                }
                _ => {}
            }
            escape = false;
            if to_console.write_all(&ws::masked_frame(0x2, &byte)).is_err() {
                break;
            }
        }
        // detach: closing control ends the console on warrend's side
        let _ = control_closer.write_all(&ws::masked_frame(0x8, &[]));
        let _ = control_closer.shutdown(std::net::Shutdown::Both);
    });
    let mut stdout = std::io::stdout();
    while let Ok((op, payload)) = ws::read_frame(&mut from_console) {
        match op {
            0x0 | 0x2 => {
                let _ = stdout.write_all(&payload);
                let _ = stdout.flush();
            }
            0x1 | 0x8 => break,
            _ => {}
        }
    }
    drop(raw);
    let _ = control.shutdown(std::net::Shutdown::Both);
    println!();
    wait(&id)?;
    Ok(0)
}
