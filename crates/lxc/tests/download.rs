//! Images end to end: a busybox image built by warren-build, published into a signed tree, served
//! on 127.0.0.1, and a container made from it by `warren-lxc create -t download` (and by real LXC's
//! lxc-download), started and attached; a second create from the cache with the server gone; and
//! each kind of bad server: bad signature, truncated file, index pointing outside the tree, signed
//! tarballs with `..`, absolute paths and links out of the rootfs. None leaves a container or a
//! cache entry behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use warren_testutil::{require_root, unique_name, ImageServer, Lxc, PrivateIncusd};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");
const BUILD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/debug/warren-build"
);
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/busybox.yaml");

fn publish(dir: &Path, serial: &str) -> PathBuf {
    ImageServer::publish(BUILD, EXAMPLE, dir, serial)
}

fn serve(tree: &Path) -> ImageServer {
    ImageServer::serve(BUILD, tree)
}

fn create(
    lxc: &Lxc,
    name: &str,
    server: &ImageServer,
    tree: &Path,
    dir: &Path,
    extra: &[&str],
) -> Output {
    create_with(lxc, name, server, tree, dir, extra, "")
}

/// `create`, with `config` lines added to the container's config.
fn create_with(
    lxc: &Lxc,
    name: &str,
    server: &ImageServer,
    tree: &Path,
    dir: &Path,
    extra: &[&str],
    config: &str,
) -> Output {
    let conf = dir.join("net.conf");
    std::fs::write(&conf, format!("lxc.net.0.type = empty\n{config}")).expect("conf");
    let mut c = lxc.cmd("create");
    c.args(["-n", name, "-f"]).arg(&conf).args([
        "-t", "download", "--", "-d", "busybox", "-r", "1.35", "-a", "x86_64",
    ]);
    c.args(["--server", &format!("127.0.0.1:{}", server.port)]);
    c.arg("--keyfile")
        .arg(tree.join("keys/signing.asc"))
        .arg("--server-cert")
        .arg(&server.cert);
    c.args(extra);
    c.env("WARREN_LXC_CACHE", dir.join("cache"))
        .env("WARREN_DOWNLOAD_TRUST_DIR", dir.join("trust"));
    c.output().expect("create")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_published_image_is_downloaded_verified_started_and_cached() {
    if !require_root("a_published_image_is_downloaded_verified_started_and_cached") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    for f in [
        "meta/1.0/index-system",
        "meta/1.0/index-system.asc",
        "streams/v1/index.json",
        "streams/v1/images.json",
        "keys/signing.asc",
    ] {
        assert!(tree.join(f).is_file(), "{f}");
    }
    let images = std::fs::read_to_string(tree.join("streams/v1/images.json")).expect("images.json");
    assert!(
        images.contains("\"busybox:1.35:x86_64:default\"")
            && images.contains("combined_squashfs_sha256"),
        "{images}"
    );
    let server = serve(&tree);
    let lxc = Lxc::new(BIN);
    let name = unique_name("dl");
    let r = create(&lxc, &name, &server, &tree, tmp.path(), &[]);
    assert!(r.status.success(), "{}", text(&r));
    lxc.ok("start", &["-n", &name]);
    let out = lxc.ok("attach", &["-n", &name, "--", "cat", "/etc/hostname"]);
    assert_eq!(out.trim(), name);
    let _ = lxc.run("stop", &["-n", &name, "-k"]);

    // --list
    let mut c = lxc.cmd("create");
    c.args([
        "-n",
        "listing",
        "-t",
        "download",
        "--",
        "--list",
        "--server",
        &format!("127.0.0.1:{}", server.port),
    ])
    .env("WARREN_DOWNLOAD_TRUST_DIR", tmp.path().join("trust"));
    let listed = text(&c.output().expect("list"));
    assert!(
        listed.contains("busybox\t1.35\tx86_64\tdefault\t20260101_0000"),
        "{listed}"
    );

    // the server gone: the cache is enough (keys and the pinned certificate were kept)
    let port = server.port;
    drop(server);
    let second = unique_name("dc");
    let mut c = lxc.cmd("create");
    c.args([
        "-n",
        &second,
        "-t",
        "download",
        "--",
        "-d",
        "busybox",
        "-r",
        "1.35",
        "-a",
        "x86_64",
        "--server",
        &format!("127.0.0.1:{port}"),
    ])
    .env("WARREN_LXC_CACHE", tmp.path().join("cache"))
    .env("WARREN_DOWNLOAD_TRUST_DIR", tmp.path().join("trust"));
    let r = c.output().expect("create");
    assert!(
        r.status.success() && text(&r).contains("Using image from local cache"),
        "{}",
        text(&r)
    );
}

/// A create that must fail with `needle`, leaving no container and no cache entry.
fn assert_refused(tree: &Path, dir: &Path, needle: &str) {
    assert_refused_with(tree, dir, needle, "")
}

fn assert_refused_with(tree: &Path, dir: &Path, needle: &str, config: &str) {
    let server = serve(tree);
    let lxc = Lxc::new(BIN);
    let name = unique_name("bad");
    let r = create_with(&lxc, &name, &server, tree, dir, &[], config);
    let t = text(&r);
    assert!(!r.status.success(), "the create succeeded:\n{t}");
    assert!(t.contains(needle), "expected \"{needle}\" in:\n{t}");
    assert!(
        !lxc.lxcpath().join(&name).exists(),
        "a partial container was left"
    );
    assert!(
        !dir.join("cache/download/busybox/1.35/x86_64/default")
            .exists(),
        "a cache entry was left"
    );
}

fn version_dir(tree: &Path) -> PathBuf {
    tree.join("images/busybox/1.35/x86_64/default/20260101_0000")
}

#[test]
fn a_tampered_rootfs_fails_its_signature() {
    if !require_root("a_tampered_rootfs_fails_its_signature") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    let f = version_dir(&tree).join("rootfs.tar.xz");
    let mut data = std::fs::read(&f).expect("read");
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&f, data).expect("tamper");
    assert_refused(&tree, tmp.path(), "signature does not verify");
}

#[test]
fn a_truncated_file_fails_its_signature() {
    if !require_root("a_truncated_file_fails_its_signature") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    let f = version_dir(&tree).join("meta.tar.xz");
    let data = std::fs::read(&f).expect("read");
    std::fs::write(&f, &data[..data.len() / 2]).expect("truncate");
    assert_refused(
        &tree,
        tmp.path(),
        "meta.tar.xz: the signature does not verify",
    );
}

/// Re-signs a changed file with the tree's own key (a malicious or compromised server).
fn resign(tree: &Path, file: &Path) {
    let home = tree.parent().expect("parent").join(".tree-signing");
    let r = Command::new("gpg")
        .args(["--batch", "--yes", "--homedir"])
        .arg(&home)
        .args(["--armor", "--detach-sign", "--output"])
        .arg(format!("{}.asc", file.display()))
        .arg(file)
        .output()
        .expect("gpg");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn an_index_pointing_outside_the_tree_is_refused() {
    if !require_root("an_index_pointing_outside_the_tree_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    let index = tree.join("meta/1.0/index-system");
    std::fs::write(
        &index,
        "busybox;1.35;x86_64;default;20260101_0000;/images/../../../etc/\n",
    )
    .expect("index");
    resign(&tree, &index);
    assert_refused(&tree, tmp.path(), "points outside its tree");
}

/// A raw tar entry: name, type byte, link target.
type TarEntry<'a> = (&'a str, u8, &'a str);

/// A signed rootfs.tar.xz made of `entries` (raw tar headers: name, type, link target).
fn signed_evil_rootfs(tree: &Path, entries: &[TarEntry]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_mode(if *kind == b'5' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(if *kind == b'0' { 4 } else { 0 });
        h.set_cksum();
        let data: &[u8] = if *kind == b'0' { b"evil" } else { b"" };
        b.append(&h, data).expect("append");
    }
    let tar = b.into_inner().expect("tar");
    let f = version_dir(tree).join("rootfs.tar.xz");
    let mut xz = Command::new("xz")
        .args(["-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("xz");
    std::io::Write::write_all(&mut xz.stdin.take().expect("stdin"), &tar).expect("write");
    let out = xz.wait_with_output().expect("xz");
    std::fs::write(&f, out.stdout).expect("write rootfs");
    resign(tree, &f);
    // the index names a new build, so no earlier cache is reused
}

#[test]
fn signed_tarballs_with_dotdot_absolute_paths_or_escaping_links_are_refused() {
    if !require_root("signed_tarballs_with_dotdot_absolute_paths_or_escaping_links_are_refused") {
        return;
    }
    let cases: [(&[TarEntry], &str); 4] = [
        (
            &[("./", b'5', ""), ("./../escape", b'0', "")],
            "contains \"..\"",
        ),
        (&[("/etc/evil", b'0', "")], "absolute path"),
        (
            &[("./", b'5', ""), ("./pw", b'1', "../../etc/passwd")],
            "..",
        ),
        (
            &[
                ("./", b'5', ""),
                ("./etc", b'2', "/etc"),
                ("./etc/evil", b'0', ""),
            ],
            "symlink",
        ),
    ];
    for (entries, needle) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = publish(tmp.path(), "20260101_0000");
        signed_evil_rootfs(&tree, entries);
        assert_refused(&tree, tmp.path(), needle);
        assert!(!Path::new("/etc/evil").exists() && !Path::new("/escape").exists());
    }
}

#[test]
fn real_lxc_downloads_from_our_server() {
    if !require_root("real_lxc_downloads_from_our_server") {
        return;
    }
    if !warren_testutil::require_installed(
        "/usr/share/lxc/templates/lxc-download",
        "LXC",
        "apt-get install lxc",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    let server = serve(&tree);
    // LXC 5's lxc-download fetches with wget over https and checks no signature: wget is told to
    // trust our certificate through a wgetrc of its own (README, "Image servers")
    let wgetrc = tmp.path().join("wgetrc");
    std::fs::write(
        &wgetrc,
        format!("ca_certificate = {}\n", server.cert.display()),
    )
    .expect("wgetrc");
    let lxcpath = tmp.path().join("lxc");
    std::fs::create_dir_all(&lxcpath).expect("lxcpath");
    let conf = tmp.path().join("net.conf");
    std::fs::write(&conf, "lxc.net.0.type = empty\n").expect("conf");
    let name = unique_name("rd");
    let r = Command::new("lxc-create")
        .arg("-P")
        .arg(&lxcpath)
        .args(["-n", &name, "-f"])
        .arg(&conf)
        .args([
            "-t", "download", "--", "-d", "busybox", "-r", "1.35", "-a", "x86_64", "--server",
        ])
        .arg(format!("127.0.0.1:{}", server.port))
        .env("WGETRC", &wgetrc)
        .env("XDG_CACHE_HOME", tmp.path().join("xdg"))
        .output()
        .expect("lxc-create");
    let hostname = std::fs::read_to_string(lxcpath.join(&name).join("rootfs/etc/hostname"))
        .unwrap_or_default();
    let _ = Command::new("lxc-destroy")
        .arg("-P")
        .arg(&lxcpath)
        .args(["-n", &name])
        .output();
    let _ = std::fs::remove_dir_all("/var/cache/lxc/download/busybox/1.35/x86_64/default");
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(hostname.trim(), name);
}

#[test]
fn a_device_node_in_an_unprivileged_containers_image_is_refused() {
    if !require_root("a_device_node_in_an_unprivileged_containers_image_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    // a character device (1,3: /dev/null's numbers) outside /dev
    signed_evil_rootfs(
        &tree,
        &[
            ("./", b'5', ""),
            ("./bin", b'5', ""),
            ("./bin/null", b'3', ""),
        ],
    );
    assert_refused_with(
        &tree,
        tmp.path(),
        "a device node outside /dev in an image for an unprivileged container",
        "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n",
    );
}

#[test]
fn the_real_incus_launches_from_our_server() {
    if !require_root("the_real_incus_launches_from_our_server") {
        return;
    }
    if !warren_testutil::require_installed(
        "/usr/libexec/incus/incusd",
        "Incus",
        "apt-get install -t bookworm-backports incus",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = publish(tmp.path(), "20260101_0000");
    let server = serve(&tree);
    let incusd = PrivateIncusd::up();
    let remote = unique_name("wr");
    let instance = unique_name("wi");
    incusd.ok(&[
        "remote",
        "add",
        &remote,
        &format!("https://127.0.0.1:{}", server.port),
        "--protocol=simplestreams",
    ]);
    // the server's certificate where the incus client pins it (README, "Image servers")
    let certs = incusd.conf().join("servercerts");
    std::fs::create_dir_all(&certs).expect("servercerts");
    std::fs::copy(&server.cert, certs.join(format!("{remote}.crt"))).expect("pin the certificate");
    let list = incusd.ok(&["image", "list", &format!("{remote}:"), "--format", "csv"]);
    assert!(list.contains("busybox/1.35"), "{list}");
    incusd.ok(&["launch", &format!("{remote}:busybox/1.35"), &instance]);
    let hostname = incusd.ok(&["exec", &instance, "--", "cat", "/etc/hostname"]);
    let _ = incusd.client(&["delete", "-f", &instance]).output();
    assert_eq!(
        hostname.trim(),
        instance,
        "Incus rendered the image's hostname template"
    );
}
