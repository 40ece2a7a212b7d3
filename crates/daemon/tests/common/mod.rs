//! What the daemon's end-to-end tests share: a warrend of their own, the real incus client
//! pointed at it, and the example busybox image.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use warren_testutil::wait_until;

pub const WARREND: &str = env!("CARGO_BIN_EXE_warrend");
pub const WARREN: &str = env!("CARGO_BIN_EXE_warren");

/// A warrend on a directory of its own, stopped on drop.
pub struct Warrend {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Warrend {
    pub fn start() -> Warrend {
        Warrend::start_with(&[])
    }

    /// warrend with these environment variables too (kept across restarts).
    pub fn start_with(env: &[(&str, &str)]) -> Warrend {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut w = Warrend {
            dir,
            child: None,
            env,
        };
        w.restart();
        w
    }

    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
        self.child = Some(
            Command::new(WARREND)
                .env("WARREN_DIR", self.dir.path())
                // managed networks' dnsmasq forwards no query off the machine
                .env("WARREND_DNS_NO_UPSTREAM", "1")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .spawn()
                .expect("warrend"),
        );
        let socket = self.socket();
        assert!(
            wait_until(10, || std::os::unix::net::UnixStream::connect(&socket)
                .is_ok()),
            "warrend did not listen"
        );
    }

    /// warrend's own pid.
    pub fn pid_of_daemon(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// The init pid `incus info` shows.
    pub fn pid(&self, name: &str) -> String {
        let info = self.ok(&["info", name]);
        info.lines()
            .find_map(|l| l.strip_prefix("PID: "))
            .expect("a pid")
            .trim()
            .to_string()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("unix.socket")
    }

    pub fn incus(&self, args: &[&str]) -> Output {
        Command::new("incus")
            .args(args)
            .env("INCUS_SOCKET", self.socket())
            .env("INCUS_CONF", self.dir.path().join("client"))
            .output()
            .expect("incus")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.incus(args);
        assert!(
            o.status.success(),
            "incus {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A raw request with extra headers; (status, response head, body bytes).
    pub fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        let _ = s.write_all(body);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.len());
        let head = String::from_utf8_lossy(&out[..split]).into_owned();
        let body = out.get(split + 4..).unwrap_or_default().to_vec();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head, body)
    }

    /// A raw request; (status, body).
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nHost: unix.socket\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        s.write_all(head.as_bytes()).expect("write");
        let _ = s.write_all(body);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let json = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (
            status,
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for Warrend {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // managed networks outlive warrend too
        let nets = self.dir.path().join("networks");
        for e in std::fs::read_dir(&nets).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "lxc-net") {
                let _ = Command::new(LXC)
                    .args(["net", "stop", "--config"])
                    .arg(e.path())
                    .arg("--run-dir")
                    .arg(nets.join("run"))
                    .output();
            }
        }
        // containers outlive warrend by design: the test's go with it, also after a failure
        let lxcpath = self.dir.path().join("containers");
        for e in std::fs::read_dir(&lxcpath).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // an overlay rootfs is warrend's mount
            let _ = Command::new("umount")
                .arg("-l")
                .arg(e.path().join("rootfs"))
                .output();
            for sub in [&["stop", "-k"][..], &["destroy", "-f"][..]] {
                let _ = Command::new(LXC)
                    .arg(sub[0])
                    .arg("-P")
                    .arg(&lxcpath)
                    .args(["-n", &name])
                    .args(&sub[1..])
                    .output();
            }
        }
        // the image mounts (squashfs, idmapped) and anything else left below the directory
        warren_testutil::unmount_under(self.dir.path());
    }
}

pub const LXC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/warren-lxc");

pub fn have_incus() -> bool {
    warren_testutil::require_installed(
        "/usr/bin/incus",
        "the incus client",
        "apt-get install -t bookworm-backports incus-client",
    )
}

pub fn admin_init(w: &Warrend) {
    let o = Command::new(WARREN)
        .args(["admin", "init", "--minimal", "--network", "none"])
        .env("WARREN_DIR", w.dir.path())
        .output()
        .expect("warren");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

pub const WARREN_BUILD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/debug/warren-build"
);
pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/busybox.yaml");

/// The example busybox image as a unified Incus tarball.
pub fn unified_image(dir: &Path) -> PathBuf {
    let out = dir.join("image");
    let o = Command::new(WARREN_BUILD)
        .args([
            "build-incus",
            EXAMPLE,
            &out.to_string_lossy(),
            "--type",
            "unified",
            "--no-cache",
        ])
        .arg("--sources-dir")
        .arg(dir.join("sources"))
        .output()
        .expect("warren-build");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_dir(&out)
        .expect("outputs")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .expect("a unified tarball")
}

/// A console client (`command`, a shell command line) on a pseudo-terminal (`script`), with the
/// steps' input written to it one by one (`exec:...` runs that in instance `name` instead); what
/// the console showed, and whether the client exited by itself.
pub fn console_session(
    w: &Warrend,
    command: &str,
    name: &str,
    steps: &[(u64, &str)],
) -> (String, bool) {
    let cmd = command.to_string();
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    for (wait_ms, text) in steps {
        std::thread::sleep(std::time::Duration::from_millis(*wait_ms));
        if let Some(script) = text.strip_prefix("exec:") {
            w.ok(&["exec", name, "--", "sh", "-c", script]);
        } else {
            // the client reads its raw terminal a byte at a time: the escape and `q` apart
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
    }
    let exited = warren_testutil::wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    (String::from_utf8_lossy(&out.stdout).into_owned(), exited)
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
