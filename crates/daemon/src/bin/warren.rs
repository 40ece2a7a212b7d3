//! `warren`: the client, for now only `warren admin init --minimal` (the default dir storage pool and
//! the default profile's root disk), talking to warrend over its unix socket.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "The warren client (more with the next issue)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Administration
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Set up a new warrend: a "default" dir storage pool and the default profile's root disk
    Init {
        /// Take the defaults without asking (the only mode so far)
        #[arg(long)]
        minimal: bool,
    },
}

/// One request to warrend; returns (status, JSON body).
fn request(
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let socket = warren_daemon::warren_dir().join("unix.socket");
    let mut s = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "connect to warrend at {} (is warrend running?)",
            socket.display()
        )
    })?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

fn check(what: &str, (status, body): (u16, serde_json::Value)) -> Result<()> {
    if status >= 400 {
        bail!("{what}: {}", body["error"].as_str().unwrap_or("failed"));
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Admin {
            command: Admin::Init { minimal },
        } => init(minimal),
    };
    if let Err(e) = r {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn init(minimal: bool) -> Result<()> {
    if !minimal {
        bail!("only `warren admin init --minimal` is there yet");
    }
    let (status, pools) = request("GET", "/1.0/storage-pools", None)?;
    if status != 200 {
        bail!("warrend answered {status}");
    }
    if !pools
        .get("metadata")
        .and_then(|m| m.as_array())
        .is_some_and(|a| a.iter().any(|p| p == "/1.0/storage-pools/default"))
    {
        check(
            "create the default storage pool",
            request(
                "POST",
                "/1.0/storage-pools",
                Some(serde_json::json!({"name": "default", "driver": "dir"})),
            )?,
        )?;
    }
    check(
        "give the default profile its root disk",
        request(
            "PATCH",
            "/1.0/profiles/default",
            Some(
                serde_json::json!({"devices": {"root": {"type": "disk", "path": "/", "pool": "default"}}}),
            ),
        )?,
    )?;
    Ok(())
}
