//! The seed's Incus workflow with warren's own client: `warren admin init` (a managed bridge),
//! the `images:` remote pointed at a test-started image server (its certificate accepted and
//! pinned), `image list images:`, `launch images:...`, `list` with the lease's IPv4, `info`,
//! `config`, `exec` (exit codes, stdin, env, cwd), `file push/pull`, `stop/start/delete`, and
//! errors that say what to do.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use warren_testutil::{require_root, unique_name, wait_until, ImageServer, TestFirewall};

mod common;
use common::*;

struct Cli<'a> {
    w: &'a Warrend,
}

impl Cli<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(WARREN);
        c.args(args)
            .env("WARREN_DIR", self.w.dir.path())
            .env("WARREN_CONF", self.w.dir.path().join("warren-client"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("warren")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "warren {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn err(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "warren {args:?} succeeded");
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        e
    }
}

#[test]
fn the_seeds_workflow_with_warrens_own_client() {
    if !require_root("the_seeds_workflow_with_warrens_own_client") {
        return;
    }
    let w = Warrend::start();
    let cli = Cli { w: &w };
    let net = unique_name("wc");
    let _firewall = TestFirewall::new(&net);
    cli.ok(&["admin", "init", "--minimal", "--network", &net]);
    let tree = ImageServer::publish(WARREN_BUILD, EXAMPLE, w.dir.path(), "20260101_0000");
    let server = ImageServer::serve(WARREN_BUILD, &tree);
    let url = format!("https://127.0.0.1:{}", server.port);
    // a certificate refused at the prompt changes nothing; accepted, it is pinned
    let mut refuse = cli
        .cmd(&["remote", "set-url", "images", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren");
    refuse
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"n\n")
        .expect("answer");
    let o = refuse.wait_with_output().expect("wait");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Certificate fingerprint: "));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NACKed"));
    cli.ok(&["remote", "set-url", "images", &url, "--accept-certificate"]);
    let remotes = cli.ok(&["remote", "list", "-f", "csv"]);
    assert!(
        remotes.contains(&format!("images,{url},simplestreams")),
        "{remotes}"
    );
    assert!(cli
        .ok(&["image", "list", "images:", "-f", "csv"])
        .contains("busybox/1.35"));
    // launch from the image server, on the managed bridge
    let out = cli.ok(&["launch", "images:busybox/1.35", "c1"]);
    assert!(out.contains("Launching c1"), "{out}");
    let mut ipv4 = String::new();
    assert!(
        wait_until(30, || {
            ipv4 = cli.ok(&["list", "c1", "-c", "4", "-f", "csv"]);
            ipv4.contains("(eth0)")
        }),
        "no lease: {}",
        cli.ok(&["list"])
    );
    let table = cli.ok(&["list"]);
    assert!(
        table.contains("| NAME |") && table.contains("| c1   | RUNNING |"),
        "{table}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["list", "-f", "json"])).expect("json");
    assert_eq!(listed[0]["name"], "c1");
    assert!(cli
        .ok(&["list", "-f", "yaml"])
        .contains("- architecture: x86_64"));
    let info = cli.ok(&["info", "c1"]);
    assert!(
        info.contains("Status: RUNNING") && info.contains("Processes: "),
        "{info}"
    );
    assert!(cli
        .ok(&["config", "show", "c1"])
        .contains("image.os: busybox"));
    cli.ok(&["config", "set", "c1", "user.note=hello"]);
    assert_eq!(
        cli.ok(&["config", "get", "c1", "user.note"]).trim(),
        "hello"
    );
    // exec: exit codes, separate streams, stdin, environment and directory
    let o = cli.run(&[
        "exec",
        "c1",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let mut child = cli
        .cmd(&["exec", "c1", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through stdin\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through stdin\n");
    assert_eq!(
        cli.ok(&[
            "exec",
            "c1",
            "--env",
            "A=b",
            "--cwd",
            "/tmp",
            "--",
            "sh",
            "-c",
            "echo $A; pwd"
        ]),
        "b\n/tmp\n"
    );
    // files both ways, owned by the container's root
    let local = w.dir.path().join("note.txt");
    std::fs::write(&local, "pushed\n").expect("write");
    cli.ok(&[
        "file",
        "push",
        &local.to_string_lossy(),
        "c1/root/note.txt",
        "--mode",
        "0640",
    ]);
    assert!(cli
        .ok(&["exec", "c1", "--", "ls", "-ln", "/root/note.txt"])
        .starts_with("-rw-r-----    1 0        0 "));
    assert_eq!(
        cli.ok(&["file", "pull", "c1/root/note.txt", "-"]),
        "pushed\n"
    );
    // edits in $EDITOR: a file (owner and mode kept), the config (applied)
    let o = cli
        .cmd(&["file", "edit", "c1/root/note.txt"])
        .env("EDITOR", "sed -i s/pushed/edited/")
        .output()
        .expect("file edit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        cli.ok(&["file", "pull", "c1/root/note.txt", "-"]),
        "edited\n"
    );
    assert!(cli
        .ok(&["exec", "c1", "--", "ls", "-ln", "/root/note.txt"])
        .starts_with("-rw-r-----    1 0        0 "));
    let o = cli
        .cmd(&["config", "edit", "c1"])
        .env("EDITOR", "sed -i s/hello/edited/")
        .output()
        .expect("config edit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        cli.ok(&["config", "get", "c1", "user.note"]).trim(),
        "edited"
    );
    let bad = cli
        .cmd(&["config", "edit", "c1"])
        .env("EDITOR", "sed -i s/user.note/bogus.key/")
        .output()
        .expect("config edit");
    assert!(!bad.status.success());
    assert_eq!(
        cli.ok(&["config", "get", "c1", "user.note"]).trim(),
        "edited"
    );
    cli.ok(&["file", "delete", "c1/root/note.txt"]);
    // stop, start, delete
    cli.ok(&["stop", "c1", "--force"]);
    assert!(cli
        .ok(&["list", "-f", "csv", "-c", "ns"])
        .contains("c1,STOPPED"));
    cli.ok(&["start", "c1"]);
    let running = cli.err(&["delete", "c1"]);
    assert!(running.contains("--force"), "{running}");
    cli.ok(&["delete", "-f", "c1"]);
    assert!(cli.ok(&["list", "-f", "csv"]).trim().is_empty());
    // image export writes the files warrend has
    let out = w.dir.path().join("exported");
    let listed = cli.ok(&["image", "list", "-f", "csv"]);
    let fp = listed.split(',').nth(1).expect("fingerprint").to_string();
    cli.ok(&["image", "export", &fp, &out.to_string_lossy()]);
    assert!(std::fs::read_dir(&out).expect("exported").count() >= 1);
    assert!(cli.ok(&["completion", "bash"]).contains("warren"));
    // errors that say what to do
    assert!(cli
        .err(&["launch", "images:nosuch/1", "x"])
        .contains("not found"));
    assert!(cli
        .err(&["exec", "nosuch", "--", "true"])
        .contains("Instance not found"));
    assert!(cli.err(&["list", "-c", "Z"]).contains("Unknown column"));
    assert!(cli
        .err(&["remote", "add", "plain", "http://127.0.0.1:1"])
        .contains("https://"));
    assert!(cli
        .err(&["remote", "add", "images", &url, "--accept-certificate"])
        .contains("exists"));
    assert!(cli
        .err(&["launch", "nowhere:busybox", "x"])
        .contains("remote list"));
    // the default profile's eth0 stands on the bridge: it stays
    assert!(cli
        .err(&["network", "delete", &net])
        .contains("/1.0/profiles/default"));
}

#[test]
fn snapshots_profiles_storage_console_and_events_with_warren() {
    if !require_root("snapshots_profiles_storage_console_and_events_with_warren") {
        return;
    }
    let w = Warrend::start();
    let cli = Cli { w: &w };
    cli.ok(&["admin", "init", "--minimal", "--network", "none"]);
    let image = unified_image(w.dir.path());
    let out = cli.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    assert!(
        out.starts_with("Image imported with fingerprint: "),
        "{out}"
    );
    assert!(cli
        .ok(&["image", "info", "bb"])
        .contains("Aliases:\n    - bb"));
    // events as they happen
    let mut monitor = cli
        .cmd(&["monitor", "--type", "lifecycle", "-f", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("monitor");
    // its lines, as they come (events arrive after the commands that caused them return)
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (seen, out) = (seen.clone(), monitor.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut s) = seen.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    cli.ok(&["launch", "bb", "k1"]);
    // snapshots
    cli.ok(&["exec", "k1", "--", "sh", "-c", "echo before > /root/f"]);
    cli.ok(&["snapshot", "create", "k1", "s0"]);
    assert!(cli
        .ok(&["snapshot", "list", "k1", "-f", "csv"])
        .starts_with("s0,"));
    cli.ok(&["exec", "k1", "--", "sh", "-c", "echo after > /root/f"]);
    cli.ok(&["stop", "-f", "k1"]);
    cli.ok(&["snapshot", "restore", "k1", "s0"]);
    cli.ok(&["start", "k1"]);
    assert_eq!(cli.ok(&["exec", "k1", "--", "cat", "/root/f"]), "before\n");
    cli.ok(&["snapshot", "delete", "k1", "s0"]);
    // profiles
    cli.ok(&["profile", "create", "small"]);
    cli.ok(&["profile", "set", "small", "limits.processes=100"]);
    cli.ok(&["profile", "add", "k1", "small"]);
    assert!(cli
        .ok(&["config", "show", "k1", "--expanded"])
        .contains("limits.processes: \"100\""));
    assert!(cli.err(&["profile", "delete", "small"]).contains("in use"));
    cli.ok(&["profile", "remove", "k1", "small"]);
    cli.ok(&["profile", "delete", "small"]);
    let profiles = cli.ok(&["profile", "list", "-f", "csv"]);
    assert!(
        profiles.starts_with("default,Default warren profile,1"),
        "{profiles}"
    );
    // storage: a volume attached, used, detached, deleted
    assert!(cli
        .ok(&["storage", "list", "-f", "csv"])
        .starts_with("default,dir,"));
    cli.ok(&["storage", "volume", "create", "default", "v1"]);
    cli.ok(&[
        "storage", "volume", "attach", "default", "v1", "k1", "/data",
    ]);
    cli.ok(&["restart", "-f", "k1"]);
    cli.ok(&["exec", "k1", "--", "sh", "-c", "echo kept > /data/x"]);
    assert!(cli
        .ok(&["storage", "volume", "list", "default", "-f", "csv"])
        .contains("custom,v1,,filesystem,1"));
    cli.ok(&["storage", "volume", "detach", "default", "v1", "k1"]);
    cli.ok(&["storage", "volume", "delete", "default", "v1"]);
    // the console's log
    cli.ok(&[
        "exec",
        "k1",
        "--",
        "sh",
        "-c",
        "echo on-the-console > /dev/console",
    ]);
    assert!(cli
        .ok(&["console", "k1", "--show-log"])
        .contains("on-the-console"));
    cli.ok(&["delete", "-f", "k1"]);
    assert!(wait_until(10, || seen
        .lock()
        .is_ok_and(|s| s.contains("instance-deleted"))));
    let _ = monitor.kill();
    let _ = monitor.wait();
    let _ = reader.join();
    let events = seen.lock().map(|s| s.clone()).unwrap_or_default();
    for action in [
        "instance-created",
        "instance-started",
        "instance-snapshot-created",
        "instance-deleted",
    ] {
        assert!(events.contains(action), "{action} in {events}");
    }
    // the operation events told the unpacking's progress (incus shows it too)
    let ops = cli
        .cmd(&["monitor", "--type", "operation", "-f", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("monitor");
    std::thread::sleep(std::time::Duration::from_millis(300));
    cli.ok(&["launch", "bb", "k2"]);
    cli.ok(&["delete", "-f", "k2"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut ops = ops;
    let _ = ops.kill();
    let out = ops.wait_with_output().expect("monitor");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("Unpacking image: 100%"), "{out}");
    assert!(
        !events.contains("\"type\":\"operation\""),
        "filtered by type"
    );
}

/// Another warrend as a remote of warren's client: the server listens (`config set
/// core.https_address`), makes a trust token (`config trust add`), the client adds it with the
/// token, lists its images and launches from it; a spent or made-up token says so in one line.
#[test]
fn another_warrend_is_a_remote_of_warrens_client() {
    if !require_root("another_warrend_is_a_remote_of_warrens_client") {
        return;
    }
    let source = Warrend::start();
    let src = Cli { w: &source };
    src.ok(&["admin", "init", "--minimal", "--network", "none"]);
    let image = unified_image(source.dir.path());
    src.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let port = free_port();
    src.ok(&[
        "config",
        "set",
        "core.https_address",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(
        src.ok(&["config", "get", "core.https_address"]).trim(),
        format!("127.0.0.1:{port}")
    );
    assert!(src.ok(&["config", "show"]).contains("core.https_address"));
    let token = src.ok(&["config", "trust", "add", "laptop"]);
    let token = token.lines().last().expect("token").trim().to_string();
    assert!(src
        .ok(&["config", "trust", "list-tokens"])
        .contains("laptop"));
    let target = Warrend::start();
    let dst = Cli { w: &target };
    dst.ok(&["admin", "init", "--minimal", "--network", "none"]);
    let e = dst.err(&["remote", "add", "src", "not-a-token"]);
    assert!(e.contains("Invalid trust token"), "{e}");
    dst.ok(&["remote", "add", "src", &token]);
    assert!(dst
        .ok(&["remote", "list", "-f", "csv"])
        .contains("src,https://127.0.0.1:"));
    assert!(src
        .ok(&["config", "trust", "list", "-f", "csv"])
        .starts_with("laptop,client,"));
    let e = dst.err(&["remote", "add", "again", &token]);
    assert!(e.contains("refused the token"), "{e}");
    assert!(dst
        .ok(&["image", "list", "src:", "-f", "csv"])
        .contains("bb"));
    dst.ok(&["launch", "src:bb", "t1"]);
    assert_eq!(
        dst.ok(&["exec", "t1", "--", "cat", "/etc/hostname"]).trim(),
        "t1"
    );
    dst.ok(&["delete", "-f", "t1"]);
    // an unused token can be revoked
    src.ok(&["config", "trust", "add", "spare"]);
    src.ok(&["config", "trust", "revoke-token", "spare"]);
    assert!(!src
        .ok(&["config", "trust", "list-tokens"])
        .contains("spare"));
    // or cancelled as the operation it is
    src.ok(&["config", "trust", "add", "spare2"]);
    let ops = src.ok(&["operation", "list", "-f", "csv"]);
    let id = ops
        .lines()
        .find(|l| l.contains(",TOKEN,") && l.contains("RUNNING"))
        .and_then(|l| l.split(',').next())
        .unwrap_or_else(|| panic!("a running token in {ops}"))
        .to_string();
    assert!(src.ok(&["operation", "show", &id]).contains("spare2"));
    src.ok(&["operation", "delete", &id]);
    assert!(!src
        .ok(&["config", "trust", "list-tokens"])
        .contains("spare2"));
    // restricted tokens: to projects that exist (what the incus client does with one is
    // tests/https.rs's); the list says who is restricted
    let listed = src.ok(&["config", "trust", "list", "-f", "csv"]);
    assert!(listed.trim_end().ends_with(",NO,"), "{listed}");
    src.ok(&["project", "create", "pr"]);
    src.ok(&[
        "config",
        "trust",
        "add",
        "kiosk",
        "--restricted",
        "--projects",
        "pr",
    ]);
    let e = src.err(&[
        "config",
        "trust",
        "add",
        "kiosk2",
        "--restricted",
        "--projects",
        "nosuch",
    ]);
    assert!(e.contains("nosuch"), "{e}");
    src.ok(&["config", "trust", "revoke-token", "kiosk"]);
}
