//! A regular (non-root) user's containers, as the seed describes them: `~/.local/share/lxc`,
//! maps from /etc/subuid through newuidmap, a cgroup delegated to the user. Each test acts as the
//! user `warren-tester` (made by scripts/setup-host.sh) in a private home and cgroup.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use warren_testutil::{
    subid_start, wait_until, RegularUser, TestBridge, UsernetAllowance, TEST_USER,
};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");
const MONITOR: &str = env!("CARGO_BIN_EXE_warren-monitor");
const USER_NIC: &str = env!("CARGO_BIN_EXE_warren-user-nic");

fn user(test: &str) -> Option<RegularUser> {
    RegularUser::new(
        test,
        &[Path::new(BIN), Path::new(MONITOR), Path::new(USER_NIC)],
    )
}

/// The user's default.conf: the id maps /etc/subuid grants, and `net`.
fn default_conf_with(u: &RegularUser, net: &str) {
    let base = subid_start(TEST_USER, "/etc/subuid").expect("subuid");
    let gbase = subid_start(TEST_USER, "/etc/subgid").expect("subgid");
    u.write_default_conf(&format!(
        "lxc.idmap = u 0 {base} 65536\nlxc.idmap = g 0 {gbase} 65536\n{net}"
    ));
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn regular_user_creates_starts_attaches_stops_and_destroys() {
    let Some(u) = user("regular_user_creates_starts_attaches_stops_and_destroys") else {
        return;
    };
    let base = subid_start(TEST_USER, "/etc/subuid").expect("a subuid range for the test user");
    // no ~/.config/lxc/default.conf: the maps come from /etc/subuid and /etc/subgid
    u.ok("create", &["-n", "c1", "-t", "busybox"]);
    let dir = u.lxcpath().join("c1");
    let config = std::fs::read_to_string(dir.join("config")).expect("config in ~/.local/share/lxc");
    assert!(
        config.contains(&format!("lxc.idmap = u 0 {base} 65536")),
        "{config}"
    );
    // made by the container's root: no chown pass, no idmapped mount needed at start
    let root_meta = std::fs::metadata(dir.join("rootfs/bin/busybox")).expect("busybox in rootfs");
    assert_eq!(root_meta.uid(), base);
    assert_eq!(
        std::fs::metadata(dir.join("rootfs")).expect("rootfs").uid(),
        base
    );

    u.ok("start", &["-n", "c1"]);
    let ls = u.ok("ls", &["-f"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("c1 ") && l.contains("RUNNING") && l.contains("true")),
        "{ls}"
    );
    let out = u.ok(
        "attach",
        &[
            "-n",
            "c1",
            "--",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "{out}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", &base.to_string(), "65536"], "{out}");
    // the container's root is the mapped uid on the host: it can't write what that uid can't
    let out = u.run(
        "attach",
        &[
            "-n",
            "c1",
            "--",
            "sh",
            "-c",
            "echo x > /proc/sys/vm/drop_caches",
        ],
    );
    assert!(!out.status.success(), "a host tunable was writable");
    let info = u.ok("info", &["-n", "c1", "-p", "-H"]);
    let pid: u32 = info.trim().parse().expect("init pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("init status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert!(uid_line.contains(&base.to_string()), "{uid_line}");
    // init and the monitor live in the user's delegated cgroup
    let cgroups = u.cgroups();
    assert!(
        cgroups
            .iter()
            .any(|c| c.to_string_lossy().contains("warren.payload.c1")),
        "{cgroups:?}"
    );
    // the cgroup init lives in belongs to the container's root, for systemd to manage
    let inner = cgroups
        .iter()
        .find(|c| c.ends_with(".lxc") && c.to_string_lossy().contains("warren.payload.c1"))
        .expect("inner cgroup");
    assert_eq!(std::fs::metadata(inner).expect("inner").uid(), base);
    // and attached processes still join it
    let cg = u.ok("attach", &["-n", "c1", "--", "cat", "/proc/self/cgroup"]);
    assert!(cg.lines().any(|l| l.ends_with(":/")), "{cg}");

    u.ok("stop", &["-n", "c1"]);
    assert!(u.ok("ls", &["--running"]).trim().is_empty());
    // (the monitor leaves its own cgroup just after answering the stop)
    wait_until(3, || u.cgroups().is_empty());
    assert!(u.cgroups().is_empty(), "{:?}", u.cgroups());
    u.ok("destroy", &["-n", "c1"]);
    assert!(!dir.exists(), "the container directory is left behind");
}

#[test]
fn regular_user_map_outside_subuid_names_the_line_to_add() {
    let Some(u) = user("regular_user_map_outside_subuid_names_the_line_to_add") else {
        return;
    };
    u.write_default_conf("lxc.idmap = u 0 1000000 65536\nlxc.idmap = g 0 1000000 65536\n");
    let out = u.run("create", &["-n", "c2", "-t", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "add the line \"{TEST_USER}:1000000:65536\" to /etc/subuid"
        )),
        "{err}"
    );
    assert!(
        !u.lxcpath().join("c2").exists(),
        "a failed create left files"
    );
}

#[test]
fn regular_user_without_idmap_is_told_containers_must_be_unprivileged() {
    let Some(u) = user("regular_user_without_idmap_is_told_containers_must_be_unprivileged") else {
        return;
    };
    u.write_default_conf("lxc.uts.name = x\n");
    let out = u.run("create", &["-n", "c3", "-t", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("must be unprivileged") && err.contains("default.conf"),
        "{err}"
    );
    assert!(!u.lxcpath().join("c3").exists());
}

#[test]
fn regular_user_without_a_delegated_cgroup_is_told_how_to_get_one() {
    let Some(u) = user("regular_user_without_a_delegated_cgroup_is_told_how_to_get_one") else {
        return;
    };
    u.ok("create", &["-n", "c4", "-t", "busybox"]);
    // from root's cgroup, which the user can't write
    let out = u
        .command(false, "start", &["-n", "c4"])
        .output()
        .expect("start");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no cgroup is delegated") && err.contains("Delegate=yes"),
        "{err}"
    );
    assert!(u.ok("ls", &["--running"]).trim().is_empty());
    u.ok("destroy", &["-n", "c4"]);
}

#[test]
fn regular_user_cannot_reach_root_only_commands() {
    let Some(u) = user("regular_user_cannot_reach_root_only_commands") else {
        return;
    };
    let out = u.run("copy", &["-n", "a", "-N", "b"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("copy needs root"), "{err}");
}

#[test]
fn regular_user_executes_a_command_in_a_fresh_container() {
    let Some(u) = user("regular_user_executes_a_command_in_a_fresh_container") else {
        return;
    };
    u.ok("create", &["-n", "c5", "-t", "busybox"]);
    let out = u.run(
        "execute",
        &[
            "-n",
            "c5",
            "--",
            "sh",
            "-c",
            "echo pid=$$ uid=$(id -u); exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pid=2 uid=0");
    u.ok("destroy", &["-n", "c5"]);
}

#[test]
fn regular_user_gets_a_veth_through_lxc_usernet() {
    let Some(u) = user("regular_user_gets_a_veth_through_lxc_usernet") else {
        return;
    };
    let br = TestBridge::new();
    let _allow = UsernetAllowance::new(&format!("{TEST_USER} veth {} 1", br.name));
    let addr = br.host(30);
    default_conf_with(
        &u,
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.flags = up\nlxc.net.0.ipv4.address = {addr}\n",
            br.name
        ),
    );
    u.ok("create", &["-n", "n1", "-t", "busybox"]);
    u.ok("start", &["-n", "n1"]);
    assert_eq!(br.ports().len(), 1, "{:?}", br.ports());
    let out = u.ok(
        "attach",
        &[
            "-n",
            "n1",
            "--",
            "sh",
            "-c",
            &format!(
                "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ping -c1 -W2 {} >/dev/null && echo reached",
                br.address
            ),
        ],
    );
    assert_eq!(out.trim(), format!("inet {addr}\nreached"), "{out}");
    u.ok("stop", &["-n", "n1", "-k"]);
    wait_until(5, || br.ports().is_empty());
    assert!(br.ports().is_empty(), "{:?}", br.ports());
    u.ok("destroy", &["-n", "n1"]);
}

#[test]
fn lxc_usernet_allowances_are_enforced() {
    let Some(u) = user("lxc_usernet_allowances_are_enforced") else {
        return;
    };
    let br = TestBridge::new();
    let other = TestBridge::new();
    let _allow = UsernetAllowance::new(&format!("{TEST_USER} veth {} 1", br.name));
    // two interfaces where one is allowed
    default_conf_with(
        &u,
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.link = {0}\nlxc.net.1.type = veth\nlxc.net.1.link = {0}\n",
            br.name
        ),
    );
    u.ok("create", &["-n", "n2", "-t", "busybox"]);
    let out = u.run("start", &["-n", "n2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("has 1 of 1 interfaces allowed"), "{err}");
    assert!(u.ok("ls", &["--running"]).trim().is_empty());
    // a bridge the file does not list
    default_conf_with(
        &u,
        &format!("lxc.net.0.type = veth\nlxc.net.0.link = {}\n", other.name),
    );
    u.ok("create", &["-n", "n3", "-t", "busybox"]);
    let out = u.run("start", &["-n", "n3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("may not attach interfaces to {}", other.name)),
        "{err}"
    );
    wait_until(5, || br.ports().is_empty() && other.ports().is_empty());
    assert!(br.ports().is_empty() && other.ports().is_empty());
}

#[test]
fn the_usernet_helper_distrusts_its_caller() {
    let Some(u) = user("the_usernet_helper_distrusts_its_caller") else {
        return;
    };
    let br = TestBridge::new();
    let _allow = UsernetAllowance::new(&format!("{TEST_USER} veth {} 5", br.name));
    // a root-owned process (a privileged container of root's, or the test itself)
    let helper = u.bin.with_file_name("warren-user-nic");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("setpriv")
            .args([
                &format!("--reuid={}", u.uid),
                &format!("--regid={}", u.gid),
                "--init-groups",
            ])
            .arg(&helper)
            .args(args)
            .output()
            .expect("helper");
        (out.status.code(), stderr(&out))
    };
    let me = std::process::id().to_string();
    let (code, err) = run(&["create", &me, &br.name, "eth9"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not one of yours"), "{err}");
    let (code, err) = run(&["create", "1", &br.name, "eth9"]);
    assert_eq!(code, Some(1), "{err}");
    for bad_pid in ["abc", "-5", "99999999999"] {
        let (code, err) = run(&["create", bad_pid, &br.name, "eth9"]);
        assert_eq!(code, Some(1), "{bad_pid}: {err}");
        assert!(err.contains("is not a container process id"), "{err}");
    }
    let (code, err) = run(&["create", &me]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("usage: warren-user-nic create PID BRIDGE NAME"),
        "{err}"
    );
    // names the kernel would refuse, or that try to reach elsewhere
    for bad in ["../eth0", "a-name-far-too-long", "eth 0", ""] {
        let (code, err) = run(&["create", &me, &br.name, bad]);
        assert_eq!(code, Some(1), "{bad}: {err}");
    }
    // a bridge it may not use, and a link that is not a bridge
    let (code, err) = run(&["create", &me, "lo", "eth9"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("may not attach"), "{err}");
    assert!(br.ports().is_empty(), "{:?}", br.ports());
}
