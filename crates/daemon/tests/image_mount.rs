//! An image's squashfs mounted as its containers' lower layer (`warren_daemon::imagemount`):
//! the files as they are, or through warrend's id map, mounted once, and gone with the image.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use warren_daemon::imagemount::{mount_image, unmount_image};
use warren_daemon::instances::IDMAP_BASE;
use warren_testutil::require_root;

fn is_mount(p: &std::path::Path) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(&*p.to_string_lossy()))
        .count()
}

#[test]
fn a_squashfs_mounts_plain_and_idmapped() {
    if !require_root("a_squashfs_mounts_plain_and_idmapped") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let images = tmp.path().join("images");
    std::fs::create_dir_all(images.join("src/etc")).expect("mkdir");
    std::fs::write(images.join("src/etc/hostname"), "img\n").expect("write");
    std::os::unix::fs::chown(images.join("src/etc/hostname"), Some(0), Some(5)).expect("chown");
    // a prebuilt squashfs where mksquashfs is missing (a throwaway VM): WARREN_TEST_SQUASHFS
    let sq = match std::env::var_os("WARREN_TEST_SQUASHFS") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let sq = images.join("fp1.rootfs");
            let o = Command::new("mksquashfs")
                .arg(images.join("src"))
                .arg(&sq)
                .args(["-quiet", "-noappend"])
                .output()
                .expect("mksquashfs");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            sq
        }
    };
    let plain = mount_image(&images, "fp1", &sq, false).expect("mount");
    let md = std::fs::metadata(plain.join("etc/hostname")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (0, 5));
    let shifted = match mount_image(&images, "fp1", &sq, true) {
        Ok(p) => p,
        // squashfs takes idmapped mounts only on newer kernels (not Debian 12's 6.1): warrend
        // unpacks there, and the plain mount stays for privileged containers
        Err(e) if e.contains("Invalid argument") => {
            eprintln!("this kernel can't idmap a squashfs mount: {e}");
            assert_eq!(is_mount(&plain), 1);
            unmount_image(&images, "fp1");
            assert_eq!(is_mount(&plain), 0);
            return;
        }
        Err(e) => panic!("idmapped mount: {e}"),
    };
    let md = std::fs::metadata(shifted.join("etc/hostname")).expect("stat");
    assert_eq!(
        (md.uid(), md.gid()),
        (IDMAP_BASE as u32, IDMAP_BASE as u32 + 5)
    );
    assert_eq!(
        std::fs::read_to_string(shifted.join("etc/hostname")).expect("read"),
        "img\n"
    );
    // asked again: the same mounts, none stacked
    mount_image(&images, "fp1", &sq, true).expect("again");
    assert_eq!((is_mount(&plain), is_mount(&shifted)), (1, 1));
    // a file that isn't a squashfs: an error, nothing left mounted
    let bad = images.join("fp2.rootfs");
    std::fs::write(&bad, vec![0u8; 8192]).expect("write");
    let e = mount_image(&images, "fp2", &bad, true).expect_err("not a squashfs");
    assert!(e.contains("squashfs"), "{e}");
    assert_eq!(is_mount(&images.join("fp2.mnt")), 0);
    unmount_image(&images, "fp1");
    assert_eq!((is_mount(&plain), is_mount(&shifted)), (0, 0));
    assert!(!plain.exists() && !shifted.exists());
}
