//! The server's config (`PUT`/`PATCH /1.0`: `core.https_address`) and its trust store
//! (`/1.0/certificates`): certificates added directly or through a trust token (`incus config
//! trust add NAME` makes the token operation; `incus remote add NAME TOKEN` presents it over
//! HTTPS with the client's certificate, which is then trusted), listed and removed. And image
//! secrets: what lets another server fetch one image (`incus launch thisremote:image target:`)
//! without being trusted.

use crate::api::{self, ApiError};
use crate::db::Certificate;
use crate::http::{Request, Response};
use crate::https::Peer;
use crate::routes::{internal, json_body, recursion};
use crate::Daemon;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The server config keys warrend knows, with their checks.
fn check_server_key(key: &str, value: &str) -> Result<(), ApiError> {
    match key {
        "core.https_address" => {
            if !value.is_empty() {
                crate::https::parse_address(value).map_err(ApiError::bad_request)?;
            }
            Ok(())
        }
        _ => Err(ApiError::bad_request(format!(
            "Invalid config: Unknown configuration key: {key} (warrend knows core.https_address)"
        ))),
    }
}

/// `PUT /1.0` (the whole config) or `PATCH /1.0` (merged; an empty value removes a key).
pub fn put_server(d: &Arc<Daemon>, req: &Request, patch: bool) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let asked = match body.get("config") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request("config: an object of strings")),
    };
    let mut config: BTreeMap<String, String> = if patch {
        d.db().server_config().map_err(internal)?
    } else {
        BTreeMap::new()
    };
    for (k, v) in &asked {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        check_server_key(k, &v)?;
        if v.is_empty() {
            config.remove(k);
        } else {
            config.insert(k.clone(), v);
        }
    }
    // the listener first: an address that can't be bound changes nothing
    let address = config
        .get("core.https_address")
        .cloned()
        .unwrap_or_default();
    crate::https::apply(d, &address).map_err(ApiError::bad_request)?;
    d.db().set_server_config(&config).map_err(internal)?;
    Ok(api::sync(Value::Null))
}

fn certificate_json(c: &Certificate) -> Value {
    json!({"name": c.name, "type": c.kind, "restricted": c.restricted, "projects": c.projects,
           "certificate": c.certificate, "fingerprint": c.fingerprint, "description": c.description})
}

/// `restricted` and `projects` of a request body (absent: unrestricted, none); every project
/// named must exist.
fn restriction(d: &Daemon, body: &Value) -> Result<(bool, Vec<String>), ApiError> {
    let restricted = match body.get("restricted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("restricted: true or false")),
    };
    let projects: Vec<String> = match body.get("projects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|p| p.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request("projects: a list of project names"))?,
        Some(_) => return Err(ApiError::bad_request("projects: a list of project names")),
    };
    let db = d.db();
    for p in &projects {
        if db.project(p).map_err(internal)?.is_none() {
            return Err(ApiError::bad_request(format!(
                "projects: project \"{p}\" doesn't exist (incus project list shows those that do)"
            )));
        }
    }
    Ok((restricted, projects))
}

/// What the peer's certificate opens, checked before anything is done: a restricted
/// certificate reaches its projects only (their instances, images, profiles, volumes and
/// operations), may look at the server, its own certificate, the storage pools and networks,
/// and changes nothing global (server config, trust store, projects themselves, pools,
/// networks); a metrics certificate reaches `/1.0/metrics` only.
pub fn check_scope(d: &Daemon, req: &Request) -> Result<(), ApiError> {
    let allowed = match req.peer.scope() {
        crate::https::Scope::Full => return Ok(()),
        crate::https::Scope::Metrics => {
            // (and the server's public face, which a client reads first)
            let path = req.path.trim_end_matches('/');
            return if req.method == "GET" && (path == "/1.0/metrics" || path == "/1.0") {
                Ok(())
            } else {
                Err(ApiError::new(
                    403,
                    "not authorized: a metrics certificate reads /1.0/metrics only",
                ))
            };
        }
        crate::https::Scope::Projects(p) => p,
    };
    let restricted = |what: &str| {
        ApiError::new(
            403,
            format!(
                "not authorized: this client's certificate is restricted (to the projects {}), and {what}",
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ),
        )
    };
    let read = req.method == "GET";
    let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let project = req
        .query("project")
        .filter(|p| !p.is_empty())
        .unwrap_or("default");
    let in_project = |project: &str| {
        if req.query("all-projects") == Some("true") {
            return Err(restricted("may not list all projects"));
        }
        if allowed.iter().any(|p| p == project) {
            Ok(())
        } else {
            Err(restricted(&format!(
                "project \"{project}\" is not among them"
            )))
        }
    };
    match parts.as_slice() {
        [] | [""] | ["1.0"] if read => Ok(()),
        [] | [""] | ["1.0"] => Err(restricted("may not change the server's config")),
        ["1.0", "certificates", ..] if read => Ok(()),
        ["1.0", "certificates", ..] => Err(restricted("may not change the trust store")),
        ["1.0", "projects"] if read => Ok(()),
        ["1.0", "projects", name, ..] if read => in_project(name),
        ["1.0", "projects", ..] => Err(restricted("may not create, change or delete projects")),
        ["1.0", "storage-pools", _, "volumes", ..] => in_project(project),
        ["1.0", "storage-pools", ..] | ["1.0", "networks", ..] if read => Ok(()),
        ["1.0", "storage-pools", ..] => Err(restricted("may not change storage pools")),
        ["1.0", "networks", ..] => Err(restricted("may not change networks")),
        ["1.0", "resources", ..] => Err(restricted("may not read the host's resources")),
        ["1.0", "metrics"] if req.query("project").is_none() => Err(restricted(
            "reads the metrics of its projects only (?project=)",
        )),
        // an operation is known by its id: the project it works in decides
        ["1.0", "operations", id, ..] => match d.hub.get(id) {
            Some(op) => in_project(&op.project),
            None => Err(ApiError::not_found("Operation not found")),
        },
        _ => in_project(project),
    }
}

/// A certificate given as PEM or as base64 DER (what `incus config trust add-certificate` sends):
/// its PEM and fingerprint.
fn parse_certificate(text: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request("certificate: not a certificate (PEM or base64 DER)");
    let der = if text.contains("-----BEGIN") {
        warren_image::fetch::pem_to_der(text).ok_or_else(bad)?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| bad())?
    };
    // a DER certificate is a SEQUENCE
    if der.first() != Some(&0x30) || der.len() < 64 {
        return Err(bad());
    }
    let pem = warren_image::fetch::der_to_pem(&der);
    Ok((pem, hex::encode(Sha256::digest(&der))))
}

/// The one certificate whose fingerprint starts with `prefix`.
fn find(d: &Daemon, prefix: &str) -> Result<Certificate, ApiError> {
    let all = d.db().certificates().map_err(internal)?;
    let found: Vec<_> = all
        .into_iter()
        .filter(|c| !prefix.is_empty() && c.fingerprint.starts_with(prefix))
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(ApiError::not_found("Certificate not found")),
        _ => Err(ApiError::bad_request(
            "More than one certificate matches: give more of the fingerprint",
        )),
    }
}

pub fn handle(d: &Arc<Daemon>, req: &Request, rest: &[&str]) -> Result<Response, ApiError> {
    match (req.method.as_str(), rest) {
        ("GET", []) => {
            let mut all = d.db().certificates().map_err(internal)?;
            // a restricted client sees its own certificate only
            if req.peer.scope() != crate::https::Scope::Full {
                all.retain(|c| Some(c.fingerprint.as_str()) == req.peer.fingerprint());
            }
            Ok(api::sync(if recursion(req) == 0 {
                json!(all
                    .iter()
                    .map(|c| format!("/1.0/certificates/{}", c.fingerprint))
                    .collect::<Vec<_>>())
            } else {
                json!(all.iter().map(certificate_json).collect::<Vec<_>>())
            }))
        }
        ("GET", [fp]) => {
            let c = find(d, fp)?;
            if req.peer.scope() != crate::https::Scope::Full
                && Some(c.fingerprint.as_str()) != req.peer.fingerprint()
            {
                return Err(ApiError::not_found("Certificate not found"));
            }
            Ok(api::sync(certificate_json(&c)))
        }
        ("PUT", [fp]) => edit(d, req, fp, false),
        ("PATCH", [fp]) => edit(d, req, fp, true),
        ("DELETE", [fp]) => {
            let c = find(d, fp)?;
            d.db()
                .delete_certificate(&c.fingerprint)
                .map_err(internal)?;
            Ok(api::sync(Value::Null))
        }
        ("POST", []) => add(d, req),
        _ => Err(ApiError::not_found("not found")),
    }
}

/// `PUT`/`PATCH /1.0/certificates/<fp>` (`incus config trust edit`): its name, type,
/// description, restriction and projects, and the certificate itself (replaced: the new one is
/// trusted in its place).
fn edit(d: &Arc<Daemon>, req: &Request, fp: &str, patch: bool) -> Result<Response, ApiError> {
    let old = find(d, fp)?;
    let body = json_body(req)?;
    let text = |k: &str, was: &str| -> Result<String, ApiError> {
        match body.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) if patch => Ok(was.to_string()),
            None | Some(Value::Null) => Ok(String::new()),
            Some(_) => Err(ApiError::bad_request(format!("{k}: a string"))),
        }
    };
    let kind = match text("type", &old.kind)?.as_str() {
        "" | "client" => "client".to_string(),
        "metrics" => "metrics".to_string(),
        other => {
            return Err(ApiError::bad_request(format!(
                "type: unknown certificate type {other:?} (client or metrics)"
            )))
        }
    };
    let (mut restricted, mut projects) = restriction(d, &body)?;
    if patch {
        if body.get("restricted").is_none() {
            restricted = old.restricted;
        }
        if body.get("projects").is_none() {
            projects = old.projects.clone();
        }
    }
    let (certificate, fingerprint) = match body.get("certificate").and_then(Value::as_str) {
        Some(c) if !c.trim().is_empty() => parse_certificate(c)?,
        _ => (old.certificate.clone(), old.fingerprint.clone()),
    };
    let new = Certificate {
        fingerprint,
        name: text("name", &old.name)?,
        kind,
        certificate,
        description: text("description", &old.description)?,
        restricted,
        projects,
    };
    let db = d.db();
    if new.fingerprint != old.fingerprint {
        if db
            .certificates()
            .map_err(internal)?
            .iter()
            .any(|c| c.fingerprint == new.fingerprint)
        {
            return Err(ApiError::new(409, "Certificate already in trust store"));
        }
        db.delete_certificate(&old.fingerprint).map_err(internal)?;
    }
    db.put_certificate(&new).map_err(internal)?;
    Ok(api::sync(Value::Null))
}

/// `POST /1.0/certificates`: a trust token asked for (`token: true`), a certificate added, or a
/// token presented by a client that isn't trusted yet.
fn add(d: &Arc<Daemon>, req: &Request) -> Result<Response, ApiError> {
    let body = json_body(req)?;
    let get = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    if !get("trust_token").is_empty() {
        return redeem(d, req, get("trust_token"));
    }
    if !req.peer.trusted() {
        return Err(ApiError::new(403, "not authorized"));
    }
    let kind = match get("type") {
        "" | "client" => "client",
        "metrics" => "metrics",
        other => {
            return Err(ApiError::bad_request(format!(
                "type: unknown certificate type {other:?} (client or metrics)"
            )))
        }
    };
    let (restricted, projects) = restriction(d, &body)?;
    if body.get("token").and_then(Value::as_bool) == Some(true) {
        return make_token(d, &body, get("name"), restricted, projects);
    }
    let (pem, fingerprint) = if !get("certificate").is_empty() {
        parse_certificate(get("certificate"))?
    } else {
        match &req.peer {
            Peer::Tls {
                certificate: Some(pem),
                fingerprint: Some(fp),
                ..
            } => (pem.clone(), fp.clone()),
            _ => return Err(ApiError::bad_request("certificate: none given")),
        }
    };
    if d.db()
        .certificates()
        .map_err(internal)?
        .iter()
        .any(|c| c.fingerprint == fingerprint)
    {
        return Err(ApiError::new(409, "Certificate already in trust store"));
    }
    d.db()
        .put_certificate(&Certificate {
            fingerprint,
            name: get("name").to_string(),
            kind: kind.to_string(),
            certificate: pem,
            description: get("description").to_string(),
            restricted,
            projects,
        })
        .map_err(internal)?;
    Ok(api::sync(Value::Null))
}

/// A token operation: running until a client presents its secret (or it is cancelled). Its
/// metadata is what the client packs into the token it prints.
fn make_token(
    d: &Arc<Daemon>,
    body: &Value,
    name: &str,
    restricted: bool,
    projects: Vec<String>,
) -> Result<Response, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "name: a token needs the client's name",
        ));
    }
    let addresses = crate::https::addresses(d);
    if addresses.is_empty() {
        return Err(ApiError::bad_request(
            "The server isn't listening on the network: set core.https_address first (incus config set core.https_address :8443)",
        ));
    }
    let identity = crate::https::identity(&d.dir).map_err(internal)?;
    let secret = new_secret()?;
    let (used_tx, used_rx) = std::sync::mpsc::channel::<()>();
    let id = crate::ops::Hub::new_id();
    d.trust_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            secret.clone(),
            crate::PendingToken {
                name: name.to_string(),
                restricted,
                projects,
                used: used_tx,
            },
        );
    let metadata = json!({"addresses": addresses, "fingerprint": identity.fingerprint,
                          "request": body, "secret": secret});
    let dd = d.clone();
    let forget = move || {
        // the sender goes with the entry: the operation's wait ends
        dd.trust_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&secret);
    };
    Ok(token_operation(
        d,
        id,
        metadata,
        json!({}),
        used_rx,
        None,
        forget,
        "Token cancelled",
    ))
}

/// A token operation (a trust token's, an image secret's): running until `spent` is told,
/// `lifetime` passes or it is cancelled; `forget` drops the secret's entry at its end.
#[allow(clippy::too_many_arguments)]
fn token_operation(
    d: &Arc<Daemon>,
    id: String,
    metadata: Value,
    resources: Value,
    spent: std::sync::mpsc::Receiver<()>,
    lifetime: Option<std::time::Duration>,
    forget: impl Fn() + Send + Sync + 'static,
    ended: &'static str,
) -> Response {
    let forget = Arc::new(forget);
    let at_end = forget.clone();
    let op = d.hub.run_with(
        id.clone(),
        "token",
        metadata,
        "Executing operation",
        resources,
        move || {
            let used = match lifetime {
                Some(t) => spent.recv_timeout(t).map_err(|_| ()),
                None => spent.recv().map_err(|_| ()),
            };
            at_end();
            used.map(|()| Value::Null).map_err(|()| ended.to_string())
        },
    );
    d.hub.cancellable(&id, Box::new(move || forget()));
    let mut op = op;
    op.may_cancel = true;
    api::async_op(&op)
}

/// A trust token presented over HTTPS: the client's certificate joins the trust store under the
/// token's name, and the token is spent.
fn redeem(d: &Arc<Daemon>, req: &Request, token: &str) -> Result<Response, ApiError> {
    let refused = || ApiError::new(403, "not authorized");
    let Peer::Tls {
        certificate: Some(pem),
        fingerprint: Some(fingerprint),
        ..
    } = &req.peer
    else {
        return Err(ApiError::bad_request(
            "A trust token is presented over HTTPS with the client's certificate",
        ));
    };
    // the token is base64 of JSON with the secret; a bare secret is taken too
    let secret = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .and_then(|v| v.get("secret").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| token.trim().to_string());
    let entry = d
        .trust_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&secret);
    let Some(token) = entry else {
        crate::log::warn("a client presented an unknown trust token");
        return Err(refused());
    };
    d.db()
        .put_certificate(&Certificate {
            fingerprint: fingerprint.clone(),
            name: token.name,
            kind: "client".into(),
            certificate: pem.clone(),
            description: String::new(),
            restricted: token.restricted,
            projects: token.projects,
        })
        .map_err(internal)?;
    let _ = token.used.send(());
    Ok(api::sync(Value::Null))
}

/// A random secret (hex of 32 bytes).
fn new_secret() -> Result<String, ApiError> {
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
        .map_err(internal)?;
    Ok(hex::encode(secret))
}

/// How long an image secret stays good if nobody uses it.
const IMAGE_SECRET_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// `POST /1.0/images/<fp>/secret`: a token operation whose secret lets a server that isn't
/// trusted read this image's record and export it once.
pub fn image_secret(
    d: &Arc<Daemon>,
    project: &crate::db::Project,
    fp: &str,
) -> Result<Response, ApiError> {
    let images = d.db().images(project.images_project()).map_err(internal)?;
    let image = crate::images::find(&images, fp)
        .ok_or_else(|| ApiError::not_found("Image not found"))?
        .clone();
    let secret = new_secret()?;
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<()>();
    d.image_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            secret.clone(),
            (image.fingerprint.clone(), project.name.clone(), spent_tx),
        );
    let metadata = json!({"secret": secret});
    let dd = d.clone();
    let forget = move || {
        dd.image_secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&secret);
    };
    Ok(token_operation(
        d,
        crate::ops::Hub::new_id(),
        metadata,
        json!({"images": [format!("/1.0/images/{}", image.fingerprint)]}),
        spent_rx,
        Some(IMAGE_SECRET_LIFETIME),
        forget,
        "The image secret expired or was cancelled",
    ))
}

/// Whether `secret` opens `path` (`/1.0/images/<fp>` or its `/export`) to a client that isn't
/// trusted: in the project the secret was made in only, not the same fingerprint's record in
/// another project.
pub fn secret_grants(d: &Daemon, path: &str, secret: Option<&str>, project: Option<&str>) -> bool {
    let project = project.filter(|p| !p.is_empty()).unwrap_or("default");
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return false;
    };
    let rest = path
        .trim_end_matches('/')
        .trim_start_matches("/1.0/images/");
    let fp = rest.strip_suffix("/export").unwrap_or(rest);
    if fp.is_empty() || fp.contains('/') || rest.len() == path.len() {
        return false;
    }
    d.image_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(secret)
        .is_some_and(|(image, made_in, _)| image.starts_with(fp) && made_in == project)
}

/// Ends an image secret's operation (its export was served).
pub fn spend_image_secret(d: &Daemon, secret: &str) {
    if let Some((_, _, spent)) = d
        .image_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(secret)
    {
        let _ = spent.send(());
    }
}
