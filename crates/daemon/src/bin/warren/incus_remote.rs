//! Remotes that speak the Incus protocol (another warrend, or an incusd): added with a trust
//! token (`incus config trust add` / `warren config trust add` on the server), reached over HTTPS
//! with the server's certificate pinned and the client's own certificate
//! (`$WARREN_CONF/client.crt`, made on first use), and used as image sources: an image's alias
//! resolved there and a secret asked for, with which the local warrend pulls it.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

/// The client's certificate and key (PEM), made on first use.
fn client_identity(cfg: &Config) -> Result<(String, String)> {
    let dir = cfg.dir();
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    if !cert.exists() || !key.exists() {
        warren_image::server::make_self_signed(dir, &cert, &key)
            .map_err(|e| anyhow::anyhow!("make the client certificate: {e}"))?;
    }
    Ok((
        std::fs::read_to_string(&cert).with_context(|| format!("read {}", cert.display()))?,
        std::fs::read_to_string(&key).with_context(|| format!("read {}", key.display()))?,
    ))
}

fn json_of(r: ureq::Response) -> Result<Value> {
    Ok(serde_json::from_str(&r.into_string()?)?)
}

fn agent(cfg: &Config, pinned_pem: &str) -> Result<ureq::Agent> {
    let (cert, key) = client_identity(cfg)?;
    let pinned = warren_image::fetch::pem_to_der(pinned_pem)
        .context("the remote's pinned certificate is not PEM")?;
    warren_image::fetch::client_agent(
        &format!("warren/{}", env!("CARGO_PKG_VERSION")),
        pinned,
        &cert,
        &key,
    )
    .map_err(anyhow::Error::msg)
}

/// A request to remote `name`; the answer's metadata, or its error as one line.
fn call(cfg: &Config, name: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let r = cfg.remote(name)?;
    let pem = cfg
        .cert(name)
        .with_context(|| format!("no pinned certificate for the remote \"{name}\""))?;
    let url = format!("{}{path}", r.addr.trim_end_matches('/'));
    let req = agent(cfg, &pem)?.request(method, &url);
    let resp = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let json: Value = match resp {
        Ok(r) => json_of(r).with_context(|| url.clone())?,
        Err(ureq::Error::Status(_, r)) => {
            let v: Value = json_of(r).unwrap_or(Value::Null);
            bail!(
                "{name}: {}",
                v["error"].as_str().unwrap_or("the request failed")
            );
        }
        Err(e) => bail!("{url}: {e}"),
    };
    Ok(json["metadata"].clone())
}

/// `remote add NAME TOKEN` (or `NAME URL --token TOKEN`): the server's certificate checked
/// against the token's fingerprint and pinned, then the client's certificate trusted by
/// presenting the token. Returns the address used.
pub fn add_with_token(cfg: &Config, name: &str, url: Option<&str>, token: &str) -> Result<String> {
    let bad =
        || anyhow::anyhow!("Invalid trust token (from `warren config trust add` on the server)");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token.trim()))
        .map_err(|_| bad())?;
    let t: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let fingerprint = t["fingerprint"].as_str().unwrap_or("").to_lowercase();
    let mut addresses: Vec<String> = match url {
        Some(u) => vec![u.trim_end_matches('/').to_string()],
        None => t["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|a| format!("https://{a}"))
            .collect(),
    };
    if addresses.is_empty() {
        bail!("The trust token names no address: give the server's URL too");
    }
    let mut last = anyhow::anyhow!("no address answered");
    for addr in addresses.drain(..) {
        let der = match warren_image::fetch::peer_certificate(&addr) {
            Ok(d) => d,
            Err(e) => {
                last = anyhow::anyhow!("{addr}: {e}");
                continue;
            }
        };
        let seen = hex::encode(sha2::Sha256::digest(&der));
        if !fingerprint.is_empty() && seen != fingerprint {
            bail!("{addr}: the server's certificate ({seen}) is not the one the token names ({fingerprint})");
        }
        let pem = warren_image::fetch::der_to_pem(&der);
        let resp = agent(cfg, &pem)?
            .post(&format!("{addr}/1.0/certificates"))
            .set("Content-Type", "application/json")
            .send_string(&json!({"trust_token": token.trim()}).to_string());
        match resp {
            Ok(_) => {
                let path = cfg.cert_path(name);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("create {}", dir.display()))?;
                }
                std::fs::write(&path, &pem).with_context(|| format!("write {}", path.display()))?;
                return Ok(addr);
            }
            Err(ureq::Error::Status(_, r)) => {
                let v: Value = json_of(r).unwrap_or(Value::Null);
                bail!(
                    "{addr}: the server refused the token: {}",
                    v["error"].as_str().unwrap_or("not authorized")
                );
            }
            Err(e) => last = anyhow::anyhow!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// The `source` of an instance made from `image` on Incus-protocol remote `name`: its alias
/// resolved there, and a secret with which warrend may fetch it.
pub fn image_source(cfg: &Config, name: &str, image: &str) -> Result<Value> {
    let fingerprint = match call(
        cfg,
        name,
        "GET",
        &format!("/1.0/images/aliases/{image}"),
        None,
    ) {
        Ok(alias) => alias["target"].as_str().unwrap_or(image).to_string(),
        Err(_) => call(cfg, name, "GET", &format!("/1.0/images/{image}"), None)
            .with_context(|| format!("no image \"{image}\" on {name}"))?["fingerprint"]
            .as_str()
            .unwrap_or(image)
            .to_string(),
    };
    let op = call(
        cfg,
        name,
        "POST",
        &format!("/1.0/images/{fingerprint}/secret"),
        Some(json!({})),
    )?;
    let secret = op["metadata"]["secret"]
        .as_str()
        .with_context(|| format!("{name} gave no image secret"))?;
    Ok(json!({"type": "image", "mode": "pull", "protocol": "incus",
              "server": cfg.remote(name)?.addr, "certificate": cfg.cert(name).unwrap_or_default(),
              "fingerprint": fingerprint, "secret": secret, "alias": image}))
}

/// The images of Incus-protocol remote `name`.
pub fn images(cfg: &Config, name: &str) -> Result<Vec<Value>> {
    Ok(call(cfg, name, "GET", "/1.0/images?recursion=1", None)?
        .as_array()
        .cloned()
        .unwrap_or_default())
}
