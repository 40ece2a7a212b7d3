//! A real systemd guest (Debian bookworm from debootstrap, built by scripts/setup-host.sh) boots
//! under warren-lxc with systemd as PID 1, reaches running or degraded, and stops cleanly on
//! SIGRTMIN+3: privileged, then unprivileged (one after the other: they share the rootfs).

use std::path::PathBuf;
use warren_testutil::{require_root, unique_name, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

fn debian_rootfs() -> Option<PathBuf> {
    let p = PathBuf::from(
        std::env::var("WARREN_DEBIAN_ROOTFS")
            .unwrap_or_else(|_| "/var/tmp/warren-fixtures/bookworm-minbase-systemd-v1".into()),
    );
    if p.join("lib/systemd/systemd").exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: scripts/setup-host.sh builds it with debootstrap",
            p.display()
        );
    }
    eprintln!(
        "skipping: no Debian rootfs at {} (run scripts/setup-host.sh)",
        p.display()
    );
    None
}

/// Boot, wait for the boot to finish, check the state, stop; returns the failed units.
fn boot_and_stop(lxc: &Lxc, name: &str, config: &str) -> (String, String) {
    let dir = lxc.lxcpath().join(name);
    std::fs::create_dir_all(&dir).expect("container dir");
    std::fs::write(dir.join("config"), config).expect("config");
    lxc.ok("start", &["-n", name]);
    // systemd's own view: PID 1 is systemd, and it knows it runs in an lxc container
    let virt = lxc.ok(
        "attach",
        &["-n", name, "--", "systemd-detect-virt", "--container"],
    );
    assert_eq!(virt.trim(), "lxc");
    // (the executable, not comm: systemd renames itself a moment after it starts)
    let exe = lxc.ok("attach", &["-n", name, "--", "readlink", "/proc/1/exe"]);
    assert!(exe.trim().ends_with("/systemd"), "{exe}");
    // until systemd answers on its socket and the boot is over (bounded: 120 s)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut state = String::new();
    while std::time::Instant::now() < deadline {
        let out = lxc.run(
            "attach",
            &["-n", name, "--", "systemctl", "is-system-running"],
        );
        state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !matches!(
            state.as_str(),
            "" | "initializing" | "starting" | "offline" | "unknown"
        ) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let failed = lxc.ok(
        "attach",
        &[
            "-n",
            name,
            "--",
            "systemctl",
            "--failed",
            "--no-legend",
            "--plain",
            "--no-pager",
        ],
    );
    let t = std::time::Instant::now();
    lxc.ok("stop", &["-n", name, "-t", "60"]);
    // a clean stop: SIGRTMIN+3 makes systemd shut down; a kill after the timeout would be 60 s
    assert!(
        t.elapsed() < std::time::Duration::from_secs(50),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(lxc.ok("info", &["-n", name, "-sH"]).trim(), "STOPPED");
    (state, failed)
}

#[test]
fn systemd_guest_boots_and_stops_privileged_and_unprivileged() {
    if !require_root("systemd_guest_boots_and_stops_privileged_and_unprivileged") {
        return;
    }
    let Some(rootfs) = debian_rootfs() else {
        return;
    };
    let lxc = Lxc::new(BIN);
    let base = format!(
        "lxc.include = /usr/share/warren/config/common.conf\n\
         lxc.rootfs.path = dir:{}\n\
         lxc.signal.halt = SIGRTMIN+3\n\
         lxc.net.0.type = empty\n",
        rootfs.display()
    );
    let name = unique_name("sd");
    let (state, failed) = boot_and_stop(&lxc, &name, &format!("{base}lxc.uts.name = {name}\n"));
    assert!(
        state == "running" || state == "degraded",
        "state {state:?}, failed units:\n{failed}"
    );
    eprintln!("privileged: {state}; failed units: {failed:?}");

    let uname = unique_name("usd");
    let unpriv = format!(
        "{base}lxc.uts.name = {uname}\n\
         lxc.include = /usr/share/warren/config/userns.conf\n\
         lxc.idmap = u 0 100000 65536\n\
         lxc.idmap = g 0 100000 65536\n"
    );
    let (state, failed) = boot_and_stop(&lxc, &uname, &unpriv);
    assert!(
        state == "running" || state == "degraded",
        "state {state:?}, failed units:\n{failed}"
    );
    // in a user namespace debugfs can't be mounted: the one unit expected to fail there
    for line in failed.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("sys-kernel-debug.mount"),
            "unexpected failed unit: {line}"
        );
    }
    eprintln!("unprivileged: {state}; failed units: {failed:?}");
}
