//! The cache of compiled seccomp programs: a profile's text to the BPF libseccomp made of it,
//! kept in a directory only its owner can write (`/run/warren/seccomp` for root, the user's
//! runtime directory otherwise), so a start skips libseccomp's kernel probing and compilation.
//!
//! An entry holds its whole key (the profile text, and what else shapes the program: warren's
//! and libseccomp's versions, the kernel, the architecture) and is used only when that key
//! matches byte for byte; the file name is just a hash of it. Any doubt (a directory that others
//! could write, a short or odd-sized program) is a miss, and the profile is compiled again.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bumped when the entry layout or what goes into the key changes.
const FORMAT: &str = "warren seccomp cache 1";

/// Classic BPF: 8-byte instructions, at most 4096 of them.
const MAX_PROGRAM: usize = 4096 * 8;

/// Where this user's entries live, if there is a safe place.
fn cache_dir() -> Option<PathBuf> {
    let uid = nix::unistd::geteuid();
    let base = if uid.is_root() {
        PathBuf::from("/run/warren")
    } else {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("warren")
    };
    let dir = base.join("seccomp");
    // the base as the rest of warren makes it (others, such as lxc-net's dnsmasq after it drops
    // its privileges, pass through /run/warren), the cache itself private
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&base)
        .ok()?;
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    // trusted only if it is ours, a real directory, and nobody else can write to it (nor to
    // its parent, where it could be swapped)
    let safe = |p: &Path| {
        fs::symlink_metadata(p)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid.as_raw() && m.mode() & 0o022 == 0)
    };
    (safe(&base) && safe(&dir)).then_some(dir)
}

/// Everything the compiled program depends on, the profile text last.
fn key(profile: &str) -> Vec<u8> {
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.version().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut k = format!(
        "{FORMAT}\nwarren {}\nkernel {kernel}\nlibseccomp {lib}\narch {}\n\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
    .into_bytes();
    k.extend_from_slice(profile.as_bytes());
    k
}

fn entry_path(dir: &Path, key: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    // (not a security boundary: the whole key is compared on a hit)
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

/// The program cached for `profile`, if there is a valid entry.
pub fn lookup(profile: &str) -> Option<Vec<u8>> {
    let dir = cache_dir()?;
    let key = key(profile);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(entry_path(&dir, &key))
        .ok()?;
    let mut data = Vec::with_capacity(key.len() + 8 + MAX_PROGRAM);
    f.read_to_end(&mut data).ok()?;
    decode(&data, &key)
}

/// Keep `program` as the compiled `profile` (best effort: a failure only costs a later compile).
pub fn store(profile: &str, program: &[u8]) {
    let Some(dir) = cache_dir() else { return };
    let key = key(profile);
    let path = entry_path(&dir, &key);
    let tmp = dir.join(format!(".{}.{}", std::process::id(), path_name(&path)));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&encode(&key, program)));
    // (a rename is atomic: a reader sees the old entry, none, or the whole new one)
    if written.and_then(|_| fs::rename(&tmp, &path)).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

fn path_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An entry: the key's length (8 bytes, little-endian), the key, the program.
fn encode(key: &[u8], program: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len() + program.len());
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(program);
    out
}

fn decode(data: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let len = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let rest = &data[8..];
    if len != key.len() as u64 || rest.get(..key.len())? != key {
        return None;
    }
    let program = &rest[key.len()..];
    let plausible =
        !program.is_empty() && program.len().is_multiple_of(8) && program.len() <= MAX_PROGRAM;
    plausible.then(|| program.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_for_its_own_key_and_a_plausible_program() {
        let k = key("2\ndenylist\nkexec_load errno 1\n");
        let prog = vec![7u8; 16];
        assert_eq!(decode(&encode(&k, &prog), &k), Some(prog.clone()));
        // another profile, even one byte longer
        let other = key("2\ndenylist\nkexec_load errno 1\n\n");
        assert_eq!(decode(&encode(&k, &prog), &other), None);
        // a program cut short, an empty one, a truncated entry
        assert_eq!(decode(&encode(&k, &prog[..15]), &k), None);
        assert_eq!(decode(&encode(&k, &[]), &k), None);
        assert_eq!(decode(&encode(&k, &prog)[..20], &k), None);
        assert_eq!(decode(&[], &k), None);
    }

    #[test]
    fn the_key_names_what_shapes_the_program() {
        let k = String::from_utf8(key("2\nallowlist\n")).unwrap();
        assert!(k.starts_with(FORMAT), "{k}");
        for part in ["\nwarren ", "\nkernel ", "\nlibseccomp ", "\narch "] {
            assert!(k.contains(part), "{part} missing from {k}");
        }
        assert!(k.ends_with("\n\n2\nallowlist\n"), "{k}");
    }
}
