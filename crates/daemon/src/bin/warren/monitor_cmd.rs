//! `warren monitor [--type TYPE]...`: warrend's events as they happen (operation, lifecycle,
//! logging), one YAML document (or JSON line) each.

use crate::client::websocket_at;
use crate::format::{self, Format};
use anyhow::Result;
use std::io::Write;
use warren_daemon::ws;

pub fn run(types: &[String], format: Format) -> Result<i32> {
    let mut s = websocket_at("/1.0/events")?;
    let mut out = std::io::stdout();
    while let Ok((op, payload)) = ws::read_frame(&mut s) {
        match op {
            0x1 => {
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&payload) else {
                    continue;
                };
                let kind = event["type"].as_str().unwrap_or("");
                if !types.is_empty() && !types.iter().any(|t| t == kind) {
                    continue;
                }
                let text = if format == Format::Json {
                    format!("{event}\n")
                } else {
                    format!("{}\n", format::yaml(&event, 0, false))
                };
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    break;
                }
            }
            0x9 => {
                let _ = s.write_all(&ws::masked_frame(0xA, &payload));
            }
            0x8 => break,
            _ => {}
        }
    }
    Ok(0)
}
