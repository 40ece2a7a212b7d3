//! Containers: made from a unified image into `$WARREN_DIR/containers/<name>` (an LXC container
//! directory: `config` and `rootfs/`), run by warren-lxc's monitor model so that they outlive
//! warrend, unprivileged by default with warrend's own id range.

use crate::db::{Image, Instance, Profile};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use warren_runtime::proto::{self, InitInfo};

/// warrend's id range for unprivileged containers (Incus's default), distinct from warren-lxc's.
pub const IDMAP_BASE: u64 = 1_000_000;
pub const IDMAP_SIZE: u64 = 1_000_000_000;

pub fn lxcpath(dir: &Path) -> PathBuf {
    dir.join("containers")
}

/// The warren-lxc binary: beside warrend, else $WARREN_LXC, else on PATH.
pub fn warren_lxc() -> PathBuf {
    if let Some(p) = std::env::var_os("WARREN_LXC") {
        return PathBuf::from(p);
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("warren-lxc")))
    {
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from("warren-lxc")
}

fn lxc(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(warren_lxc())
        .arg(args[0])
        .arg("-P")
        .arg(lxcpath(dir))
        .args(&args[1..])
        .env("WARREN_LXC_DEFAULT_CONF", "/dev/null")
        .output()
        .map_err(|e| format!("warren-lxc: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .last()
            .unwrap_or("warren-lxc failed")
            .trim_start_matches("error: ")
            .to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes cgroup setting `key` (an LXC key: `lxc.cgroup2.memory.max`) of the running container
/// (`warren-lxc cgroup`).
pub fn set_cgroup(dir: &Path, name: &str, key: &str, value: &str) -> Result<(), String> {
    lxc(dir, &["cgroup", "-n", name, key, value]).map(|_| ())
}

/// What the container's monitor says about it (None: not running), asked over its socket
/// directly: `list` asks this for every instance, and a process per question would cost more.
pub fn live(dir: &Path, name: &str) -> Option<InitInfo> {
    match proto::call(&lxcpath(dir), name, &proto::Request::Info) {
        Ok(Some((resp, _))) if resp.ok => resp.info,
        _ => None,
    }
}

/// RUNNING, STOPPED, FROZEN... as the monitor reports it.
pub fn state(dir: &Path, name: &str) -> String {
    live(dir, name)
        .and_then(|i| i.state)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "STOPPED".into())
}

/// The console's ring buffer (empty when the container isn't running).
pub fn console_log(dir: &Path, name: &str) -> Vec<u8> {
    if state(dir, name) != "RUNNING" {
        return Vec::new();
    }
    Command::new(warren_lxc())
        .arg("console")
        .arg("-P")
        .arg(lxcpath(dir))
        .args(["-n", name, "--log"])
        .env("WARREN_LXC_DEFAULT_CONF", "/dev/null")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default()
}

/// `security.privileged`, from the instance or its profiles.
pub fn is_privileged(profiles: &[Profile], inst: &Instance) -> bool {
    expanded(profiles, inst, "config")
        .get("security.privileged")
        .and_then(Value::as_str)
        == Some("true")
}

/// `project`: the instance's project, whose restrictions pin its disks (see
/// [`crate::restrictions::pin_disks`]).
pub fn start(
    dir: &Path,
    profiles: &[Profile],
    inst: &Instance,
    project: Option<&crate::db::Project>,
) -> Result<(), String> {
    let name = inst.name.as_str();
    let cdir = lxcpath(dir).join(name);
    crate::rootfs::ensure(&cdir)?;
    crate::rootfs::reconcile(&cdir, is_privileged(profiles, inst))?;
    render_templates(&cdir, inst, "start")?;
    // from the profiles as they are now (a profile may have changed since the last start)
    rewrite_config(dir, profiles, inst)?;
    if let Some(p) = project {
        crate::restrictions::pin_disks(dir, p, inst, &expanded_devices(profiles, inst))?;
    }
    make_device_nodes(
        dir,
        name,
        &expanded_devices(profiles, inst),
        is_privileged(profiles, inst),
    )?;
    lxc(dir, &["start", "-n", name]).map(|_| ())
}

pub fn stop(dir: &Path, name: &str, force: bool, timeout: i64) -> Result<(), String> {
    if state(dir, name) == "STOPPED" {
        return Err("The instance is already stopped".into());
    }
    if force {
        lxc(dir, &["stop", "-n", name, "-k"]).map(|_| ())
    } else {
        let t = if timeout < 0 { 30 } else { timeout };
        lxc(dir, &["stop", "-n", name, "-t", &t.to_string()]).map(|_| ())
    }
}

/// A name Incus accepts for an instance: a hostname label.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.chars().next().is_some_and(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid instance name \"{name}\": a hostname label (letters, digits and '-', not starting with a digit)"))
    }
}

/// Progress of one step of a create, reported as its share (`from`..`to` percent) of the whole,
/// and only when the figure changes.
struct Progress<'a> {
    report: &'a dyn Fn(u8),
    last: std::cell::Cell<u8>,
}

impl Progress<'_> {
    fn at(&self, percent: u8) {
        if percent != self.last.get() {
            self.last.set(percent);
            (self.report)(percent);
        }
    }

    /// `done` of `total` within the step `from`..`to`.
    fn step(&self, from: u8, to: u8, done: u64, total: u64) {
        let share = (done.min(total) * u64::from(to - from))
            .checked_div(total)
            .unwrap_or(0);
        self.at(from + share as u8);
    }
}

/// Makes the container: unpacks the image's rootfs, renders its create templates, writes the
/// config. Everything made is removed again if a step fails.
/// `progress(percent)` is told how far the image's unpacking went (the operation shows it).
pub fn create(
    dir: &Path,
    profiles: &[Profile],
    inst: &Instance,
    image: &Image,
    progress: &dyn Fn(u8),
) -> Result<(), String> {
    let progress = Progress {
        report: progress,
        last: std::cell::Cell::new(u8::MAX),
    };
    let cdir = lxcpath(dir).join(&inst.name);
    if cdir.exists() {
        return Err(format!("Instance \"{}\" already exists", inst.api_name()));
    }
    std::fs::create_dir_all(&cdir).map_err(|e| e.to_string())?;
    let made = (|| -> Result<(), String> {
        // a unified image is the container directory (rootfs/, metadata.yaml, templates/): it is
        // unpacked once, and each container's rootfs is an overlay on that tree's (a copy where
        // overlayfs can't be used)
        progress.at(0);
        let squashfs = squashfs_of(dir, &image.fingerprint);
        // a unified tarball's unpacking is most of the work; a split image's metadata, little
        let unpack_to = if squashfs.is_some() { 5 } else { 60 };
        let tree = unpacked_image(dir, &image.fingerprint, &|done, total| {
            progress.step(0, unpack_to, done, total)
        })?;
        progress.at(unpack_to);
        if !tree.join("rootfs").is_dir() && squashfs.is_none() {
            return Err("The image has no rootfs".into());
        }
        copy_metadata(&tree, &cdir)?;
        let privileged = is_privileged(profiles, inst);
        // a split image: its squashfs mounted (idmapped for an unprivileged container) is the
        // overlay's lower layer, where this kernel can
        let mounted = squashfs
            .as_ref()
            .filter(|sq| worth_mounting(sq))
            .and_then(|sq| {
                crate::imagemount::mount_image(
                    &dir.join("images"),
                    &image.fingerprint,
                    sq,
                    !privileged,
                )
                .map_err(|e| crate::log::debug(&format!("image mount not used: {e}")))
                .ok()
                .map(|lower| (lower, sq.clone()))
            });
        let on_mount = match &mounted {
            Some((lower, sq)) => crate::rootfs::make_overlay(
                &cdir,
                lower,
                &image.fingerprint,
                !privileged,
                Some(sq),
            )?,
            None => false,
        };
        if !on_mount {
            // an overlay can't be idmapped: an unprivileged container stands on a shifted copy,
            // made straight from the squashfs of a split image, else from the tree
            let lower = if privileged {
                tree_rootfs(dir, &image.fingerprint, &tree)?
            } else {
                crate::rootfs::shifted_image(&dir.join("images"), &image.fingerprint, |dest| {
                    match &squashfs {
                        Some(sq) => {
                            // a small one is unpacked before a figure would show
                            let big = std::fs::metadata(sq).is_ok_and(|m| m.len() >= 16 << 20);
                            let report = |p| progress.step(unpack_to, 95, p, 100);
                            unsquash(sq, dest, big.then_some(&report as &dyn Fn(u64)))
                        }
                        None => {
                            std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
                            copy_tree(&tree.join("rootfs"), dest)
                        }
                    }
                })?
            };
            progress.at(95);
            if !crate::rootfs::make_overlay(&cdir, &lower, &image.fingerprint, !privileged, None)? {
                std::fs::create_dir_all(cdir.join("rootfs")).map_err(|e| e.to_string())?;
                copy_tree(
                    &tree_rootfs(dir, &image.fingerprint, &tree)?,
                    &cdir.join("rootfs"),
                )?;
            }
        }
        progress.at(100);
        render_templates(&cdir, inst, "create")?;
        let _ = warren_lxc_config::install_shipped_configs(Path::new(
            warren_lxc_config::WARREN_CONFIG_DIR,
        ));
        std::fs::write(
            cdir.join("config"),
            lxc_config(
                dir,
                inst,
                &expanded_devices(profiles, inst),
                is_privileged(profiles, inst),
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    })();
    if let Err(e) = made {
        crate::rootfs::unmount(&cdir);
        let _ = std::fs::remove_dir_all(&cdir);
        return Err(e);
    }
    Ok(())
}

/// The image's metadata.yaml and templates/ (flat files) into the container's directory.
fn copy_metadata(tree: &Path, cdir: &Path) -> Result<(), String> {
    let meta = tree.join("metadata.yaml");
    if meta.is_file() {
        std::fs::copy(&meta, cdir.join("metadata.yaml")).map_err(|e| e.to_string())?;
    }
    let templates = tree.join("templates");
    if templates.is_dir() {
        let to = cdir.join("templates");
        std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
        for e in std::fs::read_dir(&templates)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::copy(e.path(), to.join(e.file_name())).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// The image unpacked in `images/<fingerprint>.tree`, made on first use (staged and renamed, so
/// a half-unpacked tree is never used).
fn unpacked_image(
    dir: &Path,
    fingerprint: &str,
    progress: &dyn Fn(u64, u64),
) -> Result<PathBuf, String> {
    let images = dir.join("images");
    let tree = images.join(format!("{fingerprint}.tree"));
    if tree.is_dir() {
        return Ok(tree);
    }
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&images)
        .map_err(|e| e.to_string())?;
    let archive = images.join(fingerprint);
    // a figure worth showing needs a tarball that takes a while (a split image's metadata
    // doesn't): only then is its size asked for (of xz, that runs `xz --list`)
    let big = std::fs::metadata(&archive).is_ok_and(|m| m.len() >= 16 << 20);
    let total = if big {
        warren_image::unpack::uncompressed_size(&archive).unwrap_or(0)
    } else {
        0
    };
    warren_image::unpack::unpack_fstree_with_progress(
        &archive,
        staging.path(),
        true,
        &mut |done| progress(done, total),
    )
    .map_err(|e| format!("Failed to unpack the image: {e:#}"))?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &tree).is_err() {
        // another create unpacked it meanwhile
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(tree)
}

/// Whether a squashfs is big enough to be mounted rather than unpacked (at least
/// `WARREND_SQUASHFS_MOUNT_MIN_MIB` MiB, 16 by default). A mount reads only what containers
/// open, where unsquashfs decompresses everything, but on several cores at once and once for
/// all: a small image, read whole by its first start, starts sooner unpacked.
fn worth_mounting(squashfs: &Path) -> bool {
    let min_mib: u64 = std::env::var("WARREND_SQUASHFS_MOUNT_MIN_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    std::fs::metadata(squashfs).is_ok_and(|m| m.len() >= min_mib << 20)
}

/// A split image's rootfs: the squashfs beside its metadata tarball.
fn squashfs_of(dir: &Path, fingerprint: &str) -> Option<PathBuf> {
    Some(dir.join("images").join(format!("{fingerprint}.rootfs"))).filter(|p| p.is_file())
}

/// Unpacks a squashfs into `dest` (which must not exist), telling `progress(percent)`, when
/// given, as unsquashfs's progress bar goes (it draws it on stdout, `\r`-separated, terminal or
/// not; without one it draws none).
pub(crate) fn unsquash(
    squashfs: &Path,
    dest: &Path,
    progress: Option<&dyn Fn(u64)>,
) -> Result<(), String> {
    use std::io::Read;
    let mut child = Command::new("unsquashfs")
        .args(if progress.is_none() {
            &["-f", "-n", "-d"][..]
        } else {
            &["-f", "-d"][..]
        })
        .arg(dest)
        .arg(squashfs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("unsquashfs: {e} (apt-get install squashfs-tools)"))?;
    let mut out = child.stdout.take().ok_or("unsquashfs: no output")?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    while let Ok(n) = out.read(&mut buf) {
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                // "[====   ]  2489/14026  17%"
                let text = String::from_utf8_lossy(&line);
                if let Some(p) = text
                    .trim_end()
                    .strip_suffix('%')
                    .and_then(|t| t.rsplit(' ').next())
                    .and_then(|p| p.parse::<u64>().ok())
                {
                    if let Some(report) = progress {
                        report(p.min(100));
                    }
                }
                line.clear();
            } else if line.len() < 512 {
                line.push(b);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("unsquashfs: {e}"))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "Failed to unpack the image's squashfs: {}",
            errors.trim()
        ));
    }
    Ok(())
}

/// The image's rootfs with its own ids (privileged containers, or a copy where overlayfs can't
/// be used): in the unified tarball's tree, or a split image's squashfs unpacked there on first
/// need (staged, then renamed).
fn tree_rootfs(dir: &Path, fingerprint: &str, tree: &Path) -> Result<PathBuf, String> {
    let rootfs = tree.join("rootfs");
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let squashfs = squashfs_of(dir, fingerprint).ok_or("The image has no rootfs")?;
    let staging = tempfile::Builder::new()
        .prefix(".rootfs-")
        .tempdir_in(tree)
        .map_err(|e| e.to_string())?;
    let dest = staging.path().join("rootfs");
    unsquash(&squashfs, &dest, None)?;
    if std::fs::rename(&dest, &rootfs).is_err() && !rootfs.is_dir() {
        return Err(format!(
            "could not put the image's rootfs at {}",
            rootfs.display()
        ));
    }
    Ok(rootfs)
}

/// `cp -a` (reflinks where the filesystem has them): owners, modes, times, xattrs, links.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .map_err(|e| format!("cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "copy the image: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Removes an image's squashfs, mounts and unpacked trees (when the image and its last
/// container are gone).
pub fn forget_image(dir: &Path, fingerprint: &str) {
    crate::imagemount::unmount_image(&dir.join("images"), fingerprint);
    let _ = std::fs::remove_file(dir.join("images").join(format!("{fingerprint}.rootfs")));
    let _ = std::fs::remove_dir_all(dir.join("images").join(format!("{fingerprint}.tree")));
    let _ = std::fs::remove_dir_all(dir.join("images").join(format!("{fingerprint}.shifted")));
}

fn lxc_config(dir: &Path, inst: &Instance, devices: &Value, privileged: bool) -> String {
    let conf = warren_lxc_config::WARREN_CONFIG_DIR;
    let mut c = format!(
        "# made by warrend for instance {}\nlxc.include = {conf}/common.conf\n",
        inst.name
    );
    if !privileged {
        c.push_str(&format!("lxc.include = {conf}/userns.conf\n"));
        c.push_str(&format!("lxc.idmap = u 0 {IDMAP_BASE} {IDMAP_SIZE}\nlxc.idmap = g 0 {IDMAP_BASE} {IDMAP_SIZE}\n"));
    }
    c.push_str(&format!(
        "lxc.rootfs.path = dir:{}\n",
        lxcpath(dir).join(&inst.name).join("rootfs").display()
    ));
    c.push_str(&format!("lxc.uts.name = {}\n", inst.api_name()));
    // nic devices (bridged onto an existing bridge), in name order; none: a network namespace
    // with loopback only
    let mut nics: Vec<(&String, &Value)> = devices
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, d)| d.get("type").and_then(Value::as_str) == Some("nic"))
                .collect()
        })
        .unwrap_or_default();
    nics.sort_by_key(|(k, _)| k.as_str());
    if nics.is_empty() {
        c.push_str("lxc.net.0.type = empty\n");
    }
    for (i, (devname, nic)) in nics.iter().enumerate() {
        let get = |k: &str| nic.get(k).and_then(Value::as_str).unwrap_or("");
        // a managed network is a bridge of the same name
        let link = if get("network").is_empty() {
            get("parent")
        } else {
            get("network")
        };
        c.push_str(&format!(
            "lxc.net.{i}.type = veth\nlxc.net.{i}.link = {link}\nlxc.net.{i}.flags = up\n"
        ));
        let ifname = if get("name").is_empty() {
            devname.as_str()
        } else {
            get("name")
        };
        c.push_str(&format!("lxc.net.{i}.name = {ifname}\n"));
        c.push_str(&format!(
            "lxc.net.{i}.hwaddr = {}\n",
            nic_hwaddr(inst, devname, nic)
        ));
        if !get("mtu").is_empty() {
            c.push_str(&format!("lxc.net.{i}.mtu = {}\n", get("mtu")));
        }
    }
    for line in disk_mount_entries(dir, devices, privileged, &inst.volumes_project) {
        c.push_str(&line);
        c.push('\n');
    }
    for line in unix_device_lines(dir, &inst.name, devices) {
        c.push_str(&line);
        c.push('\n');
    }
    // environment.* for init (exec adds them too)
    for (k, v) in environment(&inst.config) {
        c.push_str(&format!("lxc.environment = {k}={v}\n"));
    }
    if inst.config.get("security.nesting").and_then(Value::as_str) == Some("true") {
        // a runtime inside needs /sys writable and uncovered proc and sysfs mounts to show the
        // kernel before it may mount its own (LXC's nesting.conf)
        c.push_str("lxc.mount.auto = sys:rw cgroup:rw\n");
        c.push_str("lxc.mount.entry = proc dev/.lxc/proc proc create=dir,optional 0 0\n");
        c.push_str("lxc.mount.entry = sys dev/.lxc/sys sysfs create=dir,optional 0 0\n");
    }
    // systemd halts on SIGRTMIN+3; other inits (busybox, sysvinit) on LXC's default, SIGPWR
    if init_is_systemd(&lxcpath(dir).join(&inst.name).join("rootfs")) {
        c.push_str("lxc.signal.halt = SIGRTMIN+3\n");
    }
    for line in crate::config::limit_lines(&inst.config) {
        c.push_str(&line);
        c.push('\n');
    }
    if let Some(raw) = inst.config.get("raw.lxc").and_then(Value::as_str) {
        c.push_str(raw);
        c.push('\n');
    }
    c
}

/// A nic's MAC address: its own `hwaddr`, else the one warrend gave it
/// (`volatile.<device>.hwaddr`), else a random one at each start.
pub fn nic_hwaddr(inst: &Instance, device: &str, nic: &Value) -> String {
    nic.get("hwaddr")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .or_else(|| {
            inst.config
                .get(format!("volatile.{device}.hwaddr"))
                .and_then(Value::as_str)
        })
        .unwrap_or("00:16:3e:xx:xx:xx")
        .to_string()
}

/// Gives every nic of the instance (its profiles' too) without a MAC address a stable one in
/// `volatile.<device>.hwaddr`, as Incus does (a DHCP lease then survives restarts).
pub fn fill_volatile_hwaddrs(profiles: &[Profile], inst: &mut Instance) {
    let devices = expanded_devices(profiles, inst);
    let Some(map) = devices.as_object() else {
        return;
    };
    for (name, d) in map {
        let key = format!("volatile.{name}.hwaddr");
        let is_nic = d.get("type").and_then(Value::as_str) == Some("nic");
        let has_own = d
            .get("hwaddr")
            .and_then(Value::as_str)
            .is_some_and(|h| !h.is_empty());
        if is_nic && !has_own && inst.config.get(&key).is_none() {
            let mut b = [0u8; 3];
            if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
                let _ = std::io::Read::read_exact(&mut f, &mut b);
            }
            if let Some(c) = inst.config.as_object_mut() {
                c.insert(
                    key,
                    json!(format!("00:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])),
                );
            }
        }
    }
}

/// The `environment.NAME` keys of a config, as (NAME, value).
pub fn environment(config: &Value) -> Vec<(String, String)> {
    config
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.strip_prefix("environment.")?.to_string(),
                        v.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a bind disk device asks for.
struct DiskBind {
    source: String,
    target: String,
    readonly: bool,
    recursive: bool,
    optional: bool,
    /// Shown with the container's ids: `shift=true`, or a custom volume (always shifted).
    idmap: bool,
}

fn disk_bind(dir: &Path, d: &Value, privileged: bool, volumes_project: &str) -> DiskBind {
    let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let yes = |k: &str| matches!(get(k), "true" | "1" | "yes" | "on");
    // a custom volume (pool + its name) is a directory of the pool
    let volume = !get("pool").is_empty();
    DiskBind {
        source: if volume {
            crate::volumes::volume_path(dir, get("pool"), volumes_project, get("source"))
                .display()
                .to_string()
        } else {
            get("source").to_string()
        },
        target: get("path").to_string(),
        readonly: yes("readonly"),
        recursive: yes("recursive"),
        optional: get("required") == "false",
        idmap: (volume || yes("shift")) && !privileged,
    }
}

/// Pins the host-path disks (not custom volumes) of `inst` in its LXC config: each source
/// replaced by the real path it resolves to now and marked `nofollow`, which the runtime mounts
/// without following any symlink. Returns (device, source as given, real path) of each; a source
/// that doesn't resolve is left as it is (an optional disk may be missing).
pub fn pin_disk_sources(
    dir: &Path,
    inst: &Instance,
    devices: &Value,
) -> Result<Vec<(String, String, PathBuf)>, String> {
    let mut pinned = Vec::new();
    for (name, d) in bind_disks(devices) {
        let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        if !get("pool").is_empty() || get("source").is_empty() {
            continue;
        }
        let given = get("source");
        if let Ok(real) = std::fs::canonicalize(&given) {
            pinned.push((name, given, real));
        }
    }
    if pinned.is_empty() {
        return Ok(pinned);
    }
    let path = lxcpath(dir).join(&inst.name).join("config");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        // `lxc.mount.entry = SOURCE TARGET none OPTIONS 0 0`, as disk_mount_entries writes it
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pin = match fields.as_slice() {
            ["lxc.mount.entry", "=", source, target, fstype, options, rest @ ..] => pinned
                .iter()
                .find(|(_, given, _)| given == source)
                .map(|(_, _, real)| {
                    let options = if options.split(',').any(|o| o == "nofollow") {
                        options.to_string()
                    } else {
                        format!("{options},nofollow")
                    };
                    format!(
                        "lxc.mount.entry = {} {target} {fstype} {options} {}",
                        real.display(),
                        rest.join(" ")
                    )
                }),
            _ => None,
        };
        out.push_str(pin.as_deref().unwrap_or(line));
        out.push('\n');
    }
    let tmp = path.with_extension("pinned");
    std::fs::write(&tmp, out)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(pinned)
}

/// The bind disks (not the root) of expanded devices: device name → config.
fn bind_disks(devices: &Value) -> std::collections::BTreeMap<String, Value> {
    devices
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, d)| {
                    d.get("type").and_then(Value::as_str) == Some("disk")
                        && d.get("path").and_then(Value::as_str) != Some("/")
                })
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Brings a running instance's bind mounts in line with its new disk devices (`warren-lxc
/// mount`): removed or changed ones unmounted, added or changed ones mounted. On failure, what
/// was done is undone.
pub fn hotplug_disks(
    dir: &Path,
    (old_profiles, old): crate::hotplug::Side,
    (profiles, new): crate::hotplug::Side,
) -> Result<(), String> {
    let (before, after) = (
        bind_disks(&expanded_devices(old_profiles, old)),
        bind_disks(&expanded_devices(profiles, new)),
    );
    let privileged = is_privileged(profiles, new);
    let mount = |d: &Value, remove: bool| -> Result<(), String> {
        let b = disk_bind(dir, d, privileged, &new.volumes_project);
        let mut args: Vec<String> = vec!["--target".into(), b.target.clone()];
        if remove {
            args.push("--remove".into());
        } else {
            if b.optional && !Path::new(&b.source).exists() {
                return Ok(());
            }
            args.extend(["--source".into(), b.source.clone()]);
            if b.readonly {
                args.push("--readonly".into());
            }
            if b.idmap {
                args.push("--idmap".into());
            }
            if b.recursive {
                args.push("--recursive".into());
            }
            if !privileged {
                args.extend(["--owner".into(), format!("{IDMAP_BASE}:{IDMAP_BASE}")]);
            }
        }
        let mut all = vec!["mount", "-n", new.name.as_str()];
        all.extend(args.iter().map(String::as_str));
        lxc(dir, &all).map(|_| ())
    };
    crate::hotplug::reconcile(&before, &after, |name, d, add| {
        mount(d, !add).map_err(|e| format!("Device \"{name}\": {e}"))
    })
}

/// unix-char and unix-block devices: (device name, config), in name order.
fn unix_devices(devices: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = devices
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, d)| {
                    matches!(
                        d.get("type").and_then(Value::as_str),
                        Some("unix-char") | Some("unix-block")
                    )
                })
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Where warrend keeps the device nodes it makes for an instance (bound into its /dev).
fn device_nodes_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("devices").join(name)
}

/// A unix device's path in the container (`path`, else the host's `source`).
fn unix_device_path(d: &Value) -> String {
    let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    if get("path").is_empty() {
        get("source").to_string()
    } else {
        get("path").to_string()
    }
}

/// The node warrend made for each unix device, bound at its path, and the cgroup rule that lets
/// the container open it (the node itself is made at start: [`make_device_nodes`]).
fn unix_device_lines(dir: &Path, name: &str, devices: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (dev, d) in unix_devices(devices) {
        let node = device_nodes_dir(dir, name).join(&dev);
        let optional = if d.get("required").and_then(Value::as_str) == Some("false") {
            ",optional"
        } else {
            ""
        };
        out.push(format!(
            "lxc.mount.entry = {} {} none bind,create=file{optional} 0 0",
            node.display(),
            unix_device_path(&d).trim_start_matches('/')
        ));
        if let Some((kind, major, minor)) = device_numbers(&d) {
            out.push(format!(
                "lxc.cgroup.devices.allow = {kind} {major}:{minor} rwm"
            ));
        }
    }
    out
}

/// A unix device's kind and numbers: `major`/`minor` when given, else the host node's.
fn device_numbers(d: &Value) -> Option<(char, u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = if get("type") == "unix-block" {
        'b'
    } else {
        'c'
    };
    if let (Ok(ma), Ok(mi)) = (get("major").parse(), get("minor").parse()) {
        return Some((kind, ma, mi));
    }
    let source = if get("source").is_empty() {
        get("path")
    } else {
        get("source")
    };
    let md = std::fs::metadata(source).ok()?;
    let ok = if kind == 'b' {
        md.file_type().is_block_device()
    } else {
        md.file_type().is_char_device()
    };
    ok.then(|| {
        let rdev = md.rdev();
        (
            kind,
            nix::sys::stat::major(rdev),
            nix::sys::stat::minor(rdev),
        )
    })
}

/// Makes the device nodes of the instance's unix devices (owned by the container's `uid`/`gid`,
/// `mode` 0660 by default), before it starts; a required device missing on the host is an error.
pub fn make_device_nodes(
    dir: &Path,
    name: &str,
    devices: &Value,
    privileged: bool,
) -> Result<(), String> {
    let nodes = device_nodes_dir(dir, name);
    let _ = std::fs::remove_dir_all(&nodes);
    for (dev, d) in unix_devices(devices) {
        make_device_node(&nodes, &dev, &d, privileged)?;
    }
    Ok(())
}

/// Makes the node of unix device `dev` in `nodes`; false when it is optional and missing.
fn make_device_node(nodes: &Path, dev: &str, d: &Value, privileged: bool) -> Result<bool, String> {
    let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let Some((kind, major, minor)) = device_numbers(d) else {
        if get("required") == "false" {
            return Ok(false);
        }
        return Err(format!(
            "Device \"{dev}\": no {} device at {} on the host",
            get("type"),
            if get("source").is_empty() {
                get("path")
            } else {
                get("source")
            }
        ));
    };
    std::fs::create_dir_all(nodes).map_err(|e| format!("{}: {e}", nodes.display()))?;
    let mode = u32::from_str_radix(get("mode"), 8).unwrap_or(0o660) & 0o777;
    let sflag = if kind == 'b' {
        nix::sys::stat::SFlag::S_IFBLK
    } else {
        nix::sys::stat::SFlag::S_IFCHR
    };
    let node = nodes.join(dev);
    let _ = std::fs::remove_file(&node);
    nix::sys::stat::mknod(
        &node,
        sflag,
        nix::sys::stat::Mode::from_bits_truncate(mode),
        nix::sys::stat::makedev(major, minor),
    )
    .map_err(|e| format!("Device \"{dev}\": mknod {}: {e}", node.display()))?;
    let _ = std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(mode));
    let base = if privileged { 0 } else { IDMAP_BASE as u32 };
    let id = |k: &str| get(k).parse::<u32>().unwrap_or(0) + base;
    std::os::unix::fs::chown(&node, Some(id("uid")), Some(id("gid")))
        .map_err(|e| format!("Device \"{dev}\": chown {}: {e}", node.display()))?;
    Ok(true)
}

/// Brings a running instance's unix devices in line with its new devices: a node made and bound
/// at its path, and allowed by the device policy (`warren-lxc device`), or unbound, denied and
/// removed. On failure, what was done is undone.
pub fn hotplug_unix_devices(
    dir: &Path,
    (old_profiles, old): crate::hotplug::Side,
    (profiles, new): crate::hotplug::Side,
) -> Result<(), String> {
    let before: std::collections::BTreeMap<String, Value> =
        unix_devices(&expanded_devices(old_profiles, old))
            .into_iter()
            .collect();
    let after: std::collections::BTreeMap<String, Value> =
        unix_devices(&expanded_devices(profiles, new))
            .into_iter()
            .collect();
    let privileged = is_privileged(profiles, new);
    let nodes = device_nodes_dir(dir, &new.name);
    let plug = |dev: &str, d: &Value, add: bool| -> Result<(), String> {
        let node = nodes.join(dev);
        if add {
            if !make_device_node(&nodes, dev, d, privileged)? {
                return Ok(());
            }
        } else if !node.exists() {
            return Ok(());
        }
        let node_arg = node.to_string_lossy().into_owned();
        let action = if add { "add" } else { "del" };
        let r = lxc(
            dir,
            &[
                "device",
                "-n",
                &new.name,
                action,
                &node_arg,
                &unix_device_path(d),
            ],
        );
        if (add && r.is_err()) || (!add && r.is_ok()) {
            let _ = std::fs::remove_file(&node);
        }
        r.map(|_| ()).map_err(|e| format!("Device \"{dev}\": {e}"))
    };
    crate::hotplug::reconcile(&before, &after, plug)
}

/// Whether the rootfs's /sbin/init is systemd (a link to it), resolved inside the rootfs.
fn init_is_systemd(rootfs: &Path) -> bool {
    let Ok(root) = crate::sftp::Root::open(rootfs, 0, u32::MAX) else {
        return false;
    };
    let Ok((dir, name)) = root.parent("/sbin/init") else {
        return false;
    };
    nix::fcntl::readlinkat(&dir, name.as_str())
        .is_ok_and(|target| target.to_string_lossy().contains("systemd"))
}

/// Disk devices other than the root: bind mounts of host paths, in device-name order.
/// `shift: true` maps the source's ids into an unprivileged container (an idmapped mount), as
/// Incus's shift does; `readonly`, `recursive` and `required: false` as Incus has them.
fn disk_mount_entries(
    dir: &Path,
    devices: &Value,
    privileged: bool,
    volumes_project: &str,
) -> Vec<String> {
    bind_disks(devices)
        .values()
        .map(|d| {
            let b = disk_bind(dir, d, privileged, volumes_project);
            let mut opts = vec![if b.recursive { "rbind" } else { "bind" }];
            opts.push(if Path::new(&b.source).is_dir() {
                "create=dir"
            } else {
                "create=file"
            });
            if b.readonly {
                opts.push("ro");
            }
            if b.optional {
                opts.push("optional");
            }
            if b.idmap {
                opts.push("idmap=container");
            }
            format!(
                "lxc.mount.entry = {} {} none {} 0 0",
                b.source,
                b.target.trim_start_matches('/'),
                opts.join(",")
            )
        })
        .collect()
}

/// metadata.yaml's templates whose `when` has `trigger` (create, copy, start), rendered (pongo2,
/// as Incus renders them: `{{ container.name }}`, `{{ config }}`, `{{ properties }}`...) into the
/// file at the template's path in the rootfs. The target is resolved inside the rootfs
/// (RESOLVE_IN_ROOT): a symlink there can't send it to the host. `create_only` templates leave an
/// existing file alone.
pub fn render_templates(cdir: &Path, inst: &Instance, trigger: &str) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(cdir.join("metadata.yaml")) else {
        return Ok(());
    };
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| format!("metadata.yaml: {e}"))?;
    let Some(templates) = docs.first().and_then(|d| d["templates"].as_hash()) else {
        return Ok(());
    };
    let rootfs = crate::rootfs::ensure(cdir)?;
    for (path, t) in templates {
        let (Some(path), Some(file)) = (path.as_str(), t["template"].as_str()) else {
            continue;
        };
        let when: Vec<&str> = t["when"]
            .as_vec()
            .map(|v| v.iter().filter_map(|w| w.as_str()).collect())
            .unwrap_or_default();
        if !when.contains(&trigger) || file.contains('/') {
            continue;
        }
        if t["create_only"].as_bool() == Some(true)
            && crate::sftp::Root::open(&rootfs, 0, u32::MAX)
                .ok()
                .is_some_and(|r| crate::sftp::lstat(&r, path).is_ok())
        {
            continue;
        }
        let Ok(tpl) = std::fs::read_to_string(cdir.join("templates").join(file)) else {
            continue;
        };
        let properties: serde_json::Map<String, Value> = t["properties"]
            .as_hash()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), json!(v.as_str()?))))
                    .collect()
            })
            .unwrap_or_default();
        let me = json!({"name": inst.api_name(), "architecture": inst.architecture,
                        "ephemeral": inst.ephemeral, "privileged": inst.config.get("security.privileged").and_then(Value::as_str) == Some("true"),
                        "description": inst.description});
        let context = json!({"trigger": trigger, "path": path, "container": me, "instance": me,
                             "config": inst.config, "devices": inst.devices, "properties": properties});
        let out = match warren_image::pongo::render(&tpl, &context) {
            Ok(out) => out,
            Err(e) => {
                crate::log::warn(&format!("template {file} for {path}: {e}; left out"));
                continue;
            }
        };
        write_in_root(&rootfs, path, out.as_bytes(), crate::rootfs::id_base(cdir))?;
    }
    Ok(())
}

/// Writes `data` at `path` inside `root`, owned by the container's root (host id `owner`).
fn write_in_root(root: &Path, path: &str, data: &[u8], owner: u32) -> Result<(), String> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::io::Write;
    let rootfd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", root.display()))?;
    let how = OpenHow::new()
        .flags(
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_CLOEXEC
                | OFlag::O_NOFOLLOW,
        )
        .mode(nix::sys::stat::Mode::from_bits_truncate(0o644))
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&rootfd, path.trim_start_matches('/'), how)
        .map_err(|e| format!("template {path}: {e}"))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(data)
        .map_err(|e| format!("template {path}: {e}"))?;
    std::os::unix::fs::fchown(&file, Some(owner), Some(owner))
        .map_err(|e| format!("template {path}: {e}"))
}

/// Rewrites the container's LXC config after a config change (applies at the next start).
pub fn rewrite_config(dir: &Path, profiles: &[Profile], inst: &Instance) -> Result<(), String> {
    let path = lxcpath(dir).join(&inst.name).join("config");
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        lxc_config(
            dir,
            inst,
            &expanded_devices(profiles, inst),
            is_privileged(profiles, inst),
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
}

/// The writable part of an instance (what PUT takes, and what its ETag covers).
pub fn writable_json(i: &Instance) -> Value {
    json!({"architecture": i.architecture, "config": i.config, "devices": i.devices, "ephemeral": i.ephemeral,
           "profiles": i.profiles, "stateful": false, "description": i.description})
}

pub fn destroy(dir: &Path, name: &str) -> Result<(), String> {
    crate::rootfs::unmount(&lxcpath(dir).join(name));
    let _ = std::fs::remove_dir_all(device_nodes_dir(dir, name));
    lxc(dir, &["destroy", "-n", name]).map(|_| ())?;
    let _ = std::fs::remove_dir_all(snapshots_dir(dir, name));
    Ok(())
}

/// `$WARREN_DIR/snapshots/<instance>`: each snapshot's rootfs, outside the container directory.
pub fn snapshots_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("snapshots").join(name)
}

/// Copies the container's rootfs as snapshot `snap` (staged, then renamed).
pub fn snapshot(dir: &Path, name: &str, snap: &str) -> Result<(), String> {
    let target = snapshots_dir(dir, name).join(snap);
    if target.exists() {
        return Err(format!("Snapshot \"{snap}\" already exists"));
    }
    let parent = snapshots_dir(dir, name);
    std::fs::create_dir_all(&parent).map_err(|e| e.to_string())?;
    let staged = parent.join(format!(".{snap}.tmp"));
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(staged.join("rootfs")).map_err(|e| e.to_string())?;
    let source = crate::rootfs::ensure(&lxcpath(dir).join(name))?;
    let r = copy_tree(&source, &staged.join("rootfs"))
        .and_then(|_| crate::rootfs::copy_shift_state(&lxcpath(dir).join(name), &staged))
        .and_then(|_| std::fs::rename(&staged, &target).map_err(|e| e.to_string()));
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    r
}

pub fn delete_snapshot(dir: &Path, name: &str, snap: &str) -> Result<(), String> {
    std::fs::remove_dir_all(snapshots_dir(dir, name).join(snap)).map_err(|e| e.to_string())
}

/// Puts snapshot `snap`'s rootfs back (the container must be stopped).
pub fn restore(dir: &Path, name: &str, snap: &str) -> Result<(), String> {
    let rootfs = lxcpath(dir).join(name).join("rootfs");
    let old = lxcpath(dir).join(name).join(".rootfs.old");
    let _ = std::fs::remove_dir_all(&old);
    let fresh = lxcpath(dir).join(name).join(".rootfs.restoring");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
    copy_tree(&snapshots_dir(dir, name).join(snap).join("rootfs"), &fresh)?;
    // an overlay rootfs becomes the plain directory restored
    let cdir = lxcpath(dir).join(name);
    crate::rootfs::unmount(&cdir);
    std::fs::rename(&rootfs, &old).map_err(|e| e.to_string())?;
    std::fs::rename(&fresh, &rootfs).map_err(|e| e.to_string())?;
    crate::rootfs::forget_layers(&cdir);
    let _ = std::fs::remove_dir_all(&old);
    crate::rootfs::copy_shift_state(&snapshots_dir(dir, name).join(snap), &cdir)
}

/// Renames a stopped container: its directory and its snapshots' (the caller rewrites its config
/// and renames the database rows).
pub fn rename(dir: &Path, old: &str, new: &str) -> Result<(), String> {
    let (from, to) = (lxcpath(dir).join(old), lxcpath(dir).join(new));
    if to.exists() {
        return Err(format!(
            "Instance \"{}\" already exists",
            crate::db::split_key(new).1
        ));
    }
    // the overlay is mounted again under the new name at the next use
    crate::rootfs::unmount(&from);
    std::fs::rename(&from, &to).map_err(|e| format!("rename {}: {e}", from.display()))?;
    let snaps = snapshots_dir(dir, old);
    if snaps.exists() {
        if let Err(e) = std::fs::rename(&snaps, snapshots_dir(dir, new)) {
            let _ = std::fs::rename(&to, &from);
            return Err(format!("rename {}: {e}", snaps.display()));
        }
    }
    Ok(())
}

/// Freezes or thaws a running container.
pub fn freeze(dir: &Path, name: &str, freeze: bool) -> Result<(), String> {
    let verb = if freeze { "freeze" } else { "unfreeze" };
    lxc(dir, &[verb, "-n", name]).map(|_| ())
}

/// A new container `to` as a copy of `from` (rootfs and its own config).
pub fn copy(dir: &Path, profiles: &[Profile], from: &str, to: &Instance) -> Result<(), String> {
    let cdir = lxcpath(dir).join(&to.name);
    if cdir.exists() {
        return Err(format!("Instance \"{}\" already exists", to.api_name()));
    }
    std::fs::create_dir_all(cdir.join("rootfs")).map_err(|e| e.to_string())?;
    let r = crate::rootfs::ensure(&lxcpath(dir).join(from))
        .and_then(|source| copy_tree(&source, &cdir.join("rootfs")))
        .and_then(|_| crate::rootfs::copy_shift_state(&lxcpath(dir).join(from), &cdir))
        .and_then(|_| copy_metadata(&lxcpath(dir).join(from), &cdir))
        .and_then(|_| render_templates(&cdir, to, "copy"))
        .and_then(|_| {
            std::fs::write(
                cdir.join("config"),
                lxc_config(
                    dir,
                    to,
                    &expanded_devices(profiles, to),
                    is_privileged(profiles, to),
                ),
            )
            .map_err(|e| e.to_string())
        });
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&cdir);
    }
    r
}

fn status_of(state: &str) -> (&'static str, u16) {
    match state {
        "RUNNING" => ("Running", 103),
        "FROZEN" => ("Frozen", 110),
        _ => ("Stopped", 102),
    }
}

/// The instance's `field` ("config" or "devices") with its profiles' (in order) under it.
fn expanded(profiles: &[Profile], i: &Instance, field: &str) -> Value {
    let mut out = serde_json::Map::new();
    for p in i
        .profiles
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(profile) = profiles
            .iter()
            .find(|x| x.name == p && x.project == i.profiles_project)
        {
            let v = if field == "config" {
                &profile.config
            } else {
                &profile.devices
            };
            if let Some(m) = v.as_object() {
                out.extend(m.clone());
            }
        }
    }
    let own = if field == "config" {
        &i.config
    } else {
        &i.devices
    };
    if let Some(m) = own.as_object() {
        out.extend(m.clone());
    }
    Value::Object(out)
}

/// The instance's config with its profiles' under it.
pub fn expanded_config(profiles: &[Profile], i: &Instance) -> Value {
    expanded(profiles, i, "config")
}

/// The instance's devices with its profiles' under them.
pub fn expanded_devices(profiles: &[Profile], i: &Instance) -> Value {
    expanded(profiles, i, "devices")
}

/// The instance object, with profiles' devices and config expanded.
pub fn instance_json(dir: &Path, profiles: &[Profile], i: &Instance) -> Value {
    let (status, code) = status_of(&state(dir, &i.name));
    let (expanded_config, expanded_devices) = (
        expanded(profiles, i, "config"),
        expanded(profiles, i, "devices"),
    );
    json!({
        "architecture": i.architecture, "config": i.config, "devices": i.devices, "ephemeral": i.ephemeral,
        "profiles": i.profiles, "stateful": false, "description": i.description, "created_at": i.created_at,
        "expanded_config": expanded_config, "expanded_devices": expanded_devices, "name": i.api_name(),
        "status": status, "status_code": code, "last_used_at": "0001-01-01T00:00:00Z", "location": "none",
        "type": "container", "project": i.project,
    })
}

/// The container's interfaces with their addresses, read over netlink from a thread that joins
/// its network namespace (setns changes only the calling thread's), and their counters.
fn network_state(pid: i32) -> Value {
    let counters = proc_net_dev(pid);
    let handle = std::thread::spawn(move || -> Option<Value> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let mut nl = warren_net::Netlink::open().ok()?;
        let mut out = serde_json::Map::new();
        for name in nl.link_names().ok()? {
            let index = nl.link_index(&name).ok()?;
            let addresses: Vec<Value> = nl
                .addresses(Some(index))
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let (family, scope) = match c.addr {
                        std::net::IpAddr::V4(a) => ("inet", if a.is_loopback() { "local" } else { "global" }),
                        std::net::IpAddr::V6(a) => {
                            ("inet6", if a.is_loopback() { "local" } else if a.segments()[0] & 0xffc0 == 0xfe80 { "link" } else { "global" })
                        }
                    };
                    json!({"family": family, "address": c.addr.to_string(), "netmask": c.prefix.to_string(), "scope": scope})
                })
                .collect();
            let kind = if name == "lo" {
                "loopback"
            } else {
                "broadcast"
            };
            let read = |f: &str| {
                std::fs::read_to_string(format!("/proc/{pid}/root/sys/class/net/{name}/{f}"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            // a veth's peer index (iflink) names its host side
            let iflink = read("iflink");
            let host_name = if name == "lo" || iflink.is_empty() || iflink == read("ifindex") {
                String::new()
            } else {
                host_link_by_index(&iflink)
            };
            let c = counters.get(&name).copied().unwrap_or_default();
            out.insert(
                name.clone(),
                json!({"addresses": addresses,
                       "counters": {"bytes_received": c[0], "bytes_sent": c[2], "packets_received": c[1], "packets_sent": c[3],
                                    "errors_received": 0, "errors_sent": 0, "packets_dropped_inbound": 0, "packets_dropped_outbound": 0},
                       "hwaddr": read("address"), "host_name": host_name, "mtu": read("mtu").parse::<u64>().unwrap_or(0),
                       "state": if read("operstate") == "down" { "down" } else { "up" }, "type": kind}),
            );
        }
        Some(Value::Object(out))
    });
    handle.join().ok().flatten().unwrap_or_else(|| json!({}))
}

/// The host's link whose ifindex is `index`.
fn host_link_by_index(index: &str) -> String {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("ifindex")).is_ok_and(|i| i.trim() == index)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// /proc/<pid>/net/dev: per interface [rx bytes, rx packets, tx bytes, tx packets].
fn proc_net_dev(pid: i32) -> std::collections::HashMap<String, [u64; 4]> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((
                name.trim().to_string(),
                [*f.first()?, *f.get(1)?, *f.get(8)?, *f.get(9)?],
            ))
        })
        .collect()
}

/// Memory, CPU and process figures from the container's payload cgroup.
fn usage(info: &InitInfo) -> (Value, Value, u64) {
    use warren_runtime::cgroup::Hierarchies;
    // init lives in a child of the payload cgroup
    let payload: Vec<PathBuf> = info
        .cgroup_paths
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    let read_u64 = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let Some(cg) = Hierarchies::detect()
        .ok()
        .and_then(|h| h.open_paths(&payload).ok())
    else {
        return (json!({}), json!({"usage": 0}), 0);
    };
    let s = cg.stats();
    let memory_dir = cg.v1_path("memory").or_else(|| cg.unified_path());
    let peak = memory_dir.as_ref().and_then(|d| {
        read_u64(d.join("memory.max_usage_in_bytes")).or_else(|| read_u64(d.join("memory.peak")))
    });
    let limit = memory_dir
        .as_ref()
        .and_then(|d| {
            read_u64(d.join("memory.limit_in_bytes")).or_else(|| read_u64(d.join("memory.max")))
        })
        .filter(|l| *l < (1 << 60));
    let total = limit.unwrap_or_else(host_memory);
    // processes: every pid in the payload's subtree (one hierarchy is enough)
    let processes = payload.first().map(|p| count_procs(p)).unwrap_or(0);
    (
        json!({"usage": s.memory_bytes.unwrap_or(0), "usage_peak": peak.unwrap_or(0), "total": total,
               "swap_usage": s.swap_bytes.unwrap_or(0), "swap_usage_peak": 0}),
        json!({"usage": s.cpu_ns.unwrap_or(0)}),
        processes,
    )
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn count_procs(cgroup: &Path) -> u64 {
    let here = std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .map(|t| t.lines().filter(|l| !l.is_empty()).count() as u64)
        .unwrap_or(0);
    let below: u64 = std::fs::read_dir(cgroup)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| count_procs(&e.path()))
        .sum();
    here + below
}

pub fn state_json(dir: &Path, name: &str) -> Value {
    let info = live(dir, name);
    let st = info
        .as_ref()
        .and_then(|i| i.state)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "STOPPED".into());
    let (status, code) = status_of(&st);
    let Some(info) = info.filter(|_| st != "STOPPED") else {
        return json!({
            "status": status, "status_code": code, "disk": {}, "memory": {"usage": 0, "usage_peak": 0, "total": 0, "swap_usage": 0, "swap_usage_peak": 0},
            "network": {}, "pid": 0, "processes": 0, "cpu": {"usage": 0},
        });
    };
    let (memory, cpu, processes) = usage(&info);
    json!({
        "status": status, "status_code": code, "disk": {}, "memory": memory,
        "network": network_state(info.pid), "pid": info.pid, "processes": processes, "cpu": cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsquash_tells_its_progress_up_to_100() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        for i in 0..50 {
            let d = src.join(format!("d{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("f"), vec![i as u8; 4096]).expect("write");
        }
        let sq = tmp.path().join("img.squashfs");
        let made = Command::new("mksquashfs")
            .arg(&src)
            .arg(&sq)
            .args(["-quiet", "-noappend", "-no-progress"])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mksquashfs");
            return;
        }
        let seen = std::cell::RefCell::new(Vec::new());
        unsquash(
            &sq,
            &tmp.path().join("out"),
            Some(&|p| seen.borrow_mut().push(p)),
        )
        .expect("unsquash");
        let seen = seen.into_inner();
        assert_eq!(seen.last(), Some(&100), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(tmp.path().join("out/d49/f").is_file());
        let bad = unsquash(&tmp.path().join("nope"), &tmp.path().join("out2"), None);
        assert!(bad.is_err_and(|e| e.contains("Failed to unpack")));
    }

    #[test]
    fn progress_is_told_by_step_and_only_when_it_moves() {
        let told = std::cell::RefCell::new(Vec::new());
        let report = |p: u8| told.borrow_mut().push(p);
        let p = Progress {
            report: &report,
            last: std::cell::Cell::new(u8::MAX),
        };
        p.at(0);
        p.step(5, 95, 50, 100);
        p.step(5, 95, 50, 100);
        p.step(5, 95, 200, 100);
        p.step(5, 95, 1, 0);
        p.at(100);
        assert_eq!(told.into_inner(), vec![0, 50, 95, 5, 100]);
    }
}
