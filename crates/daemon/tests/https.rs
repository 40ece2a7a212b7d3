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

/// `incus config trust edit FP` on warrend's socket, with `yaml` as what the editor leaves.
fn trust_edit(w: &Warrend, fp: &str, yaml: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' \"$0\" | incus config trust edit {fp}"))
        .arg(yaml)
        .env("INCUS_CONF", w.dir.path().join("client"))
        .env("INCUS_SOCKET", w.socket())
        .output()
        .expect("incus config trust edit");
    assert!(o.status.success(), "trust edit: {}", stderr(&o));
}

/// warrend listening on HTTPS on a free port of 127.0.0.1 (`config set core.https_address`).
fn listen(w: &Warrend) -> u16 {
    let port = free_port();
    w.ok(&[
        "config",
        "set",
        "core.https_address",
        &format!("127.0.0.1:{port}"),
    ]);
    port
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
    let port = listen(&w);
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
    // a large file both ways on one connection (SFTP): data and acknowledgements cross
    let big = w.dir.path().join("big");
    let data: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).expect("write");
    client_ok(
        &w,
        "c1",
        &["file", "push", &big.to_string_lossy(), "w2:h1/root/big"],
    );
    let back = w.dir.path().join("back");
    client_ok(
        &w,
        "c1",
        &["file", "pull", "w2:h1/root/big", &back.to_string_lossy()],
    );
    assert!(
        std::fs::read(&back).expect("read") == data,
        "the file came back changed"
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
    // a certificate added as a file (`trust add-certificate`), and one that isn't
    let certs = w.dir.path().join("certs");
    let (crt, key) = (certs.join("ci.crt"), certs.join("ci.key"));
    warren_image::server::make_self_signed(&certs, &crt, &key).expect("a certificate");
    w.ok(&[
        "config",
        "trust",
        "add-certificate",
        &crt.to_string_lossy(),
        "--name",
        "ci",
    ]);
    let der = warren_image::fetch::pem_to_der(&std::fs::read_to_string(&crt).expect("read"))
        .expect("der");
    let fp = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&der))
    };
    assert!(w
        .ok(&["config", "trust", "list", "-f", "csv"])
        .contains(&format!("ci,client,,{}", &fp[..12])));
    let dup = w.incus(&[
        "config",
        "trust",
        "add-certificate",
        &crt.to_string_lossy(),
        "--name",
        "ci2",
    ]);
    assert!(!dup.status.success());
    std::fs::write(certs.join("bad.crt"), "not a certificate\n").expect("write");
    let bad = w.incus(&[
        "config",
        "trust",
        "add-certificate",
        &certs.join("bad.crt").to_string_lossy(),
    ]);
    assert!(!bad.status.success());
    // no address: no listener
    w.ok(&["config", "unset", "core.https_address"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// A restricted certificate (`incus config trust add NAME --restricted --projects p1`, then
/// `incus config trust edit`): over HTTPS its client works in p1 only, sees no other project
/// and changes nothing global; lifted, the client reaches everything again.
#[test]
fn a_restricted_certificate_reaches_its_projects_only() {
    if !require_root("a_restricted_certificate_reaches_its_projects_only") || !have_incus() {
        return;
    }
    let w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    w.ok(&[
        "project",
        "create",
        "p1",
        "-c",
        "features.images=false",
        "-c",
        "features.profiles=false",
    ]);
    w.ok(&["project", "create", "p2"]);
    listen(&w);
    // a restricted token names projects that exist
    let bad = w.incus(&[
        "config",
        "trust",
        "add",
        "eve",
        "--restricted",
        "--projects",
        "nosuch",
    ]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("nosuch"),
        "{}",
        stderr(&bad)
    );
    let token = w.ok(&[
        "config",
        "trust",
        "add",
        "alice",
        "--restricted",
        "--projects",
        "p1",
    ]);
    let token = token.lines().last().expect("token").trim().to_string();
    client_ok(&w, "a", &["remote", "add", "w2", &token]);
    let listed = w.ok(&["config", "trust", "list", "-f", "csv", "-c", "nrpf"]);
    assert!(listed.starts_with("alice,yes,p1,"), "{listed}");
    let fp = listed
        .trim()
        .rsplit(',')
        .next()
        .expect("fingerprint")
        .to_string();
    // its project: everything works there
    client_ok(&w, "a", &["launch", "w2:bb", "w2:r1", "--project", "p1"]);
    assert_eq!(
        client_ok(
            &w,
            "a",
            &["exec", "w2:r1", "--project", "p1", "--", "hostname"]
        )
        .trim(),
        "r1"
    );
    assert!(client_ok(
        &w,
        "a",
        &["list", "w2:", "--project", "p1", "-f", "csv", "-c", "n"]
    )
    .contains("r1"));
    // it sees only its project, its own certificate, and pools without their config
    let projects = client_ok(&w, "a", &["project", "list", "w2:", "-f", "csv", "-c", "n"]);
    assert!(
        projects.lines().count() == 1 && projects.starts_with("p1"),
        "{projects}"
    );
    let certs = client_ok(
        &w,
        "a",
        &["config", "trust", "list", "w2:", "-f", "csv", "-c", "n"],
    );
    assert_eq!(certs.trim(), "alice");
    let pool = client_ok(&w, "a", &["storage", "show", "w2:default"]);
    assert!(!pool.contains("source:"), "{pool}");
    // everything else is refused, and changes nothing (the client made p1 its remote's
    // project, the only one it may see, as incus does)
    for args in [
        &["list", "w2:", "--project", "default"][..],
        &["list", "w2:", "--project", "p2"],
        &["list", "w2:", "--all-projects"],
        &["launch", "w2:bb", "w2:r2", "--project", "default"],
        &["project", "create", "w2:p3"],
        &["project", "set", "w2:p1", "limits.instances=9"],
        &["project", "delete", "w2:p2"],
        &["config", "set", "w2:", "core.https_address", "127.0.0.1:1"],
        &["config", "trust", "remove", "w2:", &fp],
        &["storage", "create", "w2:x", "dir"],
    ] {
        let o = client(&w, "a", args);
        assert!(
            !o.status.success() && stderr(&o).contains("restricted"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(w.ok(&["list", "-f", "csv", "-c", "n"]).trim().is_empty());
    assert_eq!(
        w.ok(&["project", "list", "-f", "csv", "-c", "n"])
            .lines()
            .count(),
        3
    );
    assert!(w
        .ok(&["project", "get", "p1", "limits.instances"])
        .trim()
        .is_empty());
    // lifted through `trust edit` (PUT): everything is open to it again
    let shown = w.ok(&["config", "trust", "show", &fp]);
    assert!(shown.contains("restricted: true"), "{shown}");
    let lifted = shown.replace("restricted: true", "restricted: false");
    // a bad edit says what is wrong and changes nothing
    let path = format!("/1.0/certificates/{fp}");
    for (body, says) in [
        (r#"{"restricted": true, "projects": ["nosuch"]}"#, "nosuch"),
        (r#"{"restricted": "yes"}"#, "restricted: true or false"),
        (r#"{"type": "server"}"#, "unknown certificate type"),
    ] {
        let (status, v) = w.raw("PATCH", &path, body.as_bytes());
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v.to_string().contains(says), "{body}: {v}");
    }
    assert!(w
        .ok(&["config", "trust", "show", &fp])
        .contains("restricted: true"));
    trust_edit(&w, &fp, &lifted);
    let listed = client_ok(&w, "a", &["project", "list", "w2:", "-f", "csv", "-c", "n"]);
    assert!(
        listed.contains("default") && listed.contains("p2"),
        "{listed}"
    );
    client_ok(&w, "a", &["delete", "-f", "w2:r1", "--project", "p1"]);
    // a metrics certificate reads the metrics and nothing else
    let metrics = shown
        .replace("restricted: true", "restricted: false")
        .replace("type: client", "type: metrics");
    trust_edit(&w, &fp, &metrics);
    let o = client(&w, "a", &["list", "w2:", "--project", "p1"]);
    assert!(
        !o.status.success() && stderr(&o).contains("metrics"),
        "{}",
        stderr(&o)
    );
    let text = client_ok(&w, "a", &["query", "w2:/1.0/metrics"]);
    assert!(
        text.contains("# HELP") || text.contains("# TYPE") || text.trim().is_empty(),
        "{text}"
    );
}

/// The `incus launch other:image local:` flow: the client gets an image secret from the source
/// server and the target pulls the image over HTTPS with it, untrusted. warrend is the source
/// for another warrend and for the real incusd; a secret opens that one image only, once.
#[test]
fn images_go_from_warrend_to_another_warrend_and_to_incusd() {
    if !require_root("images_go_from_warrend_to_another_warrend_and_to_incusd") || !have_incus() {
        return;
    }
    let source = Warrend::start();
    admin_init(&source);
    let tree = warren_testutil::ImageServer::publish(
        WARREN_BUILD,
        EXAMPLE,
        source.dir.path(),
        "20260101_0000",
    );
    // the split image (metadata tarball and squashfs) of the published tree
    let files: Vec<_> = walk(&tree);
    let pick = |suffix: &str| {
        files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in {files:?}"))
            .to_string_lossy()
            .into_owned()
    };
    source.ok(&[
        "image",
        "import",
        &pick("incus.tar.xz"),
        &pick("rootfs.squashfs"),
        "--alias",
        "bb",
    ]);
    let port = free_port();
    source.ok(&[
        "config",
        "set",
        "core.https_address",
        &format!("127.0.0.1:{port}"),
    ]);
    // a secret opens its image, to nobody trusted, and nothing else
    let fp = source
        .ok(&["image", "list", "-f", "csv", "-c", "f"])
        .trim()
        .to_string();
    let (status, _, body) = source.raw_bytes("POST", &format!("/1.0/images/{fp}/secret"), &[], b"");
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let op: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let secret = op["metadata"]["metadata"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let cert = std::fs::read_to_string(source.dir.path().join("server.crt")).expect("cert");
    let agent = warren_image::fetch::agent("test", warren_image::fetch::pem_to_der(&cert));
    let status = |path: &str| match agent.get(&format!("https://127.0.0.1:{port}{path}")).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{path}: {e}"),
    };
    assert_eq!(status(&format!("/1.0/images/{fp}/export")), 403);
    assert_eq!(status("/1.0/events"), 403);
    // an anonymous client's body is small: a trust token's request, not a flood
    let flood = agent
        .post(&format!("https://127.0.0.1:{port}/1.0/certificates"))
        .send_bytes(&vec![b' '; 200_000]);
    assert!(
        matches!(flood, Err(ureq::Error::Status(413, _))),
        "{flood:?}"
    );
    assert_eq!(
        status(&format!("/1.0/images/{fp}/export?secret=00{secret}")),
        403
    );
    assert_eq!(status(&format!("/1.0/instances?secret={secret}")), 403);
    // only in the project it was made in
    assert_eq!(
        status(&format!("/1.0/images/{fp}?secret={secret}&project=p1")),
        403
    );
    assert_eq!(status(&format!("/1.0/images/{fp}?secret={secret}")), 200);
    assert_eq!(
        status(&format!("/1.0/images/{fp}/export?secret={secret}")),
        200
    );
    assert_eq!(
        status(&format!("/1.0/images/{fp}/export?secret={secret}")),
        403,
        "a secret is spent by its export"
    );
    // the target: another warrend
    let target = Warrend::start();
    admin_init(&target);
    let token = source.ok(&["config", "trust", "add", "target-client"]);
    let token = token.lines().last().expect("token").trim().to_string();
    target.ok(&["remote", "add", "src", &token]);
    target.ok(&["launch", "src:bb", "t1"]);
    assert_eq!(
        target
            .ok(&["exec", "t1", "--", "cat", "/etc/hostname"])
            .trim(),
        "t1"
    );
    assert!(target
        .ok(&["image", "list", "-f", "csv"])
        .contains(&fp[..12]));
    target.ok(&["delete", "-f", "t1"]);
    // pushing an image isn't done; the refusal says how to copy instead
    let push = target.incus(&["image", "copy", &fp, "src:", "--mode", "push"]);
    assert!(
        !push.status.success() && stderr(&push).contains("--mode relay"),
        "{}",
        stderr(&push)
    );
    // a pull with a made-up secret fails, and leaves no instance
    let body = format!(
        r#"{{"name": "t2", "source": {{"type": "image", "mode": "pull", "protocol": "incus",
            "server": "https://127.0.0.1:{port}", "fingerprint": "{fp}", "secret": "bogus",
            "certificate": {}}}}}"#,
        serde_json::Value::String(cert.clone())
    );
    let (status, _, answer) = target.raw_bytes("POST", "/1.0/instances", &[], body.as_bytes());
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let op: serde_json::Value = serde_json::from_slice(&answer).expect("json");
    let id = op["operation"].as_str().expect("operation");
    let (_, _, waited) = target.raw_bytes("GET", &format!("{id}/wait"), &[], b"");
    let waited = String::from_utf8_lossy(&waited);
    assert!(waited.contains("403"), "{waited}");
    assert!(!target.ok(&["list", "-f", "csv"]).contains("t2"));
    // the target: the real incusd
    let incusd = warren_testutil::PrivateIncusd::up();
    let token = source.ok(&["config", "trust", "add", "incusd-client"]);
    let token = token.lines().last().expect("token").trim().to_string();
    incusd.ok(&["remote", "add", "src", &token]);
    incusd.ok(&["launch", "src:bb", "i1"]);
    assert_eq!(
        incusd
            .ok(&["exec", "i1", "--", "cat", "/etc/hostname"])
            .trim(),
        "i1"
    );
    incusd.ok(&["delete", "-f", "i1"]);
}

/// Every file below `dir`.
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
