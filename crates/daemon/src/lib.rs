//! warrend, the manager daemon: state in SQLite under $WARREN_DIR, Incus's /1.0 REST API on
//! `$WARREN_DIR/unix.socket`. This is its first part: the server, the envelope, and the
//! read-mostly endpoints (server info, profiles, storage pools, projects, networks); instances,
//! images, operations and events follow (issue 7).

pub mod api;
pub mod boot;
pub mod config;
pub mod console;
pub mod db;
pub mod exec;
pub mod files;
pub mod filter;
pub mod hotplug;
pub mod http;
pub mod https;
pub mod imagemount;
pub mod images;
pub mod instances;
pub mod log;
pub mod metrics;
pub mod networks;
pub mod ops;
pub mod projects;
pub mod proxies;
pub mod quotas;
pub mod remote;
pub mod resources;
pub mod restrictions;
pub mod rootfs;
pub mod routes;
pub mod routes_networks;
pub mod routes_trust;
pub mod sftp;
pub mod time;
pub mod volumes;
pub mod ws;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Trust tokens by secret: (operation id, client name, the operation's wake-up).
pub type TrustTokens = std::collections::HashMap<String, PendingToken>;

/// A trust token not used yet (`incus config trust add NAME`).
pub struct PendingToken {
    /// The client's name, which its certificate gets.
    pub name: String,
    /// What the certificate will open (`--restricted --projects`).
    pub restricted: bool,
    pub projects: Vec<String>,
    /// Tells the token's operation it was used.
    pub used: std::sync::mpsc::Sender<()>,
}

pub struct Daemon {
    pub dir: PathBuf,
    db: Mutex<db::Db>,
    pub hub: std::sync::Arc<ops::Hub>,
    /// The websockets of exec operations, by operation id.
    pub execs: exec::Sessions,
    /// The listeners of running instances' proxy devices.
    pub proxies: proxies::Proxies,
    /// The HTTPS listener (`core.https_address`), when one is configured.
    pub https: Mutex<Option<https::Listener>>,
    /// Trust tokens not used yet, by secret.
    pub trust_tokens: Mutex<TrustTokens>,
    /// Secrets that let another server fetch one image without being trusted (`POST
    /// /1.0/images/<fp>/secret`): secret → (fingerprint, project, the secret operation's wake-up).
    pub image_secrets: Mutex<ImageSecrets>,
    /// Held by each change of an instance's or a profile's config, so that changes applied to
    /// running instances don't interleave.
    pub updates: Mutex<()>,
}

/// Image secrets: secret → (image fingerprint, the project it was made in, the operation's
/// wake-up).
pub type ImageSecrets =
    std::collections::HashMap<String, (String, String, std::sync::mpsc::Sender<()>)>;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] db::DbError),
}

fn io(path: &Path, source: std::io::Error) -> DaemonError {
    DaemonError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// $WARREN_DIR, or /var/lib/warren.
pub fn warren_dir() -> PathBuf {
    std::env::var_os("WARREN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren"))
}

impl Daemon {
    pub fn open(dir: &Path) -> Result<Daemon, DaemonError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
        // every entry of these is a tree of its own, made and deleted whole
        for sub in ["images", "containers", "snapshots"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|e| io(&path, e))?;
            let _ = warren_sys::set_topdir_flag(&path);
        }
        let db = db::Db::open(&dir.join("warren.db"))?;
        Ok(Daemon {
            dir: dir.to_path_buf(),
            db: Mutex::new(db),
            hub: Default::default(),
            execs: Default::default(),
            proxies: Default::default(),
            https: Default::default(),
            trust_tokens: Default::default(),
            image_secrets: Default::default(),
            updates: Default::default(),
        })
    }

    pub fn db(&self) -> MutexGuard<'_, db::Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds `$dir/unix.socket` (mode 0660, group warren-admin when it exists).
    pub fn bind(&self) -> Result<UnixListener, DaemonError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("unix.socket");
        if UnixStream::connect(&path).is_ok() {
            return Err(io(
                &path,
                std::io::Error::other("another warrend is already listening on it"),
            ));
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| io(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| io(&path, e))?;
        if let Ok(Some(group)) = nix::unistd::Group::from_name("warren-admin") {
            let _ = nix::unistd::chown(&path, None, Some(group.gid));
        }
        Ok(listener)
    }

    /// Makes the proxy listeners match the running instances now.
    pub fn sync_proxies(&self) {
        let rows = {
            let db = self.db();
            db.all_profiles().and_then(|p| Ok((p, db.instances()?)))
        };
        if let Ok((profiles, instances)) = rows {
            self.proxies.ensure(&self.dir, &profiles, &instances);
        }
    }

    /// Answers requests until the process ends, a thread per connection.
    pub fn serve(self: std::sync::Arc<Self>, listener: UnixListener) {
        // managed bridges first (after a reboot they are gone): instances stand on them
        routes_networks::ensure_all(&self);
        boot::autostart(&self);
        let address = self
            .db()
            .server_config()
            .ok()
            .and_then(|c| c.get("core.https_address").cloned())
            .unwrap_or_default();
        if let Err(e) = https::apply(&self, &address) {
            log::error(&e);
        }
        // proxy devices follow their instances: started with them, stopped with them (also when
        // they start or stop behind warrend's back)
        // images from servers refreshed every WARREND_IMAGES_AUTO_UPDATE_INTERVAL hours (6; 0: never)
        let hours: f64 = std::env::var("WARREND_IMAGES_AUTO_UPDATE_INTERVAL")
            .ok()
            .and_then(|h| h.parse().ok())
            .unwrap_or(6.0);
        if hours > 0.0 {
            let d = self.clone();
            let every = std::time::Duration::from_secs_f64(hours * 3600.0);
            std::thread::spawn(move || crate::remote::auto_update_loop(d, every));
        }
        let d = self.clone();
        std::thread::spawn(move || loop {
            d.sync_proxies();
            std::thread::sleep(std::time::Duration::from_secs(2));
        });
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // out of descriptors: the connection waits in the backlog; don't spin meanwhile
                    log::warn(&format!("accept: {e}"));
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            };
            let d = self.clone();
            std::thread::spawn(move || {
                let _ = d.connection(stream, https::Peer::Unix);
            });
        }
    }

    /// One request from `peer` (the unix socket, or an HTTPS client through [`https`]).
    pub fn connection(
        self: &std::sync::Arc<Self>,
        stream: UnixStream,
        peer: https::Peer,
    ) -> std::io::Result<()> {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
        let mut writer = stream.try_clone()?;
        let images = self.dir.join("images");
        let uploads = peer.trusted().then_some(images.as_path());
        let max_body = if peer.trusted() {
            http::MAX_BODY
        } else {
            http::UNTRUSTED_MAX_BODY
        };
        let request = http::read_request(&stream, uploads, max_body).map(|mut r| {
            r.peer = peer.clone();
            r
        });
        // an untrusted HTTPS client sees the server's public face and may offer a trust token;
        // an operation's websocket is reached by its secret, as incusd allows
        if let (Ok(req), false) = (&request, peer.trusted()) {
            let open = (req.method == "GET" && req.path.trim_end_matches('/') == "/1.0")
                || (req.method == "POST" && req.path.trim_end_matches('/') == "/1.0/certificates")
                || (req.method == "GET"
                    && req.path.starts_with("/1.0/operations/")
                    && req.path.ends_with("/websocket")
                    && req
                        .header("upgrade")
                        .is_some_and(|u| u.eq_ignore_ascii_case("websocket")))
                || (req.method == "GET"
                    && routes_trust::secret_grants(
                        self,
                        &req.path,
                        req.query("secret"),
                        req.query("project"),
                    ));
            if !open {
                if let Some(body) = &req.body_file {
                    let _ = std::fs::remove_file(body);
                }
                return http::write_response(
                    &mut writer,
                    &api::error(&api::ApiError::new(403, "not authorized")),
                );
            }
        }
        // what a restricted (or metrics) certificate may not reach, before anything is done
        if let Ok(req) = &request {
            if let Err(e) = routes_trust::check_scope(self, req) {
                if let Some(body) = &req.body_file {
                    let _ = std::fs::remove_file(body);
                }
                return http::write_response(&mut writer, &api::error(&e));
            }
        }
        let response = match request {
            Ok(req)
                if req.path.trim_end_matches('/') == "/1.0/events"
                    && req
                        .header("upgrade")
                        .is_some_and(|u| u.eq_ignore_ascii_case("websocket")) =>
            {
                return self.events(writer, &req);
            }
            Ok(req)
                if req.path.ends_with("/websocket")
                    && req
                        .header("upgrade")
                        .is_some_and(|u| u.eq_ignore_ascii_case("websocket")) =>
            {
                return self.operation_websocket(writer, &req);
            }
            Ok(req)
                if req.path.ends_with("/sftp")
                    && req
                        .header("upgrade")
                        .is_some_and(|u| u.eq_ignore_ascii_case("sftp")) =>
            {
                return self.sftp(writer, &req);
            }
            Ok(req)
                if req.method == "PUT"
                    && req.path.trim_end_matches('/') == "/internal/shutdown"
                    && peer == https::Peer::Unix =>
            {
                // `warrend shutdown` / `incus admin shutdown`: stop every instance cleanly, answer,
                // then end
                boot::shutdown(self);
                let _ = http::write_response(&mut writer, &api::sync(serde_json::Value::Null));
                log::info("shut down");
                std::process::exit(0);
            }
            Ok(req) => {
                let started = std::time::Instant::now();
                let r = routes::handle(self, &req);
                if log::enabled(log::Level::Debug) {
                    log::debug(&format!(
                        "{} {} -> {} ({} ms)",
                        req.method,
                        req.path,
                        r.status,
                        started.elapsed().as_millis()
                    ));
                }
                r
            }
            Err(http::HttpError::TooLarge) => {
                api::error(&api::ApiError::new(413, "The request body is too large"))
            }
            Err(e) => api::error(&api::ApiError::bad_request(e.to_string())),
        };
        http::write_response(&mut writer, &response)
    }

    /// `GET /1.0/operations/<id>/websocket?secret=...`: one stream of an exec, handed to its session.
    fn operation_websocket(
        &self,
        mut stream: UnixStream,
        req: &http::Request,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let id = req
            .path
            .trim_start_matches("/1.0/operations/")
            .trim_end_matches("/websocket")
            .to_string();
        let secret = req.query("secret").unwrap_or("");
        let session = self.execs.lock().ok().and_then(|m| m.get(&id).cloned());
        let known = session
            .as_ref()
            .is_some_and(|s| s.secrets.values().any(|v| v == secret));
        if !known {
            let r = api::error(&api::ApiError::new(
                403,
                "Wrong secret or no such operation",
            ));
            return http::write_response(&mut stream, &r);
        }
        let key = req.header("sec-websocket-key").unwrap_or("");
        stream.set_read_timeout(None)?;
        // Registered even if the client has already gone: the stdin stream of a command whose
        // stdin is /dev/null sends its end and closes at once, before our keepalive ping, and a
        // stream left out would keep the command waiting for it.
        let handshake = stream.write_all(ws::handshake(key).as_bytes());
        let _ = ws::send_ping(&mut stream);
        if let Some(s) = session {
            s.connect(secret, stream);
        }
        handshake
    }

    /// `GET /1.0/instances/<name>/sftp`: the connection becomes an SFTP session in the container's
    /// rootfs, with its id map.
    fn sftp(&self, mut stream: UnixStream, req: &http::Request) -> std::io::Result<()> {
        use std::io::Write;
        let name = req
            .path
            .trim_start_matches("/1.0/instances/")
            .trim_end_matches("/sftp")
            .to_string();
        let project = req.query("project").unwrap_or("default");
        let inst = self
            .db()
            .instance(&db::storage_name(project, &name))
            .ok()
            .flatten()
            .filter(|i| i.project == project && !name.contains('_'));
        let Some(inst) = inst else {
            let msg = format!(
                "Failed to fetch instance \"{name}\" in project \"{project}\": Instance not found"
            );
            return http::write_response(&mut stream, &api::error(&api::ApiError::not_found(msg)));
        };
        // ids on disk are the container's own (an idmapped mount shifts them at start) or shifted
        // through warrend's map (an overlay rootfs): the SFTP server maps them either way
        let root = sftp::Root::of_container(&instances::lxcpath(&self.dir).join(&inst.name))?;
        stream.set_read_timeout(None)?;
        stream.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: sftp\r\nConnection: Upgrade\r\n\r\n",
        )?;
        sftp::serve(stream, root)
    }

    /// The events websocket: every event from now on, a keepalive ping every 10 s, until the
    /// client goes away.
    fn events(&self, mut stream: UnixStream, req: &http::Request) -> std::io::Result<()> {
        use std::io::Write;
        let key = req.header("sec-websocket-key").unwrap_or("");
        let events = self.hub.listen();
        // one project's events (default unless named), or every project's
        let all = req.query("all-projects") == Some("true");
        let project = req.query("project").unwrap_or("default").to_string();
        stream.write_all(ws::handshake(key).as_bytes())?;
        ws::send_ping(&mut stream)?;
        loop {
            match events.recv_timeout(std::time::Duration::from_secs(10)) {
                Ok((p, _)) if !all && !p.is_empty() && p != project => {}
                Ok((_, text)) => ws::send_text(&mut stream, &text)?,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => ws::send_ping(&mut stream)?,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }
}
