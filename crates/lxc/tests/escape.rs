//! Escape and abuse attempts from inside a container, run as its root (privileged, and where both
//! apply unprivileged too, the `_unprivileged` twins): each must fail
//! with the error that proves warren's policy refused it (EPERM from seccomp or the devices
//! cgroup, EROFS from a read-only mount, ESRCH from the pid namespace), not the error this kernel
//! gives for a missing feature. The probe is the host's python3, seen through a read-only /usr.

use warren_testutil::{require_root, unique_name, Lxc};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

/// Start a busybox container (warren's template: common.conf, seccomp, caps, devices) and run a
/// python probe in it; returns its stdout.
fn probe(test: &str, script: &str) -> Option<String> {
    probe_in(test, script, false)
}

/// `probe`, in an unprivileged container (idmap 0 100000 65536, warren's userns.conf) when asked:
/// each attempt that applies to both kinds is one `*_attempt` function run both ways.
fn probe_in(test: &str, script: &str, unprivileged: bool) -> Option<String> {
    if !require_root(test) {
        return None;
    }
    let lxc = Lxc::new(BIN);
    let name = unique_name("esc");
    let userns: &[&str] = if unprivileged {
        &[
            "lxc.include = /usr/share/warren/config/userns.conf",
            "lxc.idmap = u 0 100000 65536",
            "lxc.idmap = g 0 100000 65536",
        ]
    } else {
        &[]
    };
    lxc.busybox_with_host_usr(&name, userns);
    lxc.ok("start", &["-n", &name]);
    let prelude = "import os, ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                   def sc(nr, *a):\n    r = libc.syscall(nr, *a)\n    return errno.errorcode.get(ctypes.get_errno()) if r == -1 else 'OK'\n\
                   def tryio(f):\n    try:\n        f()\n        return 'OK'\n    except OSError as e:\n        return errno.errorcode.get(e.errno)\n\
                   def mnt(s, t, f, fl, d=None):\n    r = libc.mount(s and s.encode(), t.encode(), f and f.encode(), ctypes.c_ulong(fl), d and d.encode())\n    return errno.errorcode.get(ctypes.get_errno()) if r == -1 else 'OK'\n\
                   def umnt(t, fl=0):\n    r = libc.umount2(t.encode(), fl)\n    return errno.errorcode.get(ctypes.get_errno()) if r == -1 else 'OK'\n\
                   MS_RDONLY, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 32, 4096, 8192, 16384\n";
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "/usr/bin/python3",
            "-c",
            &format!("{prelude}{script}"),
        ],
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    Some(out.trim().to_string())
}

// x86_64 syscall numbers
const INIT_MODULE: i64 = 175;
const DELETE_MODULE: i64 = 176;
const KEXEC_LOAD: i64 = 246;
const OPEN_BY_HANDLE_AT: i64 = 304;
const FINIT_MODULE: i64 = 313;

fn loading_a_kernel_module_is_refused_by_seccomp_attempt(test: &str, unprivileged: bool) {
    // without the filter this kernel (no module support) would answer ENOSYS
    let script = format!("print(sc({INIT_MODULE}, 0, 0, 0), sc({FINIT_MODULE}, -1, 0, 0), sc({DELETE_MODULE}, b'x', 0))");
    if let Some(out) = probe_in(test, &script, unprivileged) {
        assert_eq!(out, "EPERM EPERM EPERM");
    }
}

fn kexec_is_refused_by_seccomp_attempt(test: &str, unprivileged: bool) {
    // this kernel has no kexec: without the filter the answer would be ENOSYS
    let script = format!("print(sc({KEXEC_LOAD}, 0, 0, 0, 0))");
    if let Some(out) = probe_in(test, &script, unprivileged) {
        assert_eq!(out, "EPERM");
    }
}

fn open_by_handle_at_is_refused_by_seccomp_attempt(test: &str, unprivileged: bool) {
    // without the filter a bad mount fd gives EBADF
    let script = format!("print(sc({OPEN_BY_HANDLE_AT}, -1, 0, 0))");
    if let Some(out) = probe_in(test, &script, unprivileged) {
        assert_eq!(out, "EPERM");
    }
}

fn host_tunables_in_proc_sys_are_read_only_attempt(test: &str, unprivileged: bool) {
    let script = "print(tryio(lambda: open('/proc/sys/kernel/panic', 'w').write('1')), \
                  tryio(lambda: open('/proc/sys/vm/drop_caches', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        assert_eq!(out, "EROFS EROFS");
    }
}

#[test]
fn sysrq_trigger_is_read_only() {
    // this kernel may lack sysrq altogether: then the file is absent inside as on the host
    let host_has = std::path::Path::new("/proc/sysrq-trigger").exists();
    let script = "print(tryio(lambda: open('/proc/sysrq-trigger', 'w').write('h')))";
    if let Some(out) = probe("sysrq_trigger_is_read_only", script) {
        assert_eq!(out, if host_has { "EROFS" } else { "ENOENT" });
    }
}

fn sys_kernel_is_read_only_attempt(test: &str, unprivileged: bool) {
    let script = "print(tryio(lambda: open('/sys/kernel/profiling', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        assert_eq!(out, "EROFS");
    }
}

#[test]
fn a_created_device_node_cannot_be_opened() {
    // /dev/kmsg (1:11): the host's root can open it; the devices cgroup must refuse it here
    if !std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        eprintln!("skipping a_created_device_node_cannot_be_opened: no v1 devices controller (cgroup2 needs an eBPF device program)");
        return;
    }
    let script = "os.mknod('/tmp/kmsg', 0o600 | 0o020000, os.makedev(1, 11))\n\
                  print(tryio(lambda: os.open('/tmp/kmsg', os.O_RDONLY)))";
    if let Some(out) = probe("a_created_device_node_cannot_be_opened", script) {
        assert_eq!(out, "EPERM");
    }
}

fn host_processes_cannot_be_ptraced_attempt(test: &str, unprivileged: bool) {
    // the test's own pid is a host process: invisible in the container's pid namespace
    let me = std::process::id();
    let script = format!("print(sc(101, 16, {me}, 0, 0))");
    if let Some(out) = probe_in(test, &script, unprivileged) {
        assert_eq!(out, "ESRCH");
    }
}

fn no_host_descriptor_reaches_the_container_attempt(test: &str, unprivileged: bool) {
    // init holds exactly its console on 0-2; the attached probe exactly its stdio (and the
    // descriptor listing its own fd directory)
    let script = "print(sorted(os.listdir('/proc/1/fd')), len(os.listdir('/proc/self/fd')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        assert_eq!(out, "['0', '1', '2'] 4");
    }
}

fn hostname_and_time_of_the_host_cannot_be_changed_attempt(test: &str, unprivileged: bool) {
    // sethostname changes only the container's uts namespace; settimeofday needs CAP_SYS_TIME
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let script = "print(sc(170, b'evil', 4), sc(227, 0, b'\\x00' * 16))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        assert_eq!(out, "OK EPERM");
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname"),
            before
        );
    }
}

#[test]
fn capabilities_are_dropped_for_init_and_attached_processes() {
    let script = "def bnd(pid):\n    for l in open(f'/proc/{pid}/status'):\n        if l.startswith('CapBnd'):\n            return int(l.split()[1], 16)\n\
                  print(*[bool(bnd(p) & (1 << c)) for p in ('1', 'self') for c in (16, 25, 17)])";
    if let Some(out) = probe(
        "capabilities_are_dropped_for_init_and_attached_processes",
        script,
    ) {
        // sys_module (16), sys_time (25), sys_rawio (17): gone from both bounding sets
        assert_eq!(out, "False False False False False False");
    }
}

#[test]
fn raising_the_memory_limit_inside_does_not_raise_the_containers_limit() {
    if !require_root("raising_the_memory_limit_inside_does_not_raise_the_containers_limit") {
        return;
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let lxc = Lxc::new(BIN);
    let name = unique_name("lim");
    let (key, inside, file) = if v1 {
        (
            "lxc.cgroup.memory.limit_in_bytes = 64M",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "memory.limit_in_bytes",
        )
    } else {
        (
            "lxc.cgroup2.memory.max = 67108864",
            "/sys/fs/cgroup/memory.max",
            "memory.max",
        )
    };
    lxc.busybox(&name, &[key]);
    lxc.ok("start", &["-n", &name]);
    let _ = lxc.run(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            &format!("echo 1073741824 > {inside}"),
        ],
    );
    // the container's cgroup, as the host sees it, still has its limit
    let outer: Vec<_> = warren_testutil::cgroups_named(&format!("warren.payload.{name}"))
        .into_iter()
        .filter(|p| p.join(file).exists())
        .collect();
    assert_eq!(outer.len(), 1, "{outer:?}");
    assert_eq!(
        std::fs::read_to_string(outer[0].join(file))
            .expect("limit")
            .trim(),
        "67108864"
    );
    // and nothing above the container's own cgroup is reachable from inside
    let up = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            &format!("ls $(dirname {inside})/.. | grep -c warren.payload || true"),
        ],
    );
    assert_eq!(up.trim(), "0");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn cgroup2_device_rules_are_enforced_by_an_ebpf_program() {
    if !require_root("cgroup2_device_rules_are_enforced_by_an_ebpf_program") {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists()
    {
        panic!("no cgroup2 hierarchy on this host");
    }
    // the v1 list of common.conf cleared, so only the eBPF program (lxc.cgroup2.devices.*) decides
    let lxc = Lxc::new(BIN);
    let name = unique_name("bpf");
    lxc.busybox_with_host_usr(
        &name,
        &[
            "lxc.cgroup.devices.deny =",
            "lxc.cgroup2.devices.deny = a",
            "lxc.cgroup2.devices.allow = c *:* m",
            "lxc.cgroup2.devices.allow = c 1:3 rwm",
            "lxc.cgroup2.devices.allow = c 1:5 rwm",
            "lxc.cgroup2.devices.allow = c 1:9 rwm",
            "lxc.cgroup2.devices.allow = c 5:* rwm",
            "lxc.cgroup2.devices.allow = c 136:* rwm",
        ],
    );
    lxc.ok("start", &["-n", &name]);
    let script = "import os, errno\n\
                  def tryio(f):\n    try:\n        f()\n        return 'OK'\n    except OSError as e:\n        return errno.errorcode.get(e.errno)\n\
                  os.mknod('/tmp/kmsg', 0o600 | 0o020000, os.makedev(1, 11))\n\
                  print(tryio(lambda: os.open('/tmp/kmsg', os.O_RDONLY)), tryio(lambda: os.open('/dev/null', os.O_RDWR)))";
    let out = lxc.ok(
        "attach",
        &["-n", &name, "--", "/usr/bin/python3", "-c", script],
    );
    assert_eq!(out.trim(), "EPERM OK");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn loading_a_kernel_module_is_refused_by_seccomp() {
    loading_a_kernel_module_is_refused_by_seccomp_attempt(
        "loading_a_kernel_module_is_refused_by_seccomp",
        false,
    );
}

#[test]
fn loading_a_kernel_module_is_refused_by_seccomp_unprivileged() {
    loading_a_kernel_module_is_refused_by_seccomp_attempt(
        "loading_a_kernel_module_is_refused_by_seccomp_unprivileged",
        true,
    );
}

#[test]
fn kexec_is_refused_by_seccomp() {
    kexec_is_refused_by_seccomp_attempt("kexec_is_refused_by_seccomp", false);
}

#[test]
fn kexec_is_refused_by_seccomp_unprivileged() {
    kexec_is_refused_by_seccomp_attempt("kexec_is_refused_by_seccomp_unprivileged", true);
}

#[test]
fn open_by_handle_at_is_refused_by_seccomp() {
    open_by_handle_at_is_refused_by_seccomp_attempt(
        "open_by_handle_at_is_refused_by_seccomp",
        false,
    );
}

#[test]
fn open_by_handle_at_is_refused_by_seccomp_unprivileged() {
    open_by_handle_at_is_refused_by_seccomp_attempt(
        "open_by_handle_at_is_refused_by_seccomp_unprivileged",
        true,
    );
}

#[test]
fn host_tunables_in_proc_sys_are_read_only() {
    host_tunables_in_proc_sys_are_read_only_attempt(
        "host_tunables_in_proc_sys_are_read_only",
        false,
    );
}

#[test]
fn host_tunables_in_proc_sys_are_read_only_unprivileged() {
    host_tunables_in_proc_sys_are_read_only_attempt(
        "host_tunables_in_proc_sys_are_read_only_unprivileged",
        true,
    );
}

#[test]
fn sys_kernel_is_read_only() {
    sys_kernel_is_read_only_attempt("sys_kernel_is_read_only", false);
}

#[test]
fn sys_kernel_is_read_only_unprivileged() {
    sys_kernel_is_read_only_attempt("sys_kernel_is_read_only_unprivileged", true);
}

#[test]
fn host_processes_cannot_be_ptraced() {
    host_processes_cannot_be_ptraced_attempt("host_processes_cannot_be_ptraced", false);
}

#[test]
fn host_processes_cannot_be_ptraced_unprivileged() {
    host_processes_cannot_be_ptraced_attempt("host_processes_cannot_be_ptraced_unprivileged", true);
}

#[test]
fn no_host_descriptor_reaches_the_container() {
    no_host_descriptor_reaches_the_container_attempt(
        "no_host_descriptor_reaches_the_container",
        false,
    );
}

#[test]
fn no_host_descriptor_reaches_the_container_unprivileged() {
    no_host_descriptor_reaches_the_container_attempt(
        "no_host_descriptor_reaches_the_container_unprivileged",
        true,
    );
}

#[test]
fn hostname_and_time_of_the_host_cannot_be_changed() {
    hostname_and_time_of_the_host_cannot_be_changed_attempt(
        "hostname_and_time_of_the_host_cannot_be_changed",
        false,
    );
}

#[test]
fn hostname_and_time_of_the_host_cannot_be_changed_unprivileged() {
    hostname_and_time_of_the_host_cannot_be_changed_attempt(
        "hostname_and_time_of_the_host_cannot_be_changed_unprivileged",
        true,
    );
}

// Mounts. A privileged container's mount calls are judged by warren's mount guard (seccomp user
// notification, carried out by the monitor): refused with EPERM. In an unprivileged container
// the read-only binds and masks are the container's own mounts (made inside its user
// namespace), which its root may take apart, as in LXC; what keeps the host's tunables safe
// there is the kernel: sysctls refuse a root that is not the host's (EACCES) and a sysfs
// superblock mounted read-only stays so (EROFS).

fn remounting_sys_read_write_is_refused_attempt(test: &str, unprivileged: bool) {
    let script = "print(mnt(None, '/sys', None, MS_REMOUNT | MS_BIND), \
                  mnt(None, '/sys', None, MS_REMOUNT), \
                  tryio(lambda: open('/sys/kernel/profiling', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        let want = if unprivileged {
            "OK EPERM EROFS"
        } else {
            "EPERM EPERM EROFS"
        };
        assert_eq!(out, want);
    }
}

#[test]
fn remounting_sys_read_write_is_refused() {
    remounting_sys_read_write_is_refused_attempt("remounting_sys_read_write_is_refused", false);
}

#[test]
fn remounting_sys_read_write_is_refused_unprivileged() {
    remounting_sys_read_write_is_refused_attempt(
        "remounting_sys_read_write_is_refused_unprivileged",
        true,
    );
}

fn remounting_proc_sys_read_write_is_refused_attempt(test: &str, unprivileged: bool) {
    let script = "print(mnt(None, '/proc/sys', None, MS_REMOUNT | MS_BIND), \
                  tryio(lambda: open('/proc/sys/kernel/panic', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        let want = if unprivileged {
            "OK EACCES"
        } else {
            "EPERM EROFS"
        };
        assert_eq!(out, want);
    }
}

#[test]
fn remounting_proc_sys_read_write_is_refused() {
    remounting_proc_sys_read_write_is_refused_attempt(
        "remounting_proc_sys_read_write_is_refused",
        false,
    );
}

#[test]
fn remounting_proc_sys_read_write_is_refused_unprivileged() {
    remounting_proc_sys_read_write_is_refused_attempt(
        "remounting_proc_sys_read_write_is_refused_unprivileged",
        true,
    );
}

fn a_fresh_proc_or_sysfs_mount_is_refused_attempt(test: &str, unprivileged: bool) {
    let script = "os.makedirs('/tmp/p', exist_ok=True)\n\
                  print(mnt('proc', '/tmp/p', 'proc', 0), mnt('sysfs', '/tmp/p', 'sysfs', 0), \
                  tryio(lambda: open('/tmp/p/sys/kernel/panic', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        // privileged: nothing got mounted, the path to write through does not exist
        let want = if unprivileged {
            "OK EPERM EACCES"
        } else {
            "EPERM EPERM ENOENT"
        };
        assert_eq!(out, want);
    }
}

#[test]
fn a_fresh_proc_or_sysfs_mount_is_refused() {
    a_fresh_proc_or_sysfs_mount_is_refused_attempt("a_fresh_proc_or_sysfs_mount_is_refused", false);
}

#[test]
fn a_fresh_proc_or_sysfs_mount_is_refused_unprivileged() {
    a_fresh_proc_or_sysfs_mount_is_refused_attempt(
        "a_fresh_proc_or_sysfs_mount_is_refused_unprivileged",
        true,
    );
}

fn masks_cannot_be_unmounted_or_dropped_attempt(test: &str, unprivileged: bool) {
    // unmount the read-only /proc/sys; bind /proc without the mounts stacked on it
    let script = "os.makedirs('/tmp/p', exist_ok=True)\n\
                  print(umnt('/proc/sys', 2), umnt('/sys/fs/cgroup', 2), mnt('/proc', '/tmp/p', None, MS_BIND), \
                  tryio(lambda: open('/tmp/p/sys/kernel/panic', 'w').write('1')))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        let want = if unprivileged {
            "OK OK OK EACCES"
        } else {
            // nothing bound: the path to write through does not exist
            "EPERM EPERM EPERM ENOENT"
        };
        assert_eq!(out, want);
    }
}

#[test]
fn masks_cannot_be_unmounted_or_dropped() {
    masks_cannot_be_unmounted_or_dropped_attempt("masks_cannot_be_unmounted_or_dropped", false);
}

#[test]
fn masks_cannot_be_unmounted_or_dropped_unprivileged() {
    masks_cannot_be_unmounted_or_dropped_attempt(
        "masks_cannot_be_unmounted_or_dropped_unprivileged",
        true,
    );
}

fn the_hosts_block_device_cannot_be_mounted_attempt(test: &str, unprivileged: bool) {
    // the disk under the rootfs: mounted on the host already, so the kernel itself would not
    // even open it again; the guard opens it under the container's device policy first
    let script = "import stat\n\
                  d = os.stat('/').st_dev\n\
                  fs = [l.split()[2] for l in open('/proc/mounts') if l.split()[1] == '/'][-1]\n\
                  os.makedirs('/tmp/b', exist_ok=True)\n\
                  if os.major(d) == 0:\n    print('NOBLOCK')\n\
                  else:\n\
                  \x20   r = tryio(lambda: os.mknod('/tmp/disk', 0o600 | stat.S_IFBLK, d))\n\
                  \x20   print(r if r != 'OK' else mnt('/tmp/disk', '/tmp/b', fs, MS_RDONLY))";
    if let Some(out) = probe_in(test, script, unprivileged) {
        if out == "NOBLOCK" {
            eprintln!("{test}: the rootfs is not on a block device here; nothing to try");
            return;
        }
        // privileged: the device policy refuses the open; unprivileged: no device nodes at all
        assert_eq!(out, "EPERM");
    }
}

#[test]
fn the_hosts_block_device_cannot_be_mounted() {
    the_hosts_block_device_cannot_be_mounted_attempt(
        "the_hosts_block_device_cannot_be_mounted",
        false,
    );
}

#[test]
fn the_hosts_block_device_cannot_be_mounted_unprivileged() {
    the_hosts_block_device_cannot_be_mounted_attempt(
        "the_hosts_block_device_cannot_be_mounted_unprivileged",
        true,
    );
}

#[test]
fn the_new_mount_api_is_refused_in_a_privileged_container() {
    // fsopen(2): callers fall back to mount(2), which the guard judges
    let script = "print(sc(430, b'proc', 0))";
    if let Some(out) = probe(
        "the_new_mount_api_is_refused_in_a_privileged_container",
        script,
    ) {
        assert_eq!(out, "ENOSYS");
    }
}

#[test]
fn ordinary_mounts_still_work_in_a_privileged_container() {
    // what a system container's root does every day: tmpfs, binds, a recursive bind of /proc
    // (masks and all), a read-only remount of its own root and back
    let script = "for d in ('/tmp/t', '/tmp/p', '/tmp/m'):\n    os.makedirs(d, exist_ok=True)\n\
                  r = [mnt('tmpfs', '/tmp/t', 'tmpfs', 0, 'size=1m'), tryio(lambda: open('/tmp/t/x', 'w').write('x')),\n\
                  \x20    mnt('/tmp/t', '/tmp/m', None, MS_BIND), umnt('/tmp/m'), umnt('/tmp/t'),\n\
                  \x20    mnt('/proc', '/tmp/p', None, MS_BIND | MS_REC),\n\
                  \x20    tryio(lambda: open('/tmp/p/sys/kernel/panic', 'w').write('1')), umnt('/tmp/p', 2),\n\
                  \x20    mnt(None, '/', None, MS_REMOUNT | MS_RDONLY), tryio(lambda: open('/x', 'w')),\n\
                  \x20    mnt(None, '/', None, MS_REMOUNT), tryio(lambda: open('/x', 'w'))]\n\
                  print(' '.join(r))";
    if let Some(out) = probe(
        "ordinary_mounts_still_work_in_a_privileged_container",
        script,
    ) {
        assert_eq!(out, "OK OK OK OK OK OK EROFS OK OK EROFS OK OK");
    }
}

#[test]
fn a_pid_only_proc_shows_the_containers_processes_not_the_hosts() {
    // the guard mounts in the caller's pid namespace: a proc of the host's would show host
    // processes and their roots
    let script = "os.makedirs('/tmp/pp', exist_ok=True)\n\
                  r = mnt('proc', '/tmp/pp', 'proc', 0, 'subset=pid')\n\
                  pids = [d for d in os.listdir('/tmp/pp') if d.isdigit()] if r == 'OK' else []\n\
                  print(r, len(pids) < 20, os.path.exists('/tmp/pp/%d' % os.getpid()))";
    if let Some(out) = probe(
        "a_pid_only_proc_shows_the_containers_processes_not_the_hosts",
        script,
    ) {
        assert_eq!(out, "OK True True");
    }
}

#[test]
fn a_move_that_is_really_a_bind_of_proc_is_refused() {
    // MS_MOVE|MS_BIND is a bind for the kernel: a non-recursive one, without the masks
    let script = "os.makedirs('/tmp/p', exist_ok=True)\n\
                  print(mnt('/proc', '/tmp/p', None, MS_MOVE | MS_BIND), \
                  tryio(lambda: open('/tmp/p/sys/kernel/panic', 'w').write('1')))";
    if let Some(out) = probe("a_move_that_is_really_a_bind_of_proc_is_refused", script) {
        assert_eq!(out, "EPERM ENOENT");
    }
}

#[test]
fn a_cgroup_release_agent_cannot_be_set() {
    // release_agent runs as host root: only the host's cgroup namespace may set it
    let script = "os.makedirs('/tmp/c', exist_ok=True)\n\
                  r = mnt('cgroup', '/tmp/c', 'cgroup', 0, 'none,name=wx,release_agent=/tmp/x')\n\
                  print(r)";
    if let Some(out) = probe("a_cgroup_release_agent_cannot_be_set", script) {
        // the kernel's refusal: the mount is made in the container's cgroup namespace
        assert_eq!(out, "EPERM");
    }
}

#[test]
fn proc_self_paths_cannot_climb_to_the_hosts_proc() {
    let script = "os.makedirs('/tmp/t', exist_ok=True)\n\
                  print(mnt('tmpfs', '/proc/self/../1/root/tmp', 'tmpfs', 0))";
    if let Some(out) = probe("proc_self_paths_cannot_climb_to_the_hosts_proc", script) {
        assert_eq!(out, "EPERM");
    }
}
