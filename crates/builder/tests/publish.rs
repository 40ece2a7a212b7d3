//! Published trees: both indexes follow publish, prune and remove; the server answers ranges,
//! ETags and HEAD, and serves nothing outside the tree or staged.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use warren_testutil::require_root;

const BIN: &str = env!("CARGO_BIN_EXE_warren-build");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/busybox.yaml");

fn wb(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .output()
        .expect("warren-build");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(dir: &Path, serial: &str) -> PathBuf {
    let out = dir.join(serial);
    let sources = dir.join("sources");
    let cache = dir.join("cache");
    wb(&[
        "build-all",
        EXAMPLE,
        &out.to_string_lossy(),
        "-o",
        &format!("image.serial={serial}"),
        "--sources-dir",
        &sources.to_string_lossy(),
        "--step-cache",
        &cache.to_string_lossy(),
    ]);
    out
}

fn products(tree: &Path) -> (String, String) {
    (
        std::fs::read_to_string(tree.join("meta/1.0/index-system")).unwrap_or_default(),
        std::fs::read_to_string(tree.join("streams/v1/images.json")).unwrap_or_default(),
    )
}

#[test]
fn publish_prune_and_remove_keep_both_indexes_in_step() {
    if !require_root("publish_prune_and_remove_keep_both_indexes_in_step") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    let (a, b) = (
        build(tmp.path(), "20260101_0000"),
        build(tmp.path(), "20260102_0000"),
    );
    wb(&[
        "publish",
        &tree.to_string_lossy(),
        &a.to_string_lossy(),
        &b.to_string_lossy(),
    ]);
    let again = Command::new(BIN)
        .args(["publish", &tree.to_string_lossy(), &a.to_string_lossy()])
        .output()
        .expect("run");
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("already published")
    );
    let list = wb(&["list", &tree.to_string_lossy()]);
    assert_eq!(list.lines().count(), 3, "{list}");
    let (lxc, ss) = products(&tree);
    assert!(
        lxc.contains(";20260102_0000;") && !lxc.contains("20260101_0000"),
        "LXC's index names the newest: {lxc}"
    );
    assert!(
        ss.contains("\"20260101_0000\"") && ss.contains("\"20260102_0000\""),
        "{ss}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&wb(&["list", &tree.to_string_lossy(), "--format", "json"]))
            .expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    wb(&["prune", &tree.to_string_lossy(), "--keep", "1"]);
    let (_, ss) = products(&tree);
    assert!(
        !ss.contains("20260101_0000") && ss.contains("20260102_0000"),
        "{ss}"
    );
    assert!(!tree
        .join("images/busybox/1.35/x86_64/default/20260101_0000")
        .exists());

    wb(&[
        "remove",
        &tree.to_string_lossy(),
        "busybox:1.35:x86_64:default",
    ]);
    let (lxc, ss) = products(&tree);
    assert!(lxc.is_empty() && !ss.contains("busybox:1.35"), "{lxc} {ss}");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tree.join("streams/v1/index.json")).expect("index"),
    )
    .expect("json");
    assert_eq!(
        index["index"]["images"]["products"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // no staged or half-written files are left
    let leftovers: Vec<_> = walk(&tree)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// One plain-HTTP request, the raw response.
fn request(port: u16, head: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_server_answers_ranges_etags_and_head_and_nothing_outside_the_tree() {
    if !require_root("the_server_answers_ranges_etags_and_head") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    let a = build(tmp.path(), "20260101_0000");
    wb(&["publish", &tree.to_string_lossy(), &a.to_string_lossy()]);
    std::os::unix::fs::symlink("/etc/passwd", tree.join("passwd")).expect("symlink");
    let mut child = Killed(
        Command::new(BIN)
            .args(["serve", &tree.to_string_lossy(), "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("serve"),
    );
    let first = BufReader::new(child.0.stdout.take().expect("stdout"))
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let port: u16 = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let index = "/meta/1.0/index-system";
    let full = request(port, &format!("GET {index} HTTP/1.1"));
    assert!(
        full.starts_with("HTTP/1.1 200 OK") && full.contains("Content-Type: text/plain"),
        "{full}"
    );
    let etag = full
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("etag")
        .to_string();
    let body = full
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let part = request(port, &format!("GET {index} HTTP/1.1\r\nRange: bytes=0-6"));
    assert!(
        part.starts_with("HTTP/1.1 206")
            && part.contains(&format!("Content-Range: bytes 0-6/{}", body.len())),
        "{part}"
    );
    assert!(part.ends_with(&body[..7]), "{part}");
    let cached = request(
        port,
        &format!("GET {index} HTTP/1.1\r\nIf-None-Match: {etag}"),
    );
    assert!(cached.starts_with("HTTP/1.1 304"), "{cached}");
    let head = request(port, &format!("HEAD {index} HTTP/1.1"));
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let bad = request(port, &format!("GET {index} HTTP/1.1\r\nRange: bytes=9999-"));
    assert!(bad.starts_with("HTTP/1.1 416"), "{bad}");
    for outside in [
        "/passwd",
        "/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/meta/1.0/.index-system.staged",
    ] {
        assert!(
            request(port, &format!("GET {outside} HTTP/1.1")).starts_with("HTTP/1.1 404"),
            "{outside}"
        );
    }
    assert!(request(port, "DELETE /meta/1.0/index-system HTTP/1.1").starts_with("HTTP/1.1 405"));
    let json = request(port, "GET /streams/v1/index.json HTTP/1.1");
    assert!(json.contains("Content-Type: application/json"), "{json}");
}

/// The server process, killed when the test ends (also on a failed assertion).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
