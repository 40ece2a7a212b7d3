//! The image server's OpenPGP signing key: generated once in a gpg home kept beside (never inside)
//! the served tree, detached armored signatures, and the public key exported for clients.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
#[error("signing: {0}")]
pub struct SignError(String);

pub struct Signer {
    home: PathBuf,
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--batch").arg("--homedir").arg(home).arg("--no-tty");
    c
}

fn run(mut c: Command, what: &str) -> Result<Vec<u8>, SignError> {
    let out = c
        .output()
        .map_err(|e| SignError(format!("{what}: gpg: {e} (apt-get install gpg)")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(SignError(format!(
            "{what}: {}",
            err.lines().last().unwrap_or("gpg failed").trim()
        )));
    }
    Ok(out.stdout)
}

impl Signer {
    /// The signing key of `tree`, in `<tree's parent>/.<tree name>-signing`, made on first use.
    pub fn for_tree(tree: &Path) -> Result<Signer, SignError> {
        let tree = std::fs::canonicalize(tree)
            .map_err(|e| SignError(format!("{}: {e}", tree.display())))?;
        let name = tree
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tree".into());
        let parent = tree.parent().unwrap_or(Path::new("/"));
        let home = parent.join(format!(".{name}-signing"));
        Signer::open(&home, &format!("warren image server ({name})"))
    }

    pub fn open(home: &Path, uid: &str) -> Result<Signer, SignError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !home.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(home)
                .map_err(|e| SignError(format!("{}: {e}", home.display())))?;
        }
        let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
        let s = Signer {
            home: home.to_path_buf(),
        };
        let mut list = gpg(home);
        list.args(["--list-secret-keys", "--with-colons"]);
        let keys = run(list, "list keys")?;
        if !String::from_utf8_lossy(&keys)
            .lines()
            .any(|l| l.starts_with("sec"))
        {
            let mut gen = gpg(home);
            gen.args([
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "ed25519",
                "sign",
                "never",
            ]);
            run(gen, "generate the signing key")?;
        }
        Ok(s)
    }

    /// Writes `file.asc`, a detached armored signature of `file`.
    pub fn sign(&self, file: &Path) -> Result<PathBuf, SignError> {
        let asc = PathBuf::from(format!("{}.asc", file.display()));
        let mut c = gpg(&self.home);
        c.args(["--yes", "--armor", "--detach-sign", "--output"])
            .arg(&asc)
            .arg(file);
        run(c, &format!("sign {}", file.display()))?;
        Ok(asc)
    }

    /// The armored public key.
    pub fn public_key(&self) -> Result<String, SignError> {
        let mut c = gpg(&self.home);
        c.args(["--armor", "--export"]);
        Ok(String::from_utf8_lossy(&run(c, "export the public key")?).into_owned())
    }

    /// The key's fingerprint, for people to compare.
    pub fn fingerprint(&self) -> Result<String, SignError> {
        let mut c = gpg(&self.home);
        c.args(["--list-keys", "--with-colons"]);
        let out = run(c, "list keys")?;
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .ok_or_else(|| SignError("no fingerprint".into()))
    }
}

/// Verifies `sig` (a detached signature of `file`) against armored public keys (one or more
/// armored blocks), with gpgv in a throwaway directory: no keyring of the user's or the system's
/// is read or changed.
pub fn verify(file: &Path, sig: &Path, armored_keys: &[&str]) -> Result<(), SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let mut keyring = Vec::new();
    for (i, key) in armored_keys.iter().enumerate() {
        let mut dearmor = gpg(dir.path());
        dearmor
            .arg("--dearmor")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = dearmor
            .spawn()
            .map_err(|e| SignError(format!("gpg: {e} (apt-get install gpg)")))?;
        if let Some(mut input) = child.stdin.take() {
            use std::io::Write;
            input
                .write_all(key.as_bytes())
                .map_err(|e| SignError(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| SignError(e.to_string()))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(SignError(format!(
                "key {i}: not an armored OpenPGP public key"
            )));
        }
        keyring.extend(out.stdout);
    }
    let keyring_path = dir.path().join("keys.gpg");
    std::fs::write(&keyring_path, &keyring).map_err(|e| SignError(e.to_string()))?;
    let out = Command::new("gpgv")
        .arg("--status-fd=1")
        .arg("--keyring")
        .arg(&keyring_path)
        .arg(sig)
        .arg(file)
        .env("GNUPGHOME", dir.path())
        .output()
        .map_err(|e| SignError(format!("gpgv: {e} (apt-get install gpgv)")))?;
    let status = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && status.lines().any(|l| l.starts_with("[GNUPG:] VALIDSIG")) {
        return Ok(());
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(SignError(format!(
        "{name}: the signature does not verify against the given key"
    )))
}
