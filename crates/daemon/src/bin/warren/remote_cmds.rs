//! `warren remote list/add/remove/switch/get-default/set-url`: where images come from. An HTTPS
//! server's certificate is shown by fingerprint and pinned once accepted (at the prompt, or with
//! `--accept-certificate`), as incus does.

use crate::config::{Config, Remote};
use crate::format::{self, Format};
use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::Digest;
use std::io::{BufRead, Write};

pub fn list(cfg: &Config, format: Format) -> Result<i32> {
    let rows: Vec<Vec<String>> = cfg
        .remotes
        .iter()
        .map(|(name, r)| {
            let shown = if *name == cfg.default_remote {
                format!("{name} (current)")
            } else {
                name.clone()
            };
            vec![
                shown,
                r.addr.clone(),
                r.protocol.clone(),
                if r.addr == "unix://" {
                    "file access"
                } else {
                    "none"
                }
                .into(),
                if r.public { "YES" } else { "NO" }.into(),
                if r.public { "YES" } else { "NO" }.into(),
            ]
        })
        .collect();
    let objects = json!(cfg
        .remotes
        .iter()
        .map(
            |(n, r)| json!({"name": n, "addr": r.addr, "protocol": r.protocol, "public": r.public})
        )
        .collect::<Vec<_>>());
    format::print(
        format,
        &["NAME", "URL", "PROTOCOL", "AUTH TYPE", "PUBLIC", "STATIC"],
        &rows,
        &objects,
    );
    Ok(0)
}

/// Pins the certificate of an HTTPS server after the user (or `accept`) agrees to its
/// fingerprint; a certificate a public CA signed needs no pin.
fn pin(cfg: &Config, name: &str, url: &str, accept: bool) -> Result<()> {
    if !url.starts_with("https://") {
        bail!("{url}: image servers are reached over https:// (as incus requires)");
    }
    let trusted = warren_image::fetch::agent("warren", None)
        .get(&format!(
            "{}/streams/v1/index.json",
            url.trim_end_matches('/')
        ))
        .call();
    if trusted.is_ok() {
        return Ok(());
    }
    let der = warren_image::fetch::peer_certificate(url).map_err(anyhow::Error::msg)?;
    let fingerprint = hex::encode(sha2::Sha256::digest(&der));
    if !accept {
        print!("Certificate fingerprint: {fingerprint}\nok (y/n/[fingerprint])? ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        let a = answer.trim().to_ascii_lowercase();
        if a != "y" && a != "yes" && a != fingerprint {
            bail!("Server certificate NACKed by user");
        }
    }
    let path = cfg.cert_path(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&path, warren_image::fetch::der_to_pem(&der))
        .with_context(|| format!("write {}", path.display()))
}

pub fn add(
    cfg: &mut Config,
    name: &str,
    url: &str,
    protocol: &str,
    accept: bool,
    token: Option<&str>,
) -> Result<i32> {
    if cfg.remotes.contains_key(name) {
        bail!("Remote {name} exists as <{}>", cfg.remotes[name].addr);
    }
    if name.is_empty() || name.contains([':', '/']) {
        bail!("Invalid remote name \"{name}\"");
    }
    // another warrend or incusd: trusted through a token
    let is_url = url.starts_with("https://") || url.starts_with("http://");
    if token.is_some() || !is_url || protocol == "incus" {
        let token = match (token, is_url) {
            (Some(t), _) => t,
            (None, false) => url,
            (None, true) => bail!(
                "An Incus-protocol remote is added with a trust token: `warren config trust add NAME` on the server, then `warren remote add {name} TOKEN`"
            ),
        };
        let addr = crate::incus_remote::add_with_token(cfg, name, is_url.then_some(url), token)?;
        cfg.remotes.insert(
            name.to_string(),
            Remote {
                addr,
                protocol: "incus".into(),
                public: false,
                project: "default".into(),
            },
        );
        cfg.save()?;
        return Ok(0);
    }
    if protocol != "simplestreams" {
        bail!("--protocol={protocol}: simplestreams or incus");
    }
    let url = url.trim_end_matches('/').to_string();
    pin(cfg, name, &url, accept)?;
    cfg.remotes.insert(
        name.to_string(),
        Remote {
            addr: url,
            protocol: protocol.into(),
            public: true,
            project: "default".into(),
        },
    );
    cfg.save()?;
    Ok(0)
}

pub fn set_url(cfg: &mut Config, name: &str, url: &str, accept: bool) -> Result<i32> {
    let r = cfg.remote(name)?.clone();
    if r.addr == "unix://" {
        bail!("The local remote's address can't change");
    }
    let url = url.trim_end_matches('/').to_string();
    pin(cfg, name, &url, accept)?;
    cfg.remotes
        .insert(name.to_string(), Remote { addr: url, ..r });
    cfg.save()?;
    Ok(0)
}

pub fn remove(cfg: &mut Config, name: &str) -> Result<i32> {
    cfg.remote(name)?;
    if name == "local" {
        bail!("The local remote can't be removed");
    }
    if cfg.default_remote == name {
        bail!("Can't remove the default remote (warren remote switch local first)");
    }
    cfg.remotes.remove(name);
    let _ = std::fs::remove_file(cfg.cert_path(name));
    cfg.save()?;
    Ok(0)
}

pub fn switch(cfg: &mut Config, name: &str) -> Result<i32> {
    if cfg.remote(name)?.addr != "unix://" {
        bail!("{name} is an image server: the default remote holds instances (local)");
    }
    cfg.default_remote = name.to_string();
    cfg.save()?;
    Ok(0)
}
