//! Downloads with verification: the mirror's sha256 whenever it publishes one, OpenPGP signatures
//! against the definition's armored keys (gpg in a throwaway home, no keyserver), one retry on a
//! checksum mismatch, and the policy for sources that can't be verified (`--insecure`).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{file}: sha256 mismatch: the mirror says {expected}, the download is {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: OpenPGP signature check failed: {message}")]
    Signature { file: String, message: String },
    #[error("{0}")]
    Policy(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path, source: std::io::Error) -> DownloadError {
    DownloadError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How a source is checked, decided once per build from the URL, keys and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// sha256 if published, and the detached signature against these armored keys.
    Signed(Vec<String>),
    /// sha256 if published; no signature (HTTPS, or a local file).
    ChecksumOnly,
    /// Nothing checked (`skip_verification` with `--insecure`).
    None,
}

/// The verification policy (README, "Image sources and verification").
pub fn policy(
    url: &str,
    keys: &[String],
    skip_verification: bool,
    insecure: bool,
) -> Result<Verification, DownloadError> {
    if skip_verification {
        if !insecure {
            return Err(DownloadError::Policy(
                "source.skip_verification is set: pass --insecure to build without verifying the source".into(),
            ));
        }
        eprintln!(
            "WARNING: --insecure with source.skip_verification: {url} is NOT VERIFIED in any way"
        );
        return Ok(Verification::None);
    }
    if !keys.is_empty() {
        return Ok(Verification::Signed(keys.to_vec()));
    }
    if url.starts_with("https://") || url.starts_with("file://") || url.starts_with('/') {
        if url.starts_with("https://") {
            eprintln!("warning: {url}: no source.keys, so the download is checked against the mirror's sha256 only, not signature-verified");
        }
        return Ok(Verification::ChecksumOnly);
    }
    if insecure {
        eprintln!("WARNING: --insecure: {url} is plain HTTP without source.keys; its checksum comes from the same unauthenticated server");
        return Ok(Verification::ChecksumOnly);
    }
    Err(DownloadError::Policy(format!(
        "{url} is plain HTTP and the definition has no source.keys: add the distribution's armored signing key to source.keys, use an https:// mirror, or pass --insecure"
    )))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .user_agent(concat!("warren-build/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(120))
        .build()
}

/// GETs a URL as text (`Ok(None)` on 404).
pub fn get_text(url: &str) -> Result<Option<String>, DownloadError> {
    if let Some(path) = url.strip_prefix("file://") {
        return match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(Path::new(path), e)),
        };
    }
    match agent().get(url).call() {
        Ok(r) => r.into_string().map(Some).map_err(|e| DownloadError::Http {
            url: url.into(),
            message: e.to_string(),
        }),
        Err(ureq::Error::Status(404, _)) => Ok(None),
        Err(e) => Err(DownloadError::Http {
            url: url.into(),
            message: e.to_string(),
        }),
    }
}

/// GETs `url` into `dest` (through a `.part` file) and returns its sha256.
pub fn get_file(url: &str, dest: &Path) -> Result<String, DownloadError> {
    let part = dest.with_extension("part");
    let mut reader: Box<dyn Read> = if let Some(path) = url.strip_prefix("file://") {
        Box::new(std::fs::File::open(path).map_err(|e| io_err(Path::new(path), e))?)
    } else {
        let r = agent().get(url).call().map_err(|e| DownloadError::Http {
            url: url.into(),
            message: e.to_string(),
        })?;
        Box::new(r.into_reader())
    };
    let mut out = std::fs::File::create(&part).map_err(|e| io_err(&part, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let started = std::time::Instant::now();
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let n = reader.read(&mut buf).map_err(|e| DownloadError::Http {
            url: url.into(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io_err(&part, e))?;
        total += n as u64;
        crate::progress::bytes(&format!("downloading {name}"), total);
    }
    out.sync_all().map_err(|e| io_err(&part, e))?;
    std::fs::rename(&part, dest).map_err(|e| io_err(dest, e))?;
    crate::progress::done(&format!(
        "downloaded {name}: {} in {:.1}s",
        crate::progress::human(total),
        started.elapsed().as_secs_f64()
    ));
    Ok(hex::encode(hasher.finalize()))
}

pub fn sha256_file(path: &Path) -> Result<String, DownloadError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).map_err(|e| io_err(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Finds the hash for `file_name` in a checksum file: `<hex>  <name>` lines, then a line naming
/// it, then a lone hash.
pub fn checksum_for(text: &str, file_name: &str) -> Option<String> {
    let is_hash = |w: &str| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(h), Some(n)) = (words.next(), words.next()) {
            if is_hash(h) && n.trim_start_matches('*').rsplit('/').next() == Some(file_name) {
                return Some(h.to_lowercase());
            }
        }
    }
    let words: Vec<&str> = text.split_whitespace().filter(|w| is_hash(w)).collect();
    (words.len() == 1).then(|| words[0].to_lowercase())
}

/// Downloads `url` to `dest`, verified by `v`: sha256 from `url.sha256` when the mirror has one
/// (retried once on mismatch), the signature from `url.asc` with keys. A `dest` that already
/// exists is reused if it verifies.
pub fn fetch_verified(url: &str, dest: &Path, v: &Verification) -> Result<(), DownloadError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected = match v {
        Verification::None => None,
        _ => get_text(&format!("{url}.sha256"))?.and_then(|t| checksum_for(&t, &name)),
    };
    let reusable = dest.metadata().map(|m| m.len() > 0).unwrap_or(false);
    let mut attempt = 0;
    loop {
        let actual = if reusable && attempt == 0 {
            sha256_file(dest)?
        } else {
            get_file(url, dest)?
        };
        match &expected {
            Some(e) if *e != actual => {
                if attempt == 0 {
                    eprintln!("warning: {name}: sha256 mismatch, downloading it again");
                    attempt += 1;
                    continue;
                }
                let _ = std::fs::remove_file(dest);
                return Err(DownloadError::Checksum {
                    file: name,
                    expected: e.clone(),
                    actual,
                });
            }
            _ => break,
        }
    }
    if let Verification::Signed(keys) = v {
        let sig = dest.with_file_name(format!("{name}.asc"));
        let text = get_text(&format!("{url}.asc"))?.ok_or_else(|| DownloadError::Signature {
            file: name.clone(),
            message: format!("the mirror has no {url}.asc, and source.keys asks for a signature"),
        })?;
        std::fs::write(&sig, text).map_err(|e| io_err(&sig, e))?;
        verify_signature(dest, &sig, keys)?;
    }
    Ok(())
}

/// Checks a detached signature against the definition's armored public keys.
pub fn verify_signature(file: &Path, sig: &Path, keys: &[String]) -> Result<(), DownloadError> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    warren_image::sign::verify(file, sig, &keys).map_err(|e| DownloadError::Signature {
        file: file.display().to_string(),
        message: format!("not signed by any key in source.keys ({e})"),
    })
}

/// `<sources-dir>/<distribution>-<release>-<arch>`, lowercased and without spaces as distrobuilder
/// names it.
pub fn source_dir(sources_dir: &Path, distribution: &str, release: &str, arch: &str) -> PathBuf {
    let name = format!("{distribution}-{release}-{arch}")
        .to_lowercase()
        .replace(' ', "");
    sources_dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files_are_read_leniently() {
        let h = "a".repeat(64);
        assert_eq!(
            checksum_for(&format!("{h}  alpine.tar.gz\n"), "alpine.tar.gz"),
            Some(h.clone())
        );
        assert_eq!(
            checksum_for(&format!("{h} *./x/alpine.tar.gz\n"), "alpine.tar.gz"),
            Some(h.clone())
        );
        assert_eq!(checksum_for(&h, "alpine.tar.gz"), Some(h.clone()));
        assert_eq!(checksum_for("nothing", "alpine.tar.gz"), None);
    }

    #[test]
    fn plain_http_without_keys_needs_insecure() {
        assert!(policy("http://x/", &[], false, false).is_err());
        assert_eq!(
            policy("https://x/", &[], false, false).unwrap(),
            Verification::ChecksumOnly
        );
        assert!(policy("https://x/", &[], true, false).is_err());
        assert_eq!(
            policy("http://x/", &["k".into()], false, false).unwrap(),
            Verification::Signed(vec!["k".into()])
        );
    }
}
