//! The life of real busybox containers driven through the warren-lxc binary, as a user would:
//! create, start, ls/info, attach, console, stop, destroy, and the failure paths.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};
use warren_testutil::{cgroups_named, comm, processes_matching, require_root, unique_name, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Drive `console ARGS`: send `input`, wait (up to 20 s) until the output contains `expect`, then
/// detach with Ctrl-a q. Returns everything the console printed.
fn console_until(lxc: &Lxc, args: &[&str], input: &[u8], expect: &str) -> String {
    // a tty a previous client just released may still read as busy for a moment: retry then
    for _ in 0..5 {
        if let Some(out) = console_session(lxc, args, input, expect) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("console {args:?} never showed {expect:?}");
}

/// One console session; `None` when the console client ended by itself (refused, busy).
fn console_session(lxc: &Lxc, args: &[&str], input: &[u8], expect: &str) -> Option<String> {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let mut child = lxc
        .cmd("console")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn console");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = Arc::new(Mutex::new(String::new()));
    let seen_w = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = seen_w.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    if stdin.write_all(input).is_err() {
        let _ = child.wait();
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !seen.lock().map(|s| s.contains(expect)).unwrap_or(false) {
        if let Ok(Some(_)) = child.try_wait() {
            // the client ended on its own (refused, or the tty was still busy)
            let _ = reader.join();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = stdin.write_all(b"\x01q");
    let status = child.wait().expect("console");
    reader.join().expect("reader");
    assert!(status.success(), "console {args:?} failed");
    let out = seen.lock().map(|s| s.clone()).unwrap_or_default();
    Some(out)
}

#[test]
fn busybox_container_full_life() {
    if !require_root("busybox_container_full_life") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("life");
    lxc.busybox(&name, &[]);
    assert!(lxc
        .lxcpath()
        .join(&name)
        .join("rootfs/sbin/init")
        .symlink_metadata()
        .is_ok());
    let ls = lxc.ok("ls", &["-f"]);
    assert!(ls.contains(&name) && ls.contains("STOPPED"), "{ls}");

    lxc.ok("start", &["-n", &name]);
    let ls = lxc.ok("ls", &["-f", "-F", "NAME,STATE,PID"]);
    assert!(ls.contains("RUNNING"), "{ls}");
    let pid: i32 = lxc
        .ok("info", &["-n", &name, "-pH"])
        .trim()
        .parse()
        .expect("pid");
    // the container's init is an ordinary host process, busybox init
    assert_eq!(comm(pid).as_deref(), Some("init"));
    let info = lxc.ok("info", &["-n", &name]);
    assert!(info.contains("State:          RUNNING"), "{info}");
    assert!(info.contains(&format!("PID:            {pid}")), "{info}");
    // exactly one monitor, named as ps shows it
    let monitors = processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ));
    assert_eq!(monitors.len(), 1);

    // attach: exit status, PID 1, hostname, env
    let out = lxc.run(
        "attach",
        &[
            "-n",
            &name,
            "-v",
            "GREETING=hi",
            "--",
            "sh",
            "-c",
            "echo $(cat /proc/1/comm) $(hostname) $GREETING $container; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("init {name} hi lxc"));
    // attach: stdin reaches the command
    let mut child = lxc
        .cmd("attach")
        .args(["-n", &name, "--", "sh", "-c", "read l; echo got:$l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn attach");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"line1\n")
        .expect("write");
    let out = child.wait_with_output().expect("attach");
    assert_eq!(stdout(&out).trim(), "got:line1");
    // the working directory: the caller's when the container has it, else /, or --cwd
    let out = lxc
        .cmd("attach")
        .args(["-n", &name, "--", "pwd"])
        .current_dir("/tmp")
        .output()
        .expect("attach");
    assert_eq!(stdout(&out).trim(), "/tmp");
    let out = lxc
        .cmd("attach")
        .args(["-n", &name, "--", "pwd"])
        .current_dir("/var/cache")
        .output()
        .expect("attach");
    assert_eq!(stdout(&out).trim(), "/");
    assert_eq!(
        lxc.ok("attach", &["-n", &name, "--cwd", "/root", "--", "pwd"])
            .trim(),
        "/root"
    );
    // --clear-env drops the caller's variables
    let out = lxc
        .cmd("attach")
        .args([
            "-n",
            &name,
            "--clear-env",
            "--",
            "sh",
            "-c",
            "echo ${WARREN_SECRET:-unset}",
        ])
        .env("WARREN_SECRET", "x")
        .output()
        .expect("attach");
    assert_eq!(stdout(&out).trim(), "unset");
    // the console's ring buffer holds what busybox init printed
    let log = lxc.console_log_with(&name, "Please press Enter");
    assert!(
        log.contains("Please press Enter to activate this console"),
        "{log:?}"
    );

    // starting twice is refused and changes nothing
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is already running"),
        "{}",
        stderr(&out)
    );

    // freeze / unfreeze / wait
    lxc.ok("freeze", &["-n", &name]);
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "FROZEN");
    lxc.ok("unfreeze", &["-n", &name]);
    lxc.ok("wait", &["-n", &name, "-s", "RUNNING", "-t", "5"]);

    lxc.ok("stop", &["-n", &name, "-k"]);
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "STOPPED");
    assert!(comm(pid).is_none() || comm(pid).as_deref() != Some("init"));
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
    assert_monitor_gone(&lxc, &name);

    let out = lxc.run("attach", &["-n", &name, "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));

    lxc.ok("destroy", &["-n", &name]);
    assert!(!lxc.lxcpath().join(&name).exists());
    let out = lxc.run("info", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("{name} doesn't exist")));
}

#[test]
fn clean_stop_halts_init_and_removes_everything() {
    if !require_root("clean_stop_halts_init_and_removes_everything") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("halt");
    lxc.busybox(&name, &[]);
    lxc.ok("start", &["-n", &name]);
    let t = Instant::now();
    lxc.ok("stop", &["-n", &name, "-t", "20"]);
    // busybox init needs ~2 s to halt; a timeout kill would be 20 s
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "STOPPED");
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn console_reaches_a_shell() {
    if !require_root("console_reaches_a_shell") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("con");
    lxc.busybox(&name, &[]);
    lxc.ok("start", &["-n", &name]);
    // askfirst wants Enter; then the shell runs our command; Ctrl-a q detaches
    let out = console_until(&lxc, &["-n", &name], b"\necho MARK$((40+2))\n", "MARK42");
    assert!(out.contains("MARK42"), "{out:?}");
    // a tty that doesn't exist is refused
    let out = lxc.run("console", &["-n", &name, "-t", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tty 9 does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn host_socket_bind_mounted_is_connectable_inside() {
    if !require_root("host_socket_bind_mounted_is_connectable_inside") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("wl");
    let sock_dir = tempfile::tempdir().expect("tempdir");
    let sock = sock_dir.path().join("wayland-0");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let entry = format!(
        "lxc.mount.entry = {} mnt/wayland-0 none bind,create=file 0 0",
        sock.display()
    );
    // the host's /usr (read-only) gives the busybox rootfs a unix-socket client: python3
    lxc.busybox(
        &name,
        &[&entry, "lxc.mount.entry = /usr usr none ro,bind 0 0"],
    );
    let rootfs = lxc.lxcpath().join(&name).join("rootfs");
    let _ = std::fs::remove_dir(rootfs.join("lib"));
    std::os::unix::fs::symlink("usr/lib", rootfs.join("lib")).expect("lib link");
    std::os::unix::fs::symlink("usr/lib64", rootfs.join("lib64")).expect("lib64 link");
    lxc.ok("start", &["-n", &name]);
    assert!(
        !rootfs.join("mnt/wayland-0").exists()
            || rootfs
                .join("mnt/wayland-0")
                .metadata()
                .map(|m| m.len() == 0)
                .unwrap_or(false)
    );
    let accept = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("read");
        buf
    });
    let out = lxc.run(
        "attach",
        &["-n", &name, "--", "/usr/bin/python3", "-c", "import socket; s=socket.socket(socket.AF_UNIX); s.connect('/mnt/wayland-0'); s.sendall(b'hello from inside'); s.close()"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(accept.join().expect("accept thread"), "hello from inside");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

/// `nofollow` (warren's own mount option): a bind source with a symlink anywhere in its path is
/// refused, saying so, and nothing is left behind; without one the bind works.
#[test]
fn a_nofollow_bind_refuses_a_symlinked_source() {
    if !require_root("a_nofollow_bind_refuses_a_symlinked_source") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("nofollow");
    let host = tempfile::tempdir().expect("tempdir");
    let real = host.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::write(real.join("marker"), "here\n").expect("write");
    let link = host.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let entry = |src: &std::path::Path| {
        format!(
            "lxc.mount.entry = {} mnt/shared none bind,create=dir,nofollow 0 0",
            src.display()
        )
    };
    lxc.busybox(&name, &[&entry(&link)]);
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
    // the real path binds
    let config = lxc.config_path(&name);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace(&entry(&link), &entry(&real))).expect("config");
    lxc.ok("start", &["-n", &name]);
    let out = lxc.run("attach", &["-n", &name, "--", "cat", "/mnt/shared/marker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "here\n");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

/// Init sits in the inner cgroup (`.lxc`) of the container's payload cgroup in every
/// hierarchy; returns the payload cgroups' directories.
fn assert_init_in_inner_cgroups(lxc: &Lxc, name: &str) -> Vec<std::path::PathBuf> {
    let init_pid = lxc.ok("info", &["-n", name, "-p", "-H"]).trim().to_string();
    let payloads = cgroups_named(&format!("warren.payload.{name}"));
    assert!(!payloads.is_empty());
    for p in &payloads {
        let inner = std::fs::read_to_string(p.join(".lxc/cgroup.procs")).expect("inner procs");
        assert!(
            inner.lines().any(|l| l == init_pid),
            "{}: {inner}",
            p.display()
        );
    }
    payloads
}

#[test]
fn cgroup_limits_visible_inside_and_on_host() {
    if !require_root("cgroup_limits_visible_inside_and_on_host") {
        return;
    }
    let unified_only = !std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let lxc = Lxc::new(BIN);
    let name = unique_name("cg");
    let (key, inside, file) = if unified_only {
        (
            "lxc.cgroup2.memory.max = 67108864",
            "/sys/fs/cgroup/memory.max",
            "memory.max",
        )
    } else {
        (
            "lxc.cgroup.memory.limit_in_bytes = 64M",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "memory.limit_in_bytes",
        )
    };
    let pids = if unified_only {
        "lxc.cgroup2.pids.max = 50"
    } else {
        "lxc.cgroup.pids.max = 50"
    };
    lxc.busybox(&name, &[key, pids]);
    lxc.ok("start", &["-n", &name]);
    let out = lxc.ok("attach", &["-n", &name, "--", "cat", inside]);
    assert_eq!(out.trim(), "67108864");
    // init is born in its inner cgroup in every hierarchy (the monitor steps into the v1 ones
    // for the clone only), and the monitor, once it has moved to its own, is in none of them
    let payloads = assert_init_in_inner_cgroups(&lxc, &name);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let monitors = processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ));
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    for p in &payloads {
        let inner = std::fs::read_to_string(p.join(".lxc/cgroup.procs")).expect("inner procs");
        let own = std::fs::read_to_string(p.join("cgroup.procs")).expect("procs");
        assert!(own.trim().is_empty(), "{}: {own}", p.display());
        assert!(
            !inner.lines().any(|l| l == monitors[0].to_string()),
            "{}",
            p.display()
        );
    }
    let monitor_cgroups =
        std::fs::read_to_string(format!("/proc/{}/cgroup", monitors[0])).expect("cgroup");
    assert!(
        monitor_cgroups.contains("warren.monitor."),
        "{monitor_cgroups}"
    );
    let host: Vec<_> = cgroups_named(&format!("warren.payload.{name}"))
        .into_iter()
        .filter(|p| p.join(file).exists())
        .collect();
    assert_eq!(host.len(), 1, "{host:?}");
    assert_eq!(
        std::fs::read_to_string(host[0].join(file))
            .expect("read")
            .trim(),
        "67108864"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn a_pids_limit_of_one_still_starts_with_init_in_its_cgroup() {
    if !require_root("a_pids_limit_of_one_still_starts_with_init_in_its_cgroup") {
        return;
    }
    // no room beside init for the monitor stepping through the cgroups for the clone: init is
    // cloned outside and moved in afterwards
    let unified_only = !std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let lxc = Lxc::new(BIN);
    let name = unique_name("pid1");
    let key = if unified_only {
        "lxc.cgroup2.pids.max = 1"
    } else {
        "lxc.cgroup.pids.max = 1"
    };
    lxc.busybox(&name, &[key]);
    lxc.ok("start", &["-n", &name]);
    assert_init_in_inner_cgroups(&lxc, &name);
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn the_monitor_keeps_its_cpu_affinity_while_init_gets_the_cpuset() {
    if !require_root("the_monitor_keeps_its_cpu_affinity_while_init_gets_the_cpuset") {
        return;
    }
    // the monitor steps through the container's v1 cpuset for the clone (hybrid hosts only)
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !std::path::Path::new("/sys/fs/cgroup/cpuset").exists() || cpus < 2 {
        eprintln!("skipped: needs a v1 cpuset hierarchy and two CPUs");
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("aff");
    lxc.busybox(&name, &["lxc.cgroup.cpuset.cpus = 0"]);
    let out = std::process::Command::new("taskset")
        .args(["-c", "1", BIN, "start", "-P"])
        .arg(lxc.lxcpath())
        .args(["-n", &name])
        .env("WARREN_LXC_DEFAULT_CONF", "/dev/null")
        .output()
        .expect("taskset");
    assert!(out.status.success(), "{}", stderr(&out));
    let allowed = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("status")
            .lines()
            .find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_string())
            })
            .expect("Cpus_allowed_list")
    };
    let monitors = processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ));
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(allowed(&monitors[0].to_string()), "1");
    let init_pid = lxc
        .ok("info", &["-n", &name, "-p", "-H"])
        .trim()
        .to_string();
    assert_eq!(allowed(&init_pid), "0");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn unavailable_cgroup_key_fails_start_and_leaves_nothing() {
    if !require_root("unavailable_cgroup_key_fails_start_and_leaves_nothing") {
        return;
    }
    let hybrid = std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let lxc = Lxc::new(BIN);
    let name = unique_name("badcg");
    // on a hybrid host memory is a v1 controller; on pure cgroup2 there is no v1 at all
    let key = if hybrid {
        "lxc.cgroup2.memory.max = 64M"
    } else {
        "lxc.cgroup.memory.limit_in_bytes = 64M"
    };
    lxc.busybox(&name, &[key]);
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let shown_key = key.split(" =").next().unwrap_or_default();
    assert!(err.contains(shown_key), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
    assert_monitor_gone(&lxc, &name);
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "STOPPED");
}

#[test]
fn failed_start_leaves_no_monitor_cgroup_or_mount() {
    if !require_root("failed_start_leaves_no_monitor_cgroup_or_mount") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("fail");
    lxc.busybox(&name, &[]);
    let out = lxc.run("start", &["-n", &name, "--", "/no/such/init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/no/such/init"), "{}", stderr(&out));
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
    assert!(processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ))
    .is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&name));
    // a missing rootfs is one clear line
    std::fs::remove_dir_all(lxc.lxcpath().join(&name).join("rootfs")).expect("rm rootfs");
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rootfs"), "{}", stderr(&out));
}

#[test]
fn bad_names_and_missing_containers_are_one_line_errors() {
    let lxc = Lxc::new(BIN);
    for bad in ["a/b", ".hidden"] {
        let out = lxc.run("create", &["-n", bad, "-t", "busybox"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("invalid container name"),
            "{}",
            stderr(&out)
        );
    }
    let out = lxc.run("start", &["-n", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "error: nosuch doesn't exist");
    // a failed create leaves nothing behind
    let out = lxc.run("create", &["-n", "tpl", "-t", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!lxc.lxcpath().join("tpl").exists());
    let out = lxc.run("create", &["-n", "dl", "-t", "download"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("-d DIST, -r RELEASE and -a ARCH are required"),
        "{}",
        stderr(&out)
    );
    assert!(!lxc.lxcpath().join("dl").exists());
}

#[test]
fn bad_config_names_file_line_and_key() {
    if !require_root("bad_config_names_file_line_and_key") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("badcfg");
    lxc.busybox(&name, &["lxc.utsname = old"]);
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let cfg = lxc.config_path(&name);
    assert!(
        err.contains(&cfg.display().to_string()) && err.contains("lxc.uts.name"),
        "{err}"
    );
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
    // the monitor spawned ahead of the config read is dismissed and gone with the CLI
    assert!(processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ))
    .is_empty());
}

#[test]
fn an_edited_seccomp_profile_takes_effect_at_the_next_start() {
    if !require_root("an_edited_seccomp_profile_takes_effect_at_the_next_start") {
        return;
    }
    // compiled programs are cached by the profile's content: an edit is a new entry, and a
    // profile that doesn't compile is an error each time, never a cached program
    let lxc = Lxc::new(BIN);
    let name = unique_name("scmp");
    let profile = lxc.lxcpath().join(format!("{name}.seccomp"));
    let line = format!("lxc.seccomp.profile = {}", profile.display());
    lxc.busybox(&name, &[line.as_str()]);
    let set_hostname = |expect_ok: bool| {
        let out = lxc.run(
            "execute",
            &[
                "-n",
                &name,
                "--",
                "sh",
                "-c",
                "hostname renamed && echo set",
            ],
        );
        assert_eq!(out.status.success(), expect_ok, "{}", stderr(&out));
        assert_eq!(stdout(&out).contains("set"), expect_ok);
    };
    std::fs::write(&profile, "2\ndenylist\nsethostname errno 1\n").unwrap();
    set_hostname(false);
    std::fs::write(&profile, "2\ndenylist\nkexec_load errno 1\n").unwrap();
    set_hostname(true);
    std::fs::write(&profile, "2\ndenylist\nsethostname errno 1\n").unwrap();
    set_hostname(false);
    std::fs::write(&profile, "2\ndenylist\nsethostname explode\n").unwrap();
    for _ in 0..2 {
        let out = lxc.run("start", &["-n", &name]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains(&format!("{}:3", profile.display())), "{err}");
    }
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn execute_runs_one_command_and_passes_its_status() {
    if !require_root("execute_runs_one_command_and_passes_its_status") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("exe");
    lxc.busybox(&name, &[]);
    let out = lxc.run(
        "execute",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "echo pid=$$ host=$(hostname); exit 5",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("pid=2 host={name}"));
    assert!(cgroups_named(&format!("warren.payload.{name}")).is_empty());
}

#[test]
fn hooks_run_with_lxc_environment() {
    if !require_root("hooks_run_with_lxc_environment") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("hook");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let pre = out_dir.path().join("pre");
    let post = out_dir.path().join("post");
    let pre_hook = format!(
        "lxc.hook.pre-start = /bin/sh -c 'echo $LXC_NAME $LXC_HOOK_TYPE > {}'",
        pre.display()
    );
    let post_hook = format!(
        "lxc.hook.post-stop = /bin/sh -c 'echo $LXC_NAME $LXC_HOOK_TYPE $LXC_TARGET > {}'",
        post.display()
    );
    lxc.busybox(&name, &["lxc.hook.version = 1", &pre_hook, &post_hook]);
    lxc.ok("start", &["-n", &name]);
    assert_eq!(
        std::fs::read_to_string(&pre).expect("pre").trim(),
        format!("{name} pre-start")
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert_eq!(
        std::fs::read_to_string(&post).expect("post").trim(),
        format!("{name} post-stop stop")
    );
}

#[test]
fn lxc_named_links_behave_as_the_subcommand() {
    let lxc = Lxc::new(BIN);
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..2 {
        // never overwrite: a second run keeps the links and succeeds
        let out = std::process::Command::new(BIN)
            .arg("install-links")
            .arg(dir.path())
            .output()
            .expect("install-links");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = std::process::Command::new(dir.path().join("lxc-ls"))
        .args(["-P", lxc.lxcpath().to_str().expect("utf8"), "-1"])
        .output()
        .expect("lxc-ls");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = std::process::Command::new(dir.path().join("lxc-info"))
        .args(["-n", "nosuch", "-P", lxc.lxcpath().to_str().expect("utf8")])
        .output()
        .expect("lxc-info");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nosuch doesn't exist"));
}

#[test]
fn shared_network_namespace_is_joined() {
    if !require_root("shared_network_namespace_is_joined") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let a = unique_name("sha");
    let b = unique_name("shb");
    lxc.busybox(&a, &[]);
    let share = format!("lxc.namespace.share.net = {a}");
    lxc.busybox(&b, &[&share]);
    lxc.ok("start", &["-n", &a]);
    lxc.ok("start", &["-n", &b]);
    let ns = |n: &str| {
        let pid: i32 = lxc
            .ok("info", &["-n", n, "-pH"])
            .trim()
            .parse()
            .expect("pid");
        std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns link")
    };
    assert_eq!(ns(&a), ns(&b));
    assert_ne!(
        ns(&a),
        std::fs::read_link("/proc/self/ns/net").expect("own ns")
    );
    // uts is not shared: each keeps its own hostname
    assert_eq!(lxc.ok("attach", &["-n", &b, "--", "hostname"]).trim(), b);
    lxc.ok("stop", &["-n", &b, "-k"]);
    lxc.ok("stop", &["-n", &a, "-k"]);
}

#[test]
fn other_users_cannot_drive_the_monitor() {
    if !require_root("other_users_cannot_drive_the_monitor") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("cred");
    lxc.busybox(&name, &[]);
    lxc.ok("start", &["-n", &name]);
    // the abstract socket is reachable by anyone: a request from uid 65534 must be refused
    let sock = format!("\\0warren/{}/{name}/command", lxc.lxcpath().display());
    let script = format!(
        "import socket; s=socket.socket(socket.AF_UNIX); s.connect(b'{sock}'); \
         s.sendall(b'{{\"cmd\":\"stop\",\"timeout\":0,\"kill\":true}}\\n'); print(s.recv(4096).decode())"
    );
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .output()
        .expect("setpriv");
    assert!(
        stdout(&out).contains("permission denied"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "RUNNING");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn attach_with_a_terminal_gets_a_pty_from_the_container() {
    if !require_root("attach_with_a_terminal_gets_a_pty_from_the_container") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("pty");
    lxc.busybox(&name, &[]);
    lxc.ok("start", &["-n", &name]);
    // script(1) gives attach a terminal on stdin, as a user's shell would
    let cmd = format!(
        "{BIN} attach -P {} -n {name} -- sh -c 'tty; test -e $(tty) && echo exists-inside; exit 4'",
        lxc.lxcpath().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/") && text.contains("exists-inside"),
        "{text:?}"
    );
    assert_eq!(out.status.code(), Some(4), "{text:?} {}", stderr(&out));
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn tty_console_reaches_getty_and_console_log_file_is_written() {
    if !require_root("tty_console_reaches_getty_and_console_log_file_is_written") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("tty");
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = log_dir.path().join("console.log");
    let log_line = format!("lxc.console.logfile = {}", log.display());
    lxc.busybox(&name, &[&log_line]);
    lxc.ok("start", &["-n", &name]);
    // tty1 runs getty: the monitor hands us the tty's master; Enter gets a login prompt
    let out = console_until(&lxc, &["-n", &name, "-t", "1"], b"\n", "login:");
    assert!(out.contains("login:"), "{out:?}");
    // a tty held by a client is busy for others; released when the client goes (the previous
    // client's tty may still read as busy for a moment: a holder refused so starts again)
    let spawn_holder = || {
        lxc.cmd("console")
            .args(["-n", &name, "-t", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn console")
    };
    let mut holder = spawn_holder();
    // generous: under emulation (the cgroup2 qemu guest) a client takes seconds to attach
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut busy = String::new();
    loop {
        if busy.contains("tty 1 is busy") && holder.try_wait().expect("holder").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "tty 1 never held: {busy}");
        std::thread::sleep(Duration::from_millis(50));
        if holder.try_wait().expect("holder").is_some() {
            std::thread::sleep(Duration::from_millis(200));
            holder = spawn_holder();
            busy.clear();
            continue;
        }
        // bounded: if the holder isn't attached yet this one would attach and wait for input
        let out = std::process::Command::new("timeout")
            .arg("3")
            .arg(BIN)
            .args([
                "console",
                "-P",
                lxc.lxcpath().to_str().expect("utf8"),
                "-n",
                &name,
                "-t",
                "1",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("console");
        busy = stderr(&out);
    }
    holder
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\x01q")
        .expect("detach");
    assert!(holder.wait().expect("holder").success());
    let out = console_until(&lxc, &["-n", &name, "-t", "1"], b"\n", "login:");
    assert!(out.contains("login:"), "{out:?}");
    // the console's output also went to lxc.console.logfile
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("Please press Enter") {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.contains("Please press Enter"), "{text:?}");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn a_regular_user_is_told_root_is_needed() {
    if !require_root("a_regular_user_is_told_root_is_needed") {
        return;
    }
    // a copy the user can reach whatever the checkout's permissions are
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let bin = dir.path().join("warren-lxc");
    std::fs::copy(BIN, &bin).expect("copy");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["snapshot", "-n", "x"])
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("snapshot needs root"), "{err}");
}

#[test]
fn many_ttys_and_no_console() {
    if !require_root("many_ttys_and_no_console") {
        return;
    }
    let lxc = Lxc::new(BIN);
    // six ttys: all their masters reach the monitor; and with lxc.pty.max = 1, as LXC's busybox
    // template writes it, the console and ttys don't eat the container's one pty
    let name = unique_name("ttys");
    lxc.busybox(&name, &["lxc.tty.max = 6", "lxc.pty.max = 1"]);
    lxc.ok("start", &["-n", &name]);
    let out = std::process::Command::new("timeout")
        .arg("2")
        .arg(BIN)
        .args([
            "console",
            "-P",
            lxc.lxcpath().to_str().expect("utf8"),
            "-n",
            &name,
            "-t",
            "6",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("console");
    // (no process holds tty6 open, so the session ends at once: but it was handed over)
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(124),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = lxc.run("console", &["-n", &name, "-t", "7"]);
    assert!(
        stderr(&out).contains("tty 7 does not exist"),
        "{}",
        stderr(&out)
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    // lxc.tty.dir (LXC's common.conf sets it): the devices in /dev/lxc, symlinks in /dev
    let dir = unique_name("ttydir");
    lxc.busybox(&dir, &["lxc.tty.dir = lxc", "lxc.tty.max = 2"]);
    lxc.ok("start", &["-n", &dir]);
    let links = lxc.ok(
        "attach",
        &[
            "-n",
            &dir,
            "--",
            "sh",
            "-c",
            "readlink /dev/console; readlink /dev/tty2; test -c /dev/lxc/tty2 && echo char",
        ],
    );
    assert_eq!(
        links.split_whitespace().collect::<Vec<_>>(),
        ["lxc/console", "lxc/tty2", "char"]
    );
    lxc.ok("stop", &["-n", &dir, "-k"]);
    // no console: init's stdio is the container's /dev/null, not the start command's pipe
    let quiet = unique_name("nocon");
    lxc.busybox(&quiet, &["lxc.console.path = none", "lxc.tty.max = 0"]);
    lxc.ok("start", &["-n", &quiet]);
    let fd1 = lxc.ok("attach", &["-n", &quiet, "--", "readlink", "/proc/1/fd/1"]);
    assert_eq!(fd1.trim(), "/dev/null");
    lxc.ok("stop", &["-n", &quiet, "-k"]);
}

#[test]
fn an_executed_command_is_visible_while_it_runs() {
    if !require_root("an_executed_command_is_visible_while_it_runs") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("exv");
    lxc.busybox(&name, &[]);
    let mut child = lxc
        .cmd("execute")
        .args(["-n", &name, "--", "sleep", "6"])
        .stdout(Stdio::null())
        .spawn()
        .expect("execute");
    // the monitor answers while the command runs (it used to wait for PID 1 to exec)
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut state = String::new();
    while Instant::now() < deadline && state != "RUNNING" {
        std::thread::sleep(Duration::from_millis(50));
        state = lxc.ok("info", &["-n", &name, "-sH"]).trim().to_string();
    }
    assert_eq!(state, "RUNNING");
    assert!(child.wait().expect("execute").success());
}

#[test]
fn console_log_file_is_rotated_at_its_size() {
    if !require_root("console_log_file_is_rotated_at_its_size") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("rot");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("console.log");
    let logline = format!("lxc.console.logfile = {}", log.display());
    lxc.busybox(
        &name,
        &[
            &logline,
            "lxc.console.size = 4096",
            "lxc.console.rotate = 1",
        ],
    );
    lxc.ok("start", &["-n", &name]);
    lxc.ok(
        "attach",
        &["-n", &name, "--", "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx > /dev/console; i=$((i+1)); done"],
    );
    let rotated = dir.path().join("console.log.1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !rotated.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rotated.exists(), "no rotation");
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(std::fs::metadata(&log).expect("log").len() <= 4096);
    assert!(std::fs::metadata(&rotated).expect("rotated").len() <= 4096);
}

#[test]
fn a_waiter_that_gives_up_is_let_go() {
    if !require_root("a_waiter_that_gives_up_is_let_go") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("wg");
    lxc.busybox(&name, &[]);
    lxc.ok("start", &["-n", &name]);
    let monitor = processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    ))[0];
    let fds = || {
        std::fs::read_dir(format!("/proc/{monitor}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let settle = |want: usize| {
        warren_testutil::wait_until(3, || fds() == want);
        fds()
    };
    let before = fds();
    let mut waiter = lxc
        .cmd("wait")
        .args(["-n", &name, "-s", "FROZEN"])
        .spawn()
        .expect("wait");
    assert_eq!(settle(before + 1), before + 1, "the waiter's connection");
    waiter.kill().expect("kill the waiter");
    let _ = waiter.wait();
    assert_eq!(
        settle(before),
        before,
        "the monitor kept the connection of a waiter that left"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
}

/// The monitor answers a stop first, then leaves its own cgroup and exits: both are gone soon.
fn assert_monitor_gone(lxc: &Lxc, name: &str) {
    let gone = || {
        cgroups_named(&format!("warren.monitor.{name}")).is_empty()
            && processes_matching(&format!(
                "[warren monitor] {} {name}",
                lxc.lxcpath().display()
            ))
            .is_empty()
    };
    assert!(
        warren_testutil::wait_until(3, gone),
        "the monitor or its cgroup outlived the stop"
    );
}

/// `lxc.console.path = /dev/...`: the console joined to a host terminal (a pty made by the test):
/// what the container writes to its console shows there, what is typed there reaches the
/// console (its echo comes back). A terminal that can't be opened fails the start and names
/// the key.
#[test]
fn console_path_joins_the_console_to_a_host_terminal() {
    if !require_root("console_path_joins_the_console_to_a_host_terminal") {
        return;
    }
    use std::os::fd::AsFd;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = nix::unistd::ttyname(pty.slave.as_fd()).expect("ttyname");
    let lxc = Lxc::new(BIN);
    let name = unique_name("cp");
    let line = format!("lxc.console.path = {}", slave.display());
    lxc.busybox(&name, &[&line]);
    lxc.ok("start", &["-n", &name]);
    // reads the pty's master side until `want` shows (or 10 s pass)
    let master = std::fs::File::from(pty.master);
    let _ = nix::fcntl::fcntl(
        &master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let read_until = |want: &str| {
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !seen.contains(want) {
            let mut buf = [0u8; 4096];
            match std::io::Read::read(&mut &master, &mut buf) {
                Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        seen
    };
    lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "echo via-the-host-terminal > /dev/console",
        ],
    );
    let seen = read_until("via-the-host-terminal");
    assert!(seen.contains("via-the-host-terminal"), "{seen:?}");
    (&master).write_all(b"typed-on-the-host").expect("write");
    let seen = read_until("typed-on-the-host");
    assert!(
        seen.contains("typed-on-the-host"),
        "the console's echo: {seen:?}"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    // a terminal that isn't there
    let bad = unique_name("cpb");
    lxc.busybox(&bad, &["lxc.console.path = /dev/warren-nosuch-tty"]);
    let o = lxc.run("start", &["-n", &bad]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("lxc.console.path /dev/warren-nosuch-tty"),
        "{}",
        stderr(&o)
    );
}
