//! `POST /1.0/instances/<name>/console`: the container's console (tty 0, held by its monitor)
//! bridged to the client's websocket `0`; `control` carries window sizes, which the console
//! doesn't follow (its size is the one given at attach). Closing control detaches.

use crate::exec::Session;
use crate::ws;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use warren_runtime::proto::{self, Request};

/// Relays until the client detaches or the container stops.
pub fn run(dir: &Path, name: &str, rows: u16, cols: u16, session: &Session) -> Result<(), String> {
    let mut streams = session.streams()?;
    let mut console = proto::connect(&crate::instances::lxcpath(dir), name)
        .map_err(|e| format!("connect to the container's monitor: {e}"))?
        .ok_or("The instance is not running")?;
    proto::send_request(
        &mut console,
        &Request::Console {
            tty: 0,
            rows: if rows == 0 { 24 } else { rows },
            cols: if cols == 0 { 80 } else { cols },
        },
    )
    .map_err(|e| e.to_string())?;
    let (resp, _) = proto::read_response(&mut console).map_err(|e| e.to_string())?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "console refused".into()));
    }
    let ws0 = streams.remove("0").ok_or("no websocket 0")?;
    let control = streams.remove("control");
    if let Some(mut c) = control.as_ref().and_then(|c| c.try_clone().ok()) {
        // window sizes are read and dropped; the client detaches (ctrl-a q) by closing control,
        // which ends the console
        let (ws_end, console_end) = (ws0.try_clone(), console.try_clone());
        std::thread::spawn(move || {
            while let Ok((op, _)) = ws::read_frame(&mut c) {
                if op == 0x8 {
                    break;
                }
            }
            for s in [ws_end, console_end].into_iter().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        });
    }
    let (mut ws_in, mut console_in) = (
        ws0.try_clone().map_err(|e| e.to_string())?,
        console.try_clone().map_err(|e| e.to_string())?,
    );
    // client → console; when the client closes it, so does the console connection, which ends
    // the other direction too
    let input = std::thread::spawn(move || {
        while let Ok((op, payload)) = ws::read_frame(&mut ws_in) {
            match op {
                0x0 | 0x2 if console_in.write_all(&payload).is_err() => break,
                0x8 => break,
                _ => {}
            }
        }
        let _ = console_in.shutdown(Shutdown::Both);
    });
    let mut out = ws0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match console.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if ws::send_binary(&mut out, &buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = ws::send_text(&mut out, "");
    let _ = out.shutdown(Shutdown::Both);
    let _ = input.join();
    // the client returns once its control connection is closed too
    if let Some(c) = control {
        let _ = c.shutdown(Shutdown::Both);
    }
    Ok(())
}
