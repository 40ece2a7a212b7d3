//! `POST /1.0/instances/<name>/exec`: an operation of class websocket whose streams are
//! websockets (one per fd, plus control), bridged to `warren-lxc attach` run with pipes (or a
//! pty for interactive exec). Data are binary frames; an empty text frame ends a stream; the exit
//! code is the operation's `metadata.return`.

use crate::ws;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The websockets of one exec, as the client connects them.
pub struct Session {
    /// fd name ("0", "1", "2", "control") to secret.
    pub secrets: HashMap<String, String>,
    conns: Mutex<HashMap<String, UnixStream>>,
    ready: Condvar,
    /// Clones of every stream connected, so that cancelling can shut them all.
    held: Mutex<Vec<UnixStream>>,
    closed: std::sync::atomic::AtomicBool,
}

fn secret() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

impl Session {
    pub fn new(interactive: bool) -> Session {
        let names: &[&str] = if interactive {
            &["0", "control"]
        } else {
            &["0", "1", "2", "control"]
        };
        Session {
            secrets: names.iter().map(|n| (n.to_string(), secret())).collect(),
            conns: Mutex::new(HashMap::new()),
            ready: Condvar::new(),
            held: Mutex::new(Vec::new()),
            closed: Default::default(),
        }
    }

    /// A client's websocket for the fd whose secret is `secret`; false if it matches none.
    pub fn connect(&self, secret: &str, stream: UnixStream) -> bool {
        let Some(fd) = self
            .secrets
            .iter()
            .find(|(_, s)| *s == secret)
            .map(|(f, _)| f.clone())
        else {
            return false;
        };
        if let (Ok(mut held), Ok(clone)) = (self.held.lock(), stream.try_clone()) {
            held.push(clone);
        }
        if let Ok(mut c) = self.conns.lock() {
            c.insert(fd, stream);
        }
        self.ready.notify_all();
        true
    }

    /// Ends the session: every websocket is shut, and a wait for the rest gives up.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(held) = self.held.lock() {
            for s in held.iter() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        let _guard = self.conns.lock();
        self.ready.notify_all();
    }

    /// Waits (120 s at most: a loaded client can be slow to open them) until every fd is
    /// connected, and takes the streams.
    pub(crate) fn streams(&self) -> Result<HashMap<String, UnixStream>, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut conns = self.conns.lock().map_err(|_| "lock")?;
        while conns.len() < self.secrets.len() {
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("the session was closed".into());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err("the client did not connect the exec websockets".into());
            }
            conns = self.ready.wait_timeout(conns, left).map_err(|_| "lock")?.0;
        }
        Ok(std::mem::take(&mut *conns))
    }
}

/// What the client asked for.
pub struct Request {
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub interactive: bool,
    pub width: u16,
    pub height: u16,
    pub user: u32,
    pub group: u32,
    pub cwd: String,
}

impl Request {
    /// `instance_env`: the instance's environment.* keys, over the defaults and under the
    /// client's.
    pub fn parse(body: &Value, instance_env: &[(String, String)]) -> Result<Request, String> {
        let command: Vec<String> = body
            .get("command")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if command.is_empty() {
            return Err("The command is empty".into());
        }
        let mut environment: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), "/root".into()),
            ("USER".into(), "root".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        for (k, v) in instance_env {
            environment.retain(|(ek, _)| ek != k);
            environment.push((k.clone(), v.clone()));
        }
        if let Some(env) = body.get("environment").and_then(Value::as_object) {
            for (k, v) in env {
                environment.retain(|(ek, _)| ek != k);
                environment.push((k.clone(), v.as_str().unwrap_or("").to_string()));
            }
        }
        let num = |k: &str| body.get(k).and_then(Value::as_u64).unwrap_or(0);
        Ok(Request {
            command,
            environment,
            interactive: body
                .get("interactive")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            width: num("width") as u16,
            height: num("height") as u16,
            user: num("user") as u32,
            group: num("group") as u32,
            cwd: body
                .get("cwd")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    pub fn metadata(&self, session: &Session) -> Value {
        let env: serde_json::Map<String, Value> = self
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({"command": self.command, "environment": env, "fds": session.secrets, "interactive": self.interactive})
    }
}

/// Runs the command once the client's websockets are all there; the exit code.
pub fn run(
    dir: &std::path::Path,
    name: &str,
    req: &Request,
    session: &Session,
) -> Result<i32, String> {
    let mut streams = session.streams()?;
    let mut cmd = Command::new(crate::instances::warren_lxc());
    cmd.arg("attach")
        .arg("-P")
        .arg(crate::instances::lxcpath(dir))
        .args(["-n", name, "--clear-env"]);
    for (k, v) in &req.environment {
        cmd.arg("-v").arg(format!("{k}={v}"));
    }
    cmd.args(["-u", &req.user.to_string(), "-g", &req.group.to_string()]);
    if !req.cwd.is_empty() {
        cmd.args(["--cwd", &req.cwd]);
    }
    cmd.arg("--")
        .args(&req.command)
        .env("WARREN_LXC_DEFAULT_CONF", "/dev/null");
    let control = streams.remove("control");
    if req.interactive {
        run_pty(cmd, req, streams, control)
    } else {
        run_pipes(cmd, streams, control)
    }
}

/// Forwards control messages: signals to `pid`, window sizes to `pty`.
fn control_loop(mut control: UnixStream, pid: i32, pty: Option<std::os::fd::RawFd>) {
    while let Ok((op, payload)) = ws::read_frame(&mut control) {
        if op == 0x8 {
            break;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&payload) else {
            continue;
        };
        match msg.get("command").and_then(Value::as_str) {
            Some("signal") => {
                let sig = msg.get("signal").and_then(Value::as_i64).unwrap_or(0) as i32;
                if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                }
            }
            Some("window-resize") => {
                let arg = |k: &str| {
                    msg["args"][k]
                        .as_str()
                        .and_then(|v| v.parse::<u16>().ok())
                        .unwrap_or(0)
                };
                if let Some(fd) = pty {
                    let size = warren_sys::WindowSize {
                        rows: arg("height"),
                        cols: arg("width"),
                    };
                    let _ = warren_sys::set_window_size(warren_sys::std_fd(fd), size);
                }
            }
            _ => {}
        }
    }
}

fn pump_out(mut from: impl Read, mut to: UnixStream) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if ws::send_binary(&mut to, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = ws::send_text(&mut to, "");
    drain(to);
}

/// Reads what the client still sends (its pong to our keepalive ping, say) until it closes. A
/// unix socket closed with unread data makes the client's next read fail with ECONNRESET, which
/// the incus client reports as an error even though the command succeeded.
fn drain(mut stream: UnixStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

/// stdin: the client's frames into `to` until its barrier. `last_user` (non-interactive: this
/// thread is the stream's only user) drains the stream before it is closed.
fn pump_in(mut from: UnixStream, mut to: impl Write, last_user: bool) {
    pump_frames(&mut from, &mut to);
    drop(to);
    if last_user {
        drain(from);
    }
}

fn pump_frames(from: &mut UnixStream, to: &mut impl Write) {
    while let Ok((op, payload)) = ws::read_frame(from) {
        match op {
            0x0 | 0x2 if to.write_all(&payload).is_err() => return,
            0x0 | 0x2 => {}
            0x1 | 0x8 => return, // barrier (empty text frame) or close: stdin ends
            _ => {}
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn run_pipes(
    mut cmd: Command,
    mut streams: HashMap<String, UnixStream>,
    control: Option<UnixStream>,
) -> Result<i32, String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("warren-lxc attach: {e}"))?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let pid = child.id() as i32;
    if let Some(c) = control {
        std::thread::spawn(move || control_loop(c, pid, None));
    }
    if let (Some(ws0), Some(stdin)) = (streams.remove("0"), stdin) {
        std::thread::spawn(move || pump_in(ws0, stdin, true));
    }
    let out = streams
        .remove("1")
        .zip(stdout)
        .map(|(ws, o)| std::thread::spawn(move || pump_out(o, ws)));
    let err = streams
        .remove("2")
        .zip(stderr)
        .map(|(ws, e)| std::thread::spawn(move || pump_out(e, ws)));
    let status = child.wait().map_err(|e| e.to_string())?;
    // the barriers come before the operation ends
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    Ok(exit_code(status))
}

fn run_pty(
    mut cmd: Command,
    req: &Request,
    mut streams: HashMap<String, UnixStream>,
    control: Option<UnixStream>,
) -> Result<i32, String> {
    use std::os::fd::AsRawFd;
    let size = nix::pty::Winsize {
        ws_row: req.height.max(24),
        ws_col: req.width.max(80),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(&size, None).map_err(|e| format!("openpty: {e}"))?;
    let slave = std::fs::File::from(pty.slave);
    cmd.stdin(slave.try_clone().map_err(|e| e.to_string())?)
        .stdout(slave.try_clone().map_err(|e| e.to_string())?)
        .stderr(slave);
    let mut child = cmd.spawn().map_err(|e| format!("warren-lxc attach: {e}"))?;
    drop(cmd);
    let master = std::fs::File::from(pty.master);
    let master_fd = master.as_raw_fd();
    let pid = child.id() as i32;
    if let Some(c) = control {
        std::thread::spawn(move || control_loop(c, pid, Some(master_fd)));
    }
    let ws0 = streams.remove("0").ok_or("no stream 0")?;
    let (ws_in, master_in) = (
        ws0.try_clone().map_err(|e| e.to_string())?,
        master.try_clone().map_err(|e| e.to_string())?,
    );
    std::thread::spawn(move || pump_in(ws_in, master_in, false));
    let out = std::thread::spawn(move || pump_out(master, ws0));
    let status = child.wait().map_err(|e| e.to_string())?;
    // the pty reads EIO once no process holds the slave: the output pump ends with the barrier
    let _ = out.join();
    Ok(exit_code(status))
}

/// The sessions of running exec operations, by operation id.
pub type Sessions = Mutex<HashMap<String, Arc<Session>>>;
