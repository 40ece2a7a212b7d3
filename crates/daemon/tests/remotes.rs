//! Images from a simplestreams server through warrend, driven by the real incus client: a
//! `warren-build serve` tree on 127.0.0.1 added as a remote (its self-signed certificate pinned),
//! `launch remote:alias` (cold, then from the cache), `image copy` with an alias, and servers
//! that lie: a wrong certificate, a file whose sha256 doesn't match, an unknown alias. None
//! leaves an image or an instance behind.

use warren_testutil::{require_root, ImageServer};

mod common;
use common::*;

fn add_remote(w: &Warrend, name: &str, server: &ImageServer) {
    let certs = w.dir.path().join("client/servercerts");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(&server.cert, certs.join(format!("{name}.crt"))).expect("cert");
    w.ok(&[
        "remote",
        "add",
        name,
        &format!("https://127.0.0.1:{}", server.port),
        "--protocol=simplestreams",
    ]);
}

/// A warrend with the example image published on a server of its own, added as remote "ws".
fn with_remote() -> (Warrend, std::path::PathBuf, ImageServer) {
    let w = Warrend::start();
    admin_init(&w);
    let tree = ImageServer::publish(WARREN_BUILD, EXAMPLE, w.dir.path(), "20260101_0000");
    let server = ImageServer::serve(WARREN_BUILD, &tree);
    add_remote(&w, "ws", &server);
    (w, tree, server)
}

#[test]
fn the_incus_client_launches_from_a_simplestreams_remote_through_warrend() {
    if !require_root("the_incus_client_launches_from_a_simplestreams_remote_through_warrend")
        || !have_incus()
    {
        return;
    }
    let (w, _tree, _server) = with_remote();
    assert!(w
        .ok(&["image", "list", "ws:", "-f", "csv"])
        .contains("busybox/1.35"));
    // cold: downloaded, checked, cached; then warm
    w.ok(&["launch", "ws:busybox/1.35", "r1"]);
    assert!(w.ok(&["list", "-f", "csv"]).starts_with("r1,RUNNING,"));
    let images = w.ok(&["image", "list", "-f", "json"]);
    let images: serde_json::Value = serde_json::from_str(&images).expect("json");
    assert_eq!(images.as_array().map(Vec::len), Some(1), "{images}");
    assert_eq!(images[0]["cached"], true, "{images}");
    assert_eq!(images[0]["properties"]["os"], "busybox", "{images}");
    let config = w.ok(&["config", "show", "r1"]);
    assert!(config.contains("image.release: \"1.35\""), "{config}");
    w.ok(&["launch", "ws:busybox/1.35", "r2"]);
    assert_eq!(w.ok(&["image", "list", "-f", "csv"]).lines().count(), 1);
    assert_eq!(w.ok(&["exec", "r2", "--", "hostname"]).trim(), "r2");
    // image copy: by name, with an alias, no longer a mere cache
    w.ok(&[
        "image",
        "copy",
        "ws:busybox/1.35",
        "local:",
        "--alias",
        "bb",
    ]);
    let (_, alias) = w.raw("GET", "/1.0/images/aliases/bb", b"");
    let fp = alias["metadata"]["target"]
        .as_str()
        .expect("target")
        .to_string();
    let (_, image) = w.raw("GET", &format!("/1.0/images/{fp}"), b"");
    assert_eq!(image["metadata"]["cached"], false, "{image}");
    assert_eq!(
        image["metadata"]["update_source"]["protocol"], "simplestreams",
        "{image}"
    );
    w.ok(&["launch", "bb", "r3"]);
    // an unknown alias: a clear error, nothing made
    let bad = w.incus(&["launch", "ws:nosuch/1", "r4"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Image \"nosuch/1\" not found"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    w.ok(&["delete", "-f", "r1", "r2", "r3"]);
    assert!(w.ok(&["list", "-f", "csv"]).trim().is_empty());
}

#[test]
fn a_lying_image_server_leaves_nothing_behind() {
    if !require_root("a_lying_image_server_leaves_nothing_behind") || !have_incus() {
        return;
    }
    let (w, tree, _server) = with_remote();
    // the squashfs changed after publishing: its sha256 no longer matches the index
    let squashfs = walk(&tree)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "squashfs"))
        .expect("a squashfs");
    let mut data = std::fs::read(&squashfs).expect("read");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&squashfs, data).expect("write");
    let bad = w.incus(&["launch", "ws:busybox/1.35", "l1"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("sha256"), "{err}");
    // a certificate that isn't the server's: the launch request carries it, warrend refuses
    let other = w.dir.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    let other_tree = ImageServer::publish(WARREN_BUILD, EXAMPLE, &other, "20260101_0000");
    let other_server = ImageServer::serve(WARREN_BUILD, &other_tree);
    let certs = w.dir.path().join("client/servercerts");
    std::fs::copy(&other_server.cert, certs.join("ws.crt")).expect("cert");
    let bad = w.incus(&["launch", "ws:busybox/1.35", "l2"]);
    assert!(!bad.status.success());
    // nothing left: no instance, no image, no download in progress
    assert!(w.ok(&["list", "-f", "csv"]).trim().is_empty());
    assert!(w.ok(&["image", "list", "-f", "csv"]).trim().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(w.dir.path().join("images"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(other_server);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn images_from_a_server_are_refreshed_to_its_newer_versions() {
    if !require_root("images_from_a_server_are_refreshed_to_its_newer_versions") || !have_incus() {
        return;
    }
    let (w, _tree, _server) = with_remote();
    w.ok(&["launch", "ws:busybox/1.35", "v1"]);
    w.ok(&[
        "image",
        "copy",
        "ws:busybox/1.35",
        "local:",
        "--alias",
        "bb",
        "--auto-update",
    ]);
    let (_, before) = w.raw("GET", "/1.0/images?recursion=1", b"");
    let old = before["metadata"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(before["metadata"][0]["auto_update"], true, "{before}");
    // the same fingerprint on the server: nothing to do
    let (_, op) = w.raw("POST", &format!("/1.0/images/{old}/refresh"), b"");
    let id = op["metadata"]["id"].as_str().expect("op").to_string();
    let (_, done) = w.raw("GET", &format!("/1.0/operations/{id}/wait?timeout=30"), b"");
    assert_eq!(done["metadata"]["metadata"]["refreshed"], false, "{done}");
    // a newer version published: the refresh takes it, the alias follows, v1 keeps running
    ImageServer::publish(WARREN_BUILD, EXAMPLE, w.dir.path(), "20260102_0000");
    let (_, op) = w.raw("POST", &format!("/1.0/images/{old}/refresh"), b"");
    let id = op["metadata"]["id"].as_str().expect("op").to_string();
    let (_, done) = w.raw("GET", &format!("/1.0/operations/{id}/wait?timeout=60"), b"");
    assert_eq!(done["metadata"]["metadata"]["refreshed"], true, "{done}");
    let new = done["metadata"]["metadata"]["fingerprint"]
        .as_str()
        .expect("new fingerprint")
        .to_string();
    assert_ne!(new, old);
    let (_, alias) = w.raw("GET", "/1.0/images/aliases/bb", b"");
    assert_eq!(alias["metadata"]["target"], new.as_str(), "{alias}");
    let (status, _) = w.raw("GET", &format!("/1.0/images/{old}"), b"");
    assert_eq!(status, 404, "the old version went");
    assert_eq!(w.ok(&["exec", "v1", "--", "hostname"]).trim(), "v1");
    w.ok(&["restart", "-f", "v1"]);
    w.ok(&["launch", "bb", "v2"]);
    // an uploaded image has nothing to refresh from
    let (status, _) = w.raw(
        "PATCH",
        &format!("/1.0/images/{new}"),
        br#"{"auto_update": "yes"}"#,
    );
    assert_eq!(status, 400);
    w.ok(&["delete", "-f", "v1", "v2"]);
}
