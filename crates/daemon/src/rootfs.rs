//! A container's rootfs on the dir pool: an overlay whose lower layer is the image's unpacked tree
//! (shared by every container of that image, never written) and whose upper layer is the
//! container's own (`<container>/overlay/{upper,work}`), mounted on `<container>/rootfs`. Creating
//! a container then copies nothing. The mount is made again wherever it is missing (after a
//! reboot, say) by [`ensure`], which everything that reads or writes a rootfs goes through. A
//! container restored from a snapshot, or copied, has a plain directory instead.
//!
//! The lower layer of a split image is its squashfs mounted (idmapped through warrend's map for
//! unprivileged containers: [`crate::imagemount`]). Elsewhere (a unified image, a kernel
//! without that) an overlay mount can't be idmapped, so an unprivileged container's lower layer
//! is a copy of the image's tree shifted once through warrend's id map (`images/<fp>.shifted`).
//! An unprivileged rootfs carries warren-lxc's shift marker (`rootfs.shifted`), which presents
//! it as it is. [`reconcile`]
//! shifts a rootfs forth or back when `security.privileged` changes.

use crate::instances::{IDMAP_BASE, IDMAP_SIZE};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use warren_runtime::shift::shift_tree;
use warren_runtime::spec::IdMap;

/// warren-lxc's marker of a rootfs shifted through the container's map (its content: the map).
const SHIFT_MARKER: &str = "rootfs.shifted";

fn maps() -> Vec<IdMap> {
    [true, false]
        .into_iter()
        .map(|is_uid| IdMap {
            is_uid,
            container_id: 0,
            host_id: IDMAP_BASE as u32,
            count: IDMAP_SIZE as u32,
        })
        .collect()
}

fn marker_text() -> String {
    format!("u 0 {IDMAP_BASE} {IDMAP_SIZE}\ng 0 {IDMAP_BASE} {IDMAP_SIZE}\n")
}

/// Whether the container's rootfs holds host ids shifted through warrend's map.
pub fn is_shifted(cdir: &Path) -> bool {
    cdir.join(SHIFT_MARKER).is_file()
}

/// The host id of the container's id 0 as stored on disk (SFTP and /files map through it).
pub fn id_base(cdir: &Path) -> u32 {
    if is_shifted(cdir) {
        IDMAP_BASE as u32
    } else {
        0
    }
}

fn set_shifted(cdir: &Path, shifted: bool) -> Result<(), String> {
    let marker = cdir.join(SHIFT_MARKER);
    if shifted {
        std::fs::write(&marker, marker_text()).map_err(|e| format!("{}: {e}", marker.display()))
    } else {
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    }
}

/// The shift state of a copy (snapshot, restore, copy) follows its source's.
pub fn copy_shift_state(from: &Path, to: &Path) -> Result<(), String> {
    set_shifted(to, is_shifted(from))
}

/// Shifts the rootfs forth or back so that it matches the container's privilege: an unprivileged
/// container on an overlay needs a shifted one (a plain directory may instead be idmapped at
/// start), a privileged one an unshifted one.
pub fn reconcile(cdir: &Path, privileged: bool) -> Result<(), String> {
    let shifted = is_shifted(cdir);
    let want = !privileged && (shifted || overlay_dir(cdir).join("upper").is_dir());
    if want == shifted {
        return Ok(());
    }
    let rootfs = ensure(cdir)?;
    shift_tree(&rootfs, &maps(), !want)
        .map_err(|e| format!("shift the rootfs's ownership: {e}"))?;
    set_shifted(cdir, want)
}

/// The image's rootfs shifted through warrend's map, made once (staged, then renamed): `fill`
/// puts the image's files at the path it is given (which doesn't exist yet), then they are
/// shifted.
pub fn shifted_image(
    images: &Path,
    fingerprint: &str,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let target = images.join(format!("{fingerprint}.shifted"));
    if target.is_dir() {
        return Ok(target);
    }
    let staging = tempfile::Builder::new()
        .prefix(".shift-")
        .tempdir_in(images)
        .map_err(|e| e.to_string())?;
    let tree = staging.path().join("rootfs");
    let started = std::time::Instant::now();
    fill(&tree)?;
    let filled = started.elapsed();
    shift_tree(&tree, &maps(), false).map_err(|e| format!("shift the image's rootfs: {e}"))?;
    crate::log::debug(&format!(
        "image {fingerprint} unpacked in {} ms, shifted in {} ms",
        filled.as_millis(),
        (started.elapsed() - filled).as_millis()
    ));
    if std::fs::rename(&tree, &target).is_err() && !target.is_dir() {
        return Err(format!(
            "could not put the shifted rootfs at {}",
            target.display()
        ));
    }
    Ok(target)
}

fn overlay_dir(cdir: &Path) -> PathBuf {
    cdir.join("overlay")
}

/// Whether overlayfs can take these paths in its mount options (no separators in them).
fn plain_path(p: &Path) -> bool {
    p.to_str()
        .is_some_and(|s| !s.contains([',', ':', '\\', '\n']))
}

/// Makes `cdir/rootfs` an overlay over `lower` (the image's rootfs, `shifted` or not), recording
/// the image's fingerprint; Ok(false) when overlayfs can't be used here (the caller copies).
pub fn make_overlay(
    cdir: &Path,
    lower: &Path,
    fingerprint: &str,
    shifted: bool,
    squashfs: Option<&Path>,
) -> Result<bool, String> {
    let ov = overlay_dir(cdir);
    if !plain_path(lower) || !plain_path(&ov) {
        return Ok(false);
    }
    for d in [ov.join("upper"), ov.join("work"), cdir.join("rootfs")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // the rootfs's top directory shows the upper layer's owner and mode: the image's
    let top = std::fs::metadata(lower).map_err(|e| format!("{}: {e}", lower.display()))?;
    let upper = ov.join("upper");
    let _ = std::os::unix::fs::lchown(&upper, Some(top.uid()), Some(top.gid()));
    let _ = std::fs::set_permissions(
        &upper,
        std::os::unix::fs::PermissionsExt::from_mode(top.mode() & 0o7777),
    );
    std::fs::write(ov.join("image"), fingerprint).map_err(|e| e.to_string())?;
    std::fs::write(ov.join("lower"), lower.as_os_str().as_encoded_bytes())
        .map_err(|e| e.to_string())?;
    // a lower layer that is the image's squashfs mount: mounted again when it is missing
    if let Some(sq) = squashfs {
        std::fs::write(ov.join("squashfs"), sq.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
    }
    match mount_overlay(cdir) {
        Ok(()) => {
            set_shifted(cdir, shifted)?;
            Ok(true)
        }
        // no overlayfs (or not over this filesystem): undo, the caller copies
        Err(_) => {
            let _ = std::fs::remove_dir_all(&ov);
            Ok(false)
        }
    }
}

fn mount_overlay(cdir: &Path) -> Result<(), String> {
    let ov = overlay_dir(cdir);
    let lower = std::fs::read_to_string(ov.join("lower")).map_err(|e| e.to_string())?;
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        ov.join("upper").display(),
        ov.join("work").display()
    );
    let target = cdir.join("rootfs");
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount the overlay rootfs on {}: {e}", target.display()))
}

/// Whether `p` is the root of a mount (another device than its parent's).
pub(crate) fn is_mount_point(p: &Path) -> bool {
    match (
        std::fs::symlink_metadata(p),
        p.parent().map(std::fs::symlink_metadata),
    ) {
        (Ok(m), Some(Ok(parent))) => m.dev() != parent.dev(),
        _ => false,
    }
}

/// The container's rootfs, its overlay mounted if it has one and it isn't.
pub fn ensure(cdir: &Path) -> Result<PathBuf, String> {
    let rootfs = cdir.join("rootfs");
    let ov = overlay_dir(cdir);
    if ov.join("upper").is_dir() && !is_mount_point(&rootfs) {
        std::fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
        if let (Ok(sq), Ok(fp)) = (
            std::fs::read_to_string(ov.join("squashfs")),
            std::fs::read_to_string(ov.join("image")),
        ) {
            let sq = PathBuf::from(sq);
            let images = sq.parent().unwrap_or(Path::new("/")).to_path_buf();
            crate::imagemount::mount_image(&images, fp.trim(), &sq, is_shifted(cdir))?;
        }
        mount_overlay(cdir)?;
    }
    Ok(rootfs)
}

/// Unmounts the overlay (before the container's directory moves or goes).
pub fn unmount(cdir: &Path) {
    let rootfs = cdir.join("rootfs");
    if overlay_dir(cdir).is_dir() && is_mount_point(&rootfs) {
        let _ = umount2(&rootfs, MntFlags::MNT_DETACH);
    }
}

/// Drops the overlay's layers after the rootfs became a plain directory (restore).
pub fn forget_layers(cdir: &Path) {
    let _ = std::fs::remove_dir_all(overlay_dir(cdir));
}

/// Whether some container's overlay stands on image `fingerprint`'s tree.
pub fn image_in_use(lxcpath: &Path, fingerprint: &str) -> bool {
    std::fs::read_dir(lxcpath)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path().join("overlay/image"))
                .is_ok_and(|f| f.trim() == fingerprint)
        })
}
