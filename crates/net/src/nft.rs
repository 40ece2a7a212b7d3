//! nftables tables of warren's own, through the `nft` program (as Incus does): a whole table is
//! loaded in one transaction from a ruleset text, read back, and deleted by name.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::NetError;

fn nft(args: &[&str], input: Option<&str>) -> Result<String, NetError> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        NetError::Invalid(format!(
            "run nft: {e} (nftables is needed for NAT: apt-get install nftables)"
        ))
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NetError::Invalid(format!("nft input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Invalid(format!("nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(NetError::Invalid(format!(
            "nft {}: {}",
            args.join(" "),
            err.lines().next().unwrap_or("failed").trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads `ruleset` (one or more `table ... { }` blocks) atomically.
pub fn load(ruleset: &str) -> Result<(), NetError> {
    nft(&["-f", "-"], Some(ruleset)).map(|_| ())
}

/// The rules of table `family name` as nft prints them, `None` when there is no such table.
pub fn list_table(family: &str, name: &str) -> Result<Option<String>, NetError> {
    match nft(&["list", "table", family, name], None) {
        Ok(text) => Ok(Some(text)),
        Err(NetError::Invalid(msg)) if msg.contains("No such file") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes table `family name` (nothing when it is not there).
pub fn delete_table(family: &str, name: &str) -> Result<(), NetError> {
    if list_table(family, name)?.is_none() {
        return Ok(());
    }
    nft(&["delete", "table", family, name], None).map(|_| ())
}
