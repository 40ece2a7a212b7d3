//! A split image's squashfs mounted read-only as the lower layer of its containers' overlays
//! (`images/<fp>.mnt`, on a loop device the kernel frees with the mount): nothing is unpacked,
//! and only what a container reads is ever decompressed. Unprivileged containers stand on an
//! idmapped copy of that mount (`images/<fp>.idmapped`) showing the image's files under
//! warrend's id map. Where the kernel can't do this (no loop devices, no squashfs, a squashfs
//! without idmapped mounts) the caller unpacks instead.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::instances::{IDMAP_BASE, IDMAP_SIZE};
use crate::rootfs::is_mount_point;

/// One mount at a time: two creates from the same image mustn't stack two mounts.
static MOUNTING: Mutex<()> = Mutex::new(());

/// Set once the kernel refused to idmap a squashfs mount (squashfs took idmapped mounts after
/// Linux 6.1): later unprivileged creates go straight to the unpacked copy.
static NO_IDMAPPED_SQUASHFS: AtomicBool = AtomicBool::new(false);

fn plain_dir(images: &Path, fingerprint: &str) -> PathBuf {
    images.join(format!("{fingerprint}.mnt"))
}

fn idmapped_dir(images: &Path, fingerprint: &str) -> PathBuf {
    images.join(format!("{fingerprint}.idmapped"))
}

/// The image's rootfs as a mount of its squashfs (`shifted`: the idmapped copy), made now if it
/// isn't mounted. An error says why this kernel can't; nothing is left mounted then.
pub fn mount_image(
    images: &Path,
    fingerprint: &str,
    squashfs: &Path,
    shifted: bool,
) -> Result<PathBuf, String> {
    if shifted && NO_IDMAPPED_SQUASHFS.load(Ordering::Relaxed) {
        return Err("this kernel can't idmap a squashfs mount".into());
    }
    let _one = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let plain = plain_dir(images, fingerprint);
    let made_plain = !is_mount_point(&plain);
    if made_plain {
        std::fs::create_dir_all(&plain).map_err(|e| format!("{}: {e}", plain.display()))?;
        let file =
            std::fs::File::open(squashfs).map_err(|e| format!("{}: {e}", squashfs.display()))?;
        let (device, _held) = warren_sys::loop_device_for(file.as_fd())
            .map_err(|e| format!("a loop device for {}: {e}", squashfs.display()))?;
        mount(
            Some(&device),
            &plain,
            Some("squashfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("mount {} (squashfs): {e}", squashfs.display()))?;
        // `_held` closes here: the mount alone keeps the loop device
    }
    if !shifted {
        return Ok(plain);
    }
    let idmapped = idmapped_dir(images, fingerprint);
    if is_mount_point(&idmapped) {
        return Ok(idmapped);
    }
    let made = (|| {
        std::fs::create_dir_all(&idmapped).map_err(|e| format!("{}: {e}", idmapped.display()))?;
        let map = format!("0 {IDMAP_BASE} {IDMAP_SIZE}");
        let userns = warren_sys::userns_with_maps(&map, &map)
            .map_err(|e| format!("a user namespace for the id map: {e}"))?;
        let tree = warren_sys::open_tree_clone(&plain).map_err(|e| e.to_string())?;
        warren_sys::idmap_mount(tree.as_fd(), userns.as_fd()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                NO_IDMAPPED_SQUASHFS.store(true, Ordering::Relaxed);
            }
            format!("an idmapped mount of the image's squashfs: {e}")
        })?;
        warren_sys::move_mount_to(tree.as_fd(), &idmapped).map_err(|e| e.to_string())
    })();
    match made {
        Ok(()) => Ok(idmapped),
        Err(e) => {
            if made_plain {
                let _ = umount2(&plain, MntFlags::MNT_DETACH);
            }
            Err(e)
        }
    }
}

/// Unmounts the image's mounts (when the image and its last container are gone).
pub fn unmount_image(images: &Path, fingerprint: &str) {
    // not while a create is mounting it
    let _one = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
    for d in [
        idmapped_dir(images, fingerprint),
        plain_dir(images, fingerprint),
    ] {
        if is_mount_point(&d) {
            let _ = umount2(&d, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&d);
    }
}
