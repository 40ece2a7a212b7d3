//! Test fixtures for warren's integration tests: a private lxcpath per test that stops and removes
//! every container in it on drop (also on panic), unique names, and the root check.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, short enough for every kernel limit.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Whether the tests run as root. Tests that need root call [`require_root`].
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Skip (return false, with a message) when not root; in CI (`CI` set) a missing root is a failure.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root, and CI must not skip it");
    }
    eprintln!("skipping {test}: it starts real containers and needs root");
    false
}

/// A private lxcpath holding the test's containers, and the binary under test.
pub struct Lxc {
    pub bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Lxc {
    /// `bin`: the warren-lxc binary (`env!("CARGO_BIN_EXE_warren-lxc")`), unless
    /// `WARREN_TEST_LXC_BIN` names another (scripts/test.sh runs the lifecycle tests again on the
    /// release build that scripts/build.sh makes, which is what users run).
    pub fn new(bin: &str) -> Lxc {
        let bin = std::env::var_os("WARREN_TEST_LXC_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(bin));
        let dir = tempfile::Builder::new()
            .prefix("warren-test-")
            .tempdir_in(std::env::temp_dir())
            .expect("create a temporary lxcpath");
        Lxc { bin, dir }
    }

    pub fn lxcpath(&self) -> &Path {
        self.dir.path()
    }

    /// A command `warren-lxc SUB -P <lxcpath> ARGS...`, with the host's default.conf kept out.
    pub fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg(sub).arg("-P").arg(self.lxcpath());
        c.env("WARREN_LXC_DEFAULT_CONF", "/dev/null");
        c.stdin(Stdio::null());
        c
    }

    /// Run `warren-lxc SUB -P lxcpath ARGS`, returning its output.
    pub fn run(&self, sub: &str, args: &[&str]) -> Output {
        self.cmd(sub).args(args).output().expect("run warren-lxc")
    }

    /// Like [`Lxc::run`], panicking with stderr unless it succeeds.
    pub fn ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.run(sub, args);
        assert!(
            out.status.success(),
            "warren-lxc {sub} {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a busybox container named `name`, with `extra` config lines appended.
    pub fn busybox(&self, name: &str, extra: &[&str]) {
        self.ok("create", &["-n", name, "-t", "busybox"]);
        if !extra.is_empty() {
            let cfg = self.lxcpath().join(name).join("config");
            let mut text = std::fs::read_to_string(&cfg).expect("read config");
            for l in extra {
                text.push_str(l);
                text.push('\n');
            }
            std::fs::write(&cfg, text).expect("write config");
        }
    }

    /// A busybox container that also sees the host's /usr read-only (and lib, lib64 links into it),
    /// so host programs such as /usr/bin/python3 can run inside as probes.
    pub fn busybox_with_host_usr(&self, name: &str, extra: &[&str]) {
        let mut lines = vec!["lxc.mount.entry = /usr usr none ro,bind 0 0"];
        lines.extend_from_slice(extra);
        self.busybox(name, &lines);
        let rootfs = self.lxcpath().join(name).join("rootfs");
        let _ = std::fs::remove_dir(rootfs.join("lib"));
        std::os::unix::fs::symlink("usr/lib", rootfs.join("lib")).expect("lib link");
        std::os::unix::fs::symlink("usr/lib64", rootfs.join("lib64")).expect("lib64 link");
    }

    /// The console ring buffer once it contains `expect` (polled up to 10 s: init prints on its
    /// own schedule); whatever it holds by then otherwise.
    pub fn console_log_with(&self, name: &str, expect: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let log = self.ok("console", &["-n", name, "--log"]);
            if log.contains(expect) || std::time::Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn config_path(&self, name: &str) -> PathBuf {
        self.lxcpath().join(name).join("config")
    }
}

impl Drop for Lxc {
    fn drop(&mut self) {
        // kill whatever still runs, so the temp dir (and its cgroups) can go
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let _ = self
                    .cmd("stop")
                    .args(["-n", &name, "-k"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                // a test that killed a monitor leaves its cgroups: nobody else removes them
                for kind in ["payload", "monitor"] {
                    for cg in cgroups_named(&format!("warren.{kind}.{name}-")) {
                        remove_cgroup_tree(&cg);
                    }
                }
            }
        }
    }
}

/// Removes cgroup directory `dir` and everything below it, killing what still runs in it.
pub fn remove_cgroup_tree(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for p in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
        }
    }
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    dirs.push(e.path());
                }
            }
        }
        i += 1;
    }
    for d in dirs.iter().rev() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::fs::remove_dir(d).is_err() && d.exists() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Read `/proc/PID/comm`.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every cgroup directory under /sys/fs/cgroup whose name contains `needle`.
pub fn cgroups_named(needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(top) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for h in top.flatten() {
        let p = h.path();
        if p.file_name()
            .map(|n| n.to_string_lossy().contains(needle))
            .unwrap_or(false)
        {
            out.push(p.clone());
        }
        if let Ok(sub) = std::fs::read_dir(&p) {
            for s in sub.flatten() {
                if s.file_name().to_string_lossy().contains(needle) && s.path().is_dir() {
                    out.push(s.path());
                }
            }
        }
    }
    out
}

/// Processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(d) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in d.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// The regular user the tests act as (made by scripts/setup-host.sh with /etc/subuid and
/// /etc/subgid ranges).
pub const TEST_USER: &str = "warren-tester";

/// A regular user's session: a private home (so `~/.local/share/lxc` is the test's own), copies
/// of the binaries the user can reach, and a cgroup2 subtree delegated to the user the way
/// systemd delegates one (chowned to it). Commands run as the user inside that cgroup. On drop,
/// everything in the subtree is killed and every file and cgroup removed.
pub struct RegularUser {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub bin: PathBuf,
    /// The delegated cgroup2 directory.
    pub cgroup: PathBuf,
    dir: tempfile::TempDir,
}

/// Where cgroup2 is mounted (/sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a pure one).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("cgroup2 ") {
            return None;
        }
        pre.split(' ').nth(4).map(PathBuf::from)
    })
}

/// `user`'s uid and gid from the passwd database.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// The first subordinate range of `user` in /etc/subuid (or /etc/subgid).
pub fn subid_start(user: &str, file: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() == 3)
            .then(|| f[1].parse().ok())
            .flatten()
    })
}

impl RegularUser {
    /// `None` (with a message) when the test user is missing outside CI; in CI that is a failure.
    /// `bins`: the binaries to copy where the user can run them (warren-lxc and its monitor).
    pub fn new(test: &str, bins: &[&Path]) -> Option<RegularUser> {
        if !require_root(test) {
            return None;
        }
        let Some((uid, gid)) = user_ids(TEST_USER) else {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: user {TEST_USER} is missing; scripts/setup-host.sh makes it");
            }
            eprintln!("skipping {test}: user {TEST_USER} is missing (run scripts/setup-host.sh)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("warren-user-")
            .tempdir_in(std::env::temp_dir())
            .expect("tempdir");
        let chown = |p: &Path| {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to the test user")
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("mkdir home");
        chown(&home);
        let bindir = dir.path().join("bin");
        std::fs::create_dir(&bindir).expect("mkdir bin");
        for b in bins {
            let to = bindir.join(b.file_name().expect("binary name"));
            std::fs::copy(b, &to).expect("copy binary");
            if to.file_name().is_some_and(|n| n == "warren-user-nic") {
                // the lxc-usernet helper is setuid root, as installed
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o4755))
                    .expect("setuid helper");
            }
        }
        let bin = bindir.join(bins[0].file_name().expect("binary name"));
        let cgroup = cgroup2_mount()
            .expect("a cgroup2 mount")
            .join(unique_name("warren-user-test-"));
        std::fs::create_dir(&cgroup).expect("create the delegated cgroup");
        chown(&cgroup);
        for f in ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"] {
            chown(&cgroup.join(f));
        }
        Some(RegularUser {
            uid,
            gid,
            home,
            bin,
            cgroup,
            dir,
        })
    }

    /// The user's lxcpath as LXC places it.
    pub fn lxcpath(&self) -> PathBuf {
        self.home.join(".local/share/lxc")
    }

    /// `warren-lxc SUB ARGS` as the user, from inside the delegated cgroup (`delegated: false`:
    /// from root's cgroup, which the user may not write).
    pub fn command(&self, delegated: bool, sub: &str, args: &[&str]) -> Command {
        let enter = if delegated {
            format!("echo $$ > {}/cgroup.procs && ", self.cgroup.display())
        } else {
            String::new()
        };
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "{enter}exec setpriv --reuid={} --regid={} --init-groups env -i HOME={} PATH=/usr/sbin:/usr/bin:/sbin:/bin \"$@\"",
                self.uid,
                self.gid,
                self.home.display()
            ))
            .arg("sh")
            .arg(&self.bin)
            .arg(sub)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, sub: &str, args: &[&str]) -> Output {
        self.command(true, sub, args)
            .output()
            .expect("run as the test user")
    }

    /// Like [`RegularUser::run`], panicking with stderr unless it succeeds.
    pub fn ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.run(sub, args);
        assert!(
            out.status.success(),
            "warren-lxc {sub} {args:?} as {TEST_USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `~/.config/lxc/default.conf`.
    pub fn write_default_conf(&self, text: &str) {
        let dir = self.home.join(".config/lxc");
        for d in [self.home.join(".config"), dir.clone()] {
            let _ = std::fs::create_dir(&d);
            let _ = std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid));
        }
        let f = dir.join("default.conf");
        std::fs::write(&f, text).expect("write default.conf");
        let _ = std::os::unix::fs::chown(&f, Some(self.uid), Some(self.gid));
    }

    /// Every cgroup below the delegated one.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.cgroup.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                    stack.push(e.path());
                }
            }
        }
        out
    }
}

impl Drop for RegularUser {
    fn drop(&mut self) {
        // whatever still runs in the subtree (a monitor of a failed test) goes now
        let _ = std::fs::write(self.cgroup.join("cgroup.kill"), "1");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut dirs = self.cgroups();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.push(self.cgroup.clone());
        for d in dirs {
            while std::fs::remove_dir(&d).is_err()
                && d.exists()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = &self.dir;
    }
}

/// A bridge of the test's own (unique name, a /24 of its own in 10.213-10.250.x), up, with an
/// nftables table that drops any forwarded traffic leaving it, so nothing a container does can
/// leave the machine. Removed on drop, with everything attached to it.
pub struct TestBridge {
    pub name: String,
    /// The bridge's own address, `10.A.B.1`.
    pub address: std::net::Ipv4Addr,
    _firewall: TestFirewall,
}

impl TestBridge {
    pub fn new() -> TestBridge {
        let name = unique_name("wtb");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let seed = std::process::id().wrapping_mul(31).wrapping_add(n);
        let address =
            std::net::Ipv4Addr::new(10, 213 + (seed % 37) as u8, (seed / 37 % 250) as u8, 1);
        // the firewall first: if it can't be made, no bridge is left behind
        let firewall = TestFirewall::new(&name);
        let mut nl = warren_net::Netlink::open().expect("netlink");
        nl.create_bridge(&name).expect("create the test bridge");
        // owned from here on: a failure below still removes it
        let br = TestBridge {
            name,
            address,
            _firewall: firewall,
        };
        let idx = nl.link_index(&br.name).expect("bridge index");
        nl.add_address(
            idx,
            warren_net::Cidr {
                addr: address.into(),
                prefix: 24,
            },
        )
        .expect("bridge address");
        nl.set_up(idx).expect("bridge up");
        br
    }

    /// `10.A.B.<host>/24` in the bridge's subnet.
    pub fn host(&self, host: u8) -> String {
        let o = self.address.octets();
        format!("{}.{}.{}.{host}/24", o[0], o[1], o[2])
    }

    /// The interfaces attached to the bridge now.
    pub fn ports(&self) -> Vec<String> {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.name))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Default for TestBridge {
    fn default() -> Self {
        TestBridge::new()
    }
}

/// An nftables table of the test's own that drops forwarded traffic leaving bridge `name`
/// (which need not exist yet), so nothing a container on it does can leave the machine.
/// Deleted on drop.
pub struct TestFirewall {
    table: String,
}

impl TestFirewall {
    pub fn new(bridge: &str) -> TestFirewall {
        let table = format!("warren_test_{bridge}");
        let rules = format!(
            "table inet {table} {{\n  chain forward {{\n    type filter hook forward priority -10; policy accept;\n    iifname \"{bridge}\" oifname != \"{bridge}\" drop\n  }}\n}}\n"
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (apt-get install nftables)");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(rules.as_bytes()).expect("nft input");
        }
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestFirewall { table }
    }
}

impl Drop for TestFirewall {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .output();
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        if let Ok(mut nl) = warren_net::Netlink::open() {
            if let Ok(idx) = nl.link_index(&self.name) {
                let _ = nl.delete_link(idx);
            }
        }
    }
}

/// A line of the test's own in /etc/lxc/lxc-usernet.d (warren's drop-ins for lxc-usernet),
/// removed on drop.
pub struct UsernetAllowance {
    path: PathBuf,
}

impl UsernetAllowance {
    pub fn new(line: &str) -> UsernetAllowance {
        let dir = Path::new("/etc/lxc/lxc-usernet.d");
        std::fs::create_dir_all(dir).expect("create /etc/lxc/lxc-usernet.d");
        let path = dir.join(format!("{}.conf", unique_name("warren-test-")));
        std::fs::write(&path, format!("{line}\n")).expect("write the allowance");
        UsernetAllowance { path }
    }
}

impl Drop for UsernetAllowance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Polls `cond` every 10 ms until it holds or `secs` seconds pass; returns its last answer.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A host link of the test's own, deleted on drop (with its veth peer, if it has one).
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut nl) = warren_net::Netlink::open() {
            if let Ok(i) = nl.link_index(&self.0) {
                let _ = nl.delete_link(i);
            }
        }
    }
}

/// A veth pair of the test's own on the host (`name` and `peer`), deleted on drop with its peer.
pub struct HostLink {
    pub name: String,
    pub peer: String,
}

impl HostLink {
    pub fn new() -> HostLink {
        let name = unique_name("wtp");
        let peer = unique_name("wtq");
        let mut nl = warren_net::Netlink::open().expect("netlink");
        nl.create_veth(&name, &peer, warren_net::Namespace::Here)
            .expect("a veth pair");
        HostLink { name, peer }
    }
}

impl Default for HostLink {
    fn default() -> Self {
        HostLink::new()
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        // whichever end is still on the host takes the other with it
        drop(LinkGuard(self.name.clone()));
        drop(LinkGuard(self.peer.clone()));
    }
}

/// `warren-lxc net` on a bridge of the test's own: unique bridge and subnet, dnsmasq without
/// upstream servers, a drop rule for forwarded traffic leaving the bridge; stopped on drop.
pub struct LxcNet {
    pub dir: tempfile::TempDir,
    pub bridge: String,
    pub subnet: String,
    bin: PathBuf,
    _firewall: TestFirewall,
}

impl LxcNet {
    /// `bin`: the warren-lxc binary.
    pub fn new(bin: &str) -> LxcNet {
        let dir = tempfile::tempdir().expect("tempdir");
        let bridge = unique_name("wln");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let n = (std::process::id() * 7 + k) % 250 + 1;
        let subnet = format!("10.{}.{}", 180 + (std::process::id() + k) % 30, n);
        let _firewall = TestFirewall::new(&bridge);
        std::fs::write(
            dir.path().join("lxc-net"),
            format!(
                "# test lxc-net\nUSE_LXC_BRIDGE=\"true\"\nLXC_BRIDGE=\"{bridge}\"\nLXC_ADDR=\"{subnet}.1\"\n\
                 LXC_NETMASK=\"255.255.255.0\"\nLXC_NETWORK=\"{subnet}.0/24\"\nLXC_DHCP_RANGE=\"{subnet}.2,{subnet}.254\"\n\
                 LXC_DHCP_MAX=\"253\"\nLXC_DHCP_PING=\"false\"\nLXC_DOMAIN=\"lxc\"\n"
            ),
        )
        .expect("lxc-net file");
        LxcNet {
            dir,
            bin: PathBuf::from(bin),
            bridge,
            subnet,
            _firewall,
        }
    }

    pub fn args(&self, action: &str) -> Vec<String> {
        let p = self.dir.path();
        vec![
            action.to_string(),
            "--config".into(),
            p.join("lxc-net").display().to_string(),
            "--run-dir".into(),
            p.join("run").display().to_string(),
            "--leases-dir".into(),
            p.display().to_string(),
            "--no-upstream".into(),
        ]
    }

    pub fn run(&self, action: &str) -> std::process::Output {
        std::process::Command::new(&self.bin)
            .arg("net")
            .args(self.args(action))
            .output()
            .expect("warren-lxc net")
    }

    pub fn leases(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("dnsmasq.{}.leases", self.bridge))
    }

    /// The line of dnsmasq's lease file for `name`, once it is there (20 s at most).
    pub fn lease_of(&self, name: &str) -> String {
        let mut leases = String::new();
        wait_until(20, || {
            leases = std::fs::read_to_string(self.leases()).unwrap_or_default();
            leases.contains(name)
        });
        leases
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no lease for {name}: {leases:?}"))
            .to_string()
    }

    pub fn bridge_exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.bridge).exists()
    }

    pub fn table(&self) -> Option<String> {
        warren_net::nft::list_table("ip", &format!("warren_lxcnet_{}", self.bridge)).expect("nft")
    }
}

impl Drop for LxcNet {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

/// A directory served over plain HTTP on 127.0.0.1 (python3's http.server, as a test mirror), on a
/// free port; stopped on drop.
pub struct HttpDir {
    child: std::process::Child,
    pub port: u16,
}

impl HttpDir {
    pub fn serve(dir: &Path) -> HttpDir {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        wait_until(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        HttpDir { child, port }
    }
}

impl Drop for HttpDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `path` exists, for tests that need an installed tool: absent, the test says why it
/// skips, except in CI, where scripts/setup-host.sh installs it and a skip would hide a failure.
pub fn require_installed(path: &str, what: &str, install: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is not installed: scripts/setup-host.sh installs it"
    );
    eprintln!("skipped: {what} is not installed ({install})");
    false
}

/// `warren-build serve` on 127.0.0.1 (a free port), killed on drop.
pub struct ImageServer {
    child: std::process::Child,
    pub port: u16,
    /// The server's self-signed certificate (PEM).
    pub cert: PathBuf,
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ImageServer {
    /// A signed tree in `dir/tree` with the example image (`example`, built LXC and Incus with
    /// `build`, warren-build's path) under version `serial`.
    pub fn publish(build: &str, example: &str, dir: &Path, serial: &str) -> PathBuf {
        let out = dir.join(format!("out-{serial}"));
        let r = Command::new(build)
            .args([
                "build-all",
                example,
                &out.to_string_lossy(),
                "--no-cache",
                "-o",
                &format!("image.serial={serial}"),
                "-o",
                "image.expiry=3650d",
            ])
            .arg("--sources-dir")
            .arg(dir.join("sources"))
            .env("SOURCE_DATE_EPOCH", "1790000000")
            .output()
            .expect("warren-build");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let tree = dir.join("tree");
        let r = Command::new(build)
            .arg("publish")
            .arg(&tree)
            .arg(&out)
            .output()
            .expect("publish");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        tree
    }

    /// Serves `tree` (HTTPS and plain HTTP on one port) until dropped.
    pub fn serve(build: &str, tree: &Path) -> ImageServer {
        use std::io::BufRead;
        let mut child = Command::new(build)
            .arg("serve")
            .arg(tree)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let second = lines.next().and_then(Result::ok).unwrap_or_default();
        let port: u16 = first
            .split("https://127.0.0.1:")
            .nth(1)
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        let cert = PathBuf::from(second.split_whitespace().nth(1).unwrap_or_default());
        assert!(cert.is_file(), "{second}");
        ImageServer { child, port, cert }
    }
}

/// Lazily unmounts every mount at or below `dir` (deepest first): what a test's daemon left
/// mounted there (overlays, image mounts, incusd's shmounts), so the directory can go.
pub fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut under: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes spaces and the like as \ooo; test directories have none
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in under {
        let _ = Command::new("umount").arg("-l").arg(&m).output();
    }
}

/// A private incusd for the test: its own INCUS_DIR and client config in a temporary directory,
/// so neither the host's Incus state (a database left damaged by a killed incusd, a running
/// daemon) nor another test touches it. A dir pool and the default profile's root disk; stopped,
/// unmounted and removed at the end.
pub struct PrivateIncusd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateIncusd {
    pub fn up() -> PrivateIncusd {
        let dir = tempfile::tempdir().expect("tempdir");
        // incusd's containers live under INCUS_DIR: the monitor and the container's root must
        // reach them
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .expect("chmod");
        let mut incusd = PrivateIncusd { dir, child: None };
        let child = incusd
            .daemon(&["--group", "incus-admin"])
            .arg(format!(
                "--logfile={}",
                incusd.dir.path().join("incusd.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start incusd");
        incusd.child = Some(child);
        let ready = incusd.daemon(&["waitready", "--timeout=60"]).output();
        assert!(
            ready.as_ref().is_ok_and(|o| o.status.success()),
            "incusd did not come up: {:?} {}",
            ready
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
            std::fs::read_to_string(incusd.dir.path().join("incusd.log")).unwrap_or_default()
        );
        incusd.ok(&["storage", "create", "default", "dir"]);
        incusd.ok(&[
            "profile",
            "device",
            "add",
            "default",
            "root",
            "disk",
            "path=/",
            "pool=default",
        ]);
        incusd
    }

    /// `/usr/libexec/incus/incusd` with `args`, on this daemon's directory
    pub fn daemon(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/libexec/incus/incusd");
        c.args(args).env("INCUS_DIR", self.dir.path()).env(
            "PATH",
            format!(
                "/usr/libexec/incus:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        c
    }

    /// the incus client on this daemon, with its own client config (remotes, pinned certs)
    pub fn client(&self, args: &[&str]) -> Command {
        let mut c = Command::new("incus");
        c.args(args)
            .env("INCUS_DIR", self.dir.path())
            .env("INCUS_CONF", self.conf());
        c
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// runs the client and returns its stdout; panics with its output when it fails
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.client(args).output().expect("incus");
        assert!(
            o.status.success(),
            "incus {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for PrivateIncusd {
    fn drop(&mut self) {
        let _ = self.daemon(&["shutdown", "--timeout=30"]).output();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // what incusd left mounted under its directory (shmounts, guestapi, a container's rootfs)
        unmount_under(self.dir.path());
    }
}
