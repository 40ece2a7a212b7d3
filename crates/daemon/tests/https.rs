//! warrend over the network, driven by the real incus client: `core.https_address` set (and bad
//! addresses refused), a client trusted through `incus config trust add`'s token (spent once
//! used), then launching, exec, file transfer and deletion on the remote over HTTPS; an untrusted
//! or removed client refused.

use std::process::{Command, Output};
use warren_testutil::require_root;

mod common;
use common::*;

/// The incus client with a client config of its own (`name`), not warrend's unix socket.
fn client(w: &Warrend, name: &str, args: &[&str]) -> Output {
    Command::new("incus")
        .args(args)
        .env("INCUS_CONF", w.dir.path().join(name))
        .env_remove("INCUS_SOCKET")
        .output()
        .expect("incus")
}

fn client_ok(w: &Warrend, name: &str, args: &[&str]) -> String {
    let o = client(w, name, args);
    assert!(
        o.status.success(),
        "incus {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_incus_client_drives_warrend_over_https_once_trusted() {
    if !require_root("the_incus_client_drives_warrend_over_https_once_trusted") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    // bad server config changes nothing
    for (bad, says) in [
        ("core.https_address=127.0.0.1:99999", "core.https_address"),
        ("core.nosuch=1", "Unknown configuration key: core.nosuch"),
    ] {
        let (k, v) = bad.split_once('=').expect("k=v");
        let o = w.incus(&["config", "set", k, v]);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{bad}: {}",
            stderr(&o)
        );
    }
    // a token needs the listener
    let early = w.incus(&["config", "trust", "add", "laptop"]);
    assert!(
        stderr(&early).contains("core.https_address"),
        "{}",
        stderr(&early)
    );
    let port = free_port();
    w.ok(&[
        "config",
        "set",
        "core.https_address",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(
        w.ok(&["config", "get", "core.https_address"]).trim(),
        format!("127.0.0.1:{port}")
    );
    // a bad token: refused, nothing trusted
    let forged = "eyJjbGllbnRfbmFtZSI6ImZvcmdlZCIsImZpbmdlcnByaW50IjoiIiwiYWRkcmVzc2VzIjpbXSwic2VjcmV0IjoiMDAiLCJleHBpcmVzX2F0IjoiMDAwMS0wMS0wMVQwMDowMDowMFoifQ==";
    let url = format!("https://127.0.0.1:{port}");
    let o = client(
        &w,
        "c0",
        &[
            "remote",
            "add",
            "w2",
            &url,
            "--accept-certificate",
            "--token",
            forged,
        ],
    );
    assert!(!o.status.success(), "a forged token was taken");
    let o = client(&w, "c0", &["list", "w2:"]);
    assert!(!o.status.success());
    assert!(w
        .ok(&["config", "trust", "list", "-f", "csv"])
        .trim()
        .is_empty());
    // the token: the client trusted under its name; spent once used
    let token = w.ok(&["config", "trust", "add", "laptop"]);
    let token = token.lines().last().expect("token").trim().to_string();
    assert!(w
        .ok(&["config", "trust", "list-tokens", "-f", "csv"])
        .contains("laptop"));
    client_ok(&w, "c1", &["remote", "add", "w2", &token]);
    let trusted = w.ok(&["config", "trust", "list", "-f", "csv"]);
    assert!(trusted.starts_with("laptop,client,"), "{trusted}");
    assert!(!w
        .ok(&["config", "trust", "list-tokens", "-f", "csv"])
        .contains("laptop"));
    let again = client(&w, "c9", &["remote", "add", "w2", &token]);
    assert!(!again.status.success(), "a spent token was taken again");
    // the whole workflow over HTTPS
    client_ok(&w, "c1", &["launch", "w2:bb", "w2:h1"]);
    assert_eq!(
        client_ok(&w, "c1", &["exec", "w2:h1", "--", "cat", "/etc/hostname"]).trim(),
        "h1"
    );
    let rc = client(&w, "c1", &["exec", "w2:h1", "--", "sh", "-c", "exit 3"]);
    assert_eq!(rc.status.code(), Some(3));
    let local = w.dir.path().join("pushed");
    std::fs::write(&local, "over https\n").expect("write");
    client_ok(
        &w,
        "c1",
        &[
            "file",
            "push",
            &local.to_string_lossy(),
            "w2:h1/root/pushed",
        ],
    );
    assert_eq!(
        client_ok(&w, "c1", &["file", "pull", "w2:h1/root/pushed", "-"]),
        "over https\n"
    );
    assert!(client_ok(&w, "c1", &["list", "w2:", "-f", "csv", "-c", "ns"]).contains("h1,RUNNING"));
    client_ok(&w, "c1", &["delete", "-f", "w2:h1"]);
    // removed from the trust store: refused again
    let fp = trusted
        .split(',')
        .nth(3)
        .expect("fingerprint")
        .trim()
        .to_string();
    w.ok(&["config", "trust", "remove", &fp]);
    let o = client(&w, "c1", &["list", "w2:"]);
    assert!(
        !o.status.success() && stderr(&o).contains("not authorized"),
        "{}",
        stderr(&o)
    );
    // no address: no listener
    w.ok(&["config", "unset", "core.https_address"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
