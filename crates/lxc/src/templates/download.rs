//! The `download` template: a container from an image server's LXC images, as LXC's lxc-download
//! does (`-d DIST -r RELEASE -a ARCH [--variant V] [--server HOST:PORT|URL]`, `--list`,
//! `--flush-cache`, `--force-cache`), with what it lacks: every file's detached signature is checked
//! against the server's public key (given once with `--keyfile`, then kept per server; no keyserver),
//! a self-signed server certificate can be pinned (`--server-cert`), the index can't point outside
//! the server's tree, and the rootfs is unpacked by the safe unpacker. `--no-validate` skips the
//! signature checks, loudly. Downloads are cached as LXC caches them
//! (`/var/cache/lxc/download/DIST/RELEASE/ARCH/VARIANT`, `~/.cache/lxc/...` for regular users); a
//! failed download or check leaves neither a cache entry nor a container.

use super::local::{map_config, render_templates};
use super::{TemplateContext, TemplateOutput};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

const COMPAT_LEVEL: u32 = 7;
const MAX_META_FILE: u64 = 1 << 20;

#[derive(Default)]
struct Options {
    dist: String,
    release: String,
    arch: String,
    variant: String,
    server: String,
    keyfile: Option<PathBuf>,
    server_cert: Option<PathBuf>,
    list: bool,
    flush_cache: bool,
    force_cache: bool,
    no_validate: bool,
}

fn usage() -> &'static str {
    "download template options: -d DIST -r RELEASE -a ARCH [--variant V] [--server HOST[:PORT]|URL] \
     [--keyfile KEY.asc] [--server-cert CERT.pem] [--list] [--flush-cache] [--force-cache] [--no-validate]"
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        variant: "default".into(),
        server: "images.linuxcontainers.org".into(),
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| anyhow!("download template: {name} needs a value"))
        };
        match flag {
            "-d" | "--dist" => o.dist = value("--dist")?,
            "-r" | "--release" => o.release = value("--release")?,
            "-a" | "--arch" => o.arch = value("--arch")?,
            "--variant" => o.variant = value("--variant")?,
            "--server" => o.server = value("--server")?,
            "--keyfile" => o.keyfile = Some(PathBuf::from(value("--keyfile")?)),
            "--server-cert" => o.server_cert = Some(PathBuf::from(value("--server-cert")?)),
            "-l" | "--list" => o.list = true,
            "--flush-cache" => o.flush_cache = true,
            "--force-cache" => o.force_cache = true,
            "--no-validate" => o.no_validate = true,
            "--keyserver" | "--keyid" => {
                let _ = value(flag)?;
                eprintln!("note: {flag} is ignored: warren checks signatures against the server's key file (--keyfile), no keyserver is asked");
            }
            "-h" | "--help" => bail!("{}", usage()),
            other => bail!(
                "download template: unknown option \"{other}\" ({})",
                usage()
            ),
        }
    }
    if !o.list && (o.dist.is_empty() || o.release.is_empty() || o.arch.is_empty()) {
        bail!("download template: -d DIST, -r RELEASE and -a ARCH are required (--list shows what the server has)");
    }
    for (name, v) in [
        ("--dist", &o.dist),
        ("--release", &o.release),
        ("--arch", &o.arch),
        ("--variant", &o.variant),
    ] {
        if !v.is_empty() && !warren_image::info::is_path_word(v) {
            bail!("download template: {name} \"{v}\" is not a plain name");
        }
    }
    Ok(o)
}

/// `HOST[:PORT]` means https://HOST[:PORT]/ as in LXC; a URL is taken as the tree's base.
fn base_url(server: &str) -> String {
    let s = server.trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        format!("{s}/")
    } else {
        format!("https://{s}/")
    }
}

/// A name for per-server trust files: the server without scheme, `/` and `:` made safe.
fn server_slug(server: &str) -> String {
    server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where keys and pinned certificates are kept per server.
fn trust_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WARREN_DOWNLOAD_TRUST_DIR") {
        return PathBuf::from(d);
    }
    if is_root() {
        PathBuf::from("/etc/warren/download")
    } else {
        dirs_home().join(".config/warren/download")
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn cache_base() -> PathBuf {
    if let Some(d) = std::env::var_os("WARREN_LXC_CACHE") {
        return PathBuf::from(d);
    }
    if is_root() {
        PathBuf::from("/var/cache/lxc")
    } else {
        dirs_home().join(".cache/lxc")
    }
}

/// The trust material for a server: a key file given now is kept for next time.
fn trust(o: &Options) -> Result<(Option<String>, Option<Vec<u8>>)> {
    let dir = trust_dir();
    let slug = server_slug(&o.server);
    let key_path = dir.join(format!("{slug}.asc"));
    let cert_path = dir.join(format!("{slug}.crt"));
    let keep = |from: &Path, to: &Path| -> Result<()> {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::copy(from, to)
            .with_context(|| format!("keep {} as {}", from.display(), to.display()))?;
        Ok(())
    };
    if let Some(k) = &o.keyfile {
        let text = std::fs::read_to_string(k).with_context(|| format!("read {}", k.display()))?;
        if !text.contains("BEGIN PGP PUBLIC KEY BLOCK") {
            bail!(
                "{}: not an armored OpenPGP public key (the server's keys/signing.asc)",
                k.display()
            );
        }
        keep(k, &key_path)?;
    }
    if let Some(c) = &o.server_cert {
        keep(c, &cert_path)?;
    }
    let key = std::fs::read_to_string(&key_path).ok();
    let cert = std::fs::read_to_string(&cert_path)
        .ok()
        .map(|pem| warren_image::fetch::pem_to_der(&pem).unwrap_or_default());
    Ok((key, cert))
}

fn agent(pinned: Option<Vec<u8>>) -> ureq::Agent {
    warren_image::fetch::agent(
        &format!(
            "lxc/5.0.2 compat:{COMPAT_LEVEL} warren/{}",
            env!("CARGO_PKG_VERSION")
        ),
        pinned,
    )
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn get(&self, path: &str) -> Result<Option<ureq::Response>> {
        let url = format!("{}{}", self.base, path.trim_start_matches('/'));
        match self.agent.get(&url).call() {
            Ok(r) => Ok(Some(r)),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Transport(t)) if t.to_string().contains("UnknownIssuer") || t.to_string().contains("certificate") => bail!(
                "{url}: the server's TLS certificate is not trusted: pass --server-cert with the certificate `warren-build serve` printed ({t})"
            ),
            Err(e) => bail!("{url}: {e}"),
        }
    }

    fn text(&self, path: &str) -> Result<Option<String>> {
        match self.get(path)? {
            Some(r) => {
                let mut s = String::new();
                r.into_reader()
                    .take(16 << 20)
                    .read_to_string(&mut s)
                    .with_context(|| format!("read {path}"))?;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    fn file(&self, path: &str, dest: &Path) -> Result<()> {
        let r = self.get(path)?.ok_or_else(|| {
            anyhow!(
                "{}{}: not found on the server",
                self.base,
                path.trim_start_matches('/')
            )
        })?;
        let expected: Option<u64> = r.header("content-length").and_then(|v| v.parse().ok());
        let mut f =
            std::fs::File::create(dest).with_context(|| format!("create {}", dest.display()))?;
        let n = std::io::copy(&mut r.into_reader(), &mut f)
            .with_context(|| format!("download {path}"))?;
        if expected.is_some_and(|e| e != n) {
            bail!(
                "{path}: the download was cut short ({n} of {} bytes)",
                expected.unwrap_or(0)
            );
        }
        Ok(())
    }
}

/// One line of the index: dist;release;arch;variant;build;path.
struct IndexLine {
    fields: [String; 5],
    path: String,
}

fn parse_index(text: &str) -> Vec<IndexLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(';').collect();
            if f.len() < 6 || f[4].is_empty() || f[5].is_empty() {
                return None;
            }
            Some(IndexLine {
                fields: [f[0], f[1], f[2], f[3], f[4]].map(str::to_string),
                path: f[5].to_string(),
            })
        })
        .collect()
}

/// An index path must name a directory inside the server's tree.
fn check_index_path(p: &str) -> Result<()> {
    let bad = !p.starts_with('/')
        || p.contains("://")
        || p.contains('\\')
        || p.split('/').any(|c| c == ".." || c == ".")
        || p.chars().any(|c| c.is_control());
    if bad {
        bail!("the server's index points outside its tree (\"{p}\"); refusing it");
    }
    Ok(())
}

fn verify(file: &Path, sig: &Path, key: &str) -> Result<()> {
    warren_image::sign::verify(file, sig, &[key]).map_err(|e| anyhow!("{e} (the server's key)"))
}

/// The metadata tarball's flat files (config, templates, create-message, expiry, ...), extracted
/// into `dir` under fixed names only.
fn extract_meta(meta: &Path, dir: &Path) -> Result<()> {
    let mut ar = tar::Archive::new(warren_image::unpack::open_archive(meta)?);
    let mut has_config = false;
    for entry in ar
        .entries()
        .with_context(|| format!("read {}", meta.display()))?
    {
        let mut entry = entry.with_context(|| format!("read {}", meta.display()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let base = name.split('.').next().unwrap_or("");
        if !matches!(
            base,
            "config"
                | "config-user"
                | "templates"
                | "create-message"
                | "expiry"
                | "excludes-user"
                | "excludes"
        ) || name.contains('/')
        {
            continue;
        }
        let mut data = Vec::new();
        entry.by_ref().take(MAX_META_FILE).read_to_end(&mut data)?;
        has_config |= name == "config";
        std::fs::write(dir.join(&name), data)?;
    }
    if !has_config {
        bail!(
            "{}: not an LXC image metadata tarball (no config in it)",
            meta.display()
        );
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn create(ctx: &TemplateContext<'_>) -> Result<TemplateOutput> {
    let o = parse_args(ctx.args)?;
    let (key, pinned) = trust(&o)?;
    let client = Client {
        agent: agent(pinned),
        base: base_url(&o.server),
    };
    let validate = !o.no_validate;
    if !validate {
        eprintln!("WARNING: --no-validate: the image's signatures are NOT checked; anyone who can alter the download controls the container");
    }
    let need_key = || -> Result<()> {
        if validate && key.is_none() {
            bail!(
                "no signing key for {}: pass --keyfile with the server's public key (its keys/signing.asc) once, or --no-validate",
                o.server
            );
        }
        Ok(())
    };
    let fetch_index = || -> Result<String> {
        need_key()?;
        println!("Downloading the image index");
        let text = match client.text(&format!("meta/1.0/index-system.{COMPAT_LEVEL}"))? {
            Some(t) => t,
            None => client.text("meta/1.0/index-system")?.ok_or_else(|| {
                anyhow!(
                    "{}: no meta/1.0/index-system: is this an LXC image server?",
                    client.base
                )
            })?,
        };
        if let (true, Some(key)) = (validate, &key) {
            // our servers sign the index; a server that doesn't still gets every file checked
            if let Some(sig) = client.text("meta/1.0/index-system.asc")? {
                let dir = tempfile::tempdir()?;
                std::fs::write(dir.path().join("index"), &text)?;
                std::fs::write(dir.path().join("index.asc"), sig)?;
                verify(
                    &dir.path().join("index"),
                    &dir.path().join("index.asc"),
                    key,
                )
                .context("the image index")?;
            }
        }
        Ok(text)
    };
    if o.list {
        let index = fetch_index()?;
        println!("\n---\nDIST\tRELEASE\tARCH\tVARIANT\tBUILD\n---");
        for l in parse_index(&index) {
            let f = &l.fields;
            let want = |v: &str, i: usize| v.is_empty() || f[i] == v;
            if want(&o.dist, 0)
                && want(&o.release, 1)
                && want(&o.arch, 2)
                && (o.dist.is_empty() || want(&o.variant, 3))
            {
                println!("{}\t{}\t{}\t{}\t{}", f[0], f[1], f[2], f[3], f[4]);
            }
        }
        println!("---");
        bail!("--list: listed the images; no container was created");
    }

    let cache = cache_base()
        .join("download")
        .join(&o.dist)
        .join(&o.release)
        .join(&o.arch)
        .join(&o.variant);
    let mut use_cache = false;
    let mut fresh = false;
    if cache.is_dir() {
        if o.flush_cache {
            println!("Flushing the cache...");
            std::fs::remove_dir_all(&cache)
                .with_context(|| format!("remove {}", cache.display()))?;
        } else if o.force_cache {
            use_cache = true;
        } else {
            use_cache = true;
            if let Ok(e) = std::fs::read_to_string(cache.join("expiry")) {
                if e.trim().parse::<i64>().is_ok_and(|t| t < now()) {
                    println!("The cached copy has expired, re-downloading...");
                    use_cache = false;
                }
            }
        }
    } else if o.force_cache {
        bail!(
            "--force-cache: no cached copy of {}/{}/{}/{}",
            o.dist,
            o.release,
            o.arch,
            o.variant
        );
    }
    if !use_cache {
        let index = fetch_index()?;
        let line = parse_index(&index)
            .into_iter()
            .find(|l| {
                l.fields[0] == o.dist
                    && l.fields[1] == o.release
                    && l.fields[2] == o.arch
                    && l.fields[3] == o.variant
            })
            .ok_or_else(|| {
                anyhow!(
                    "no image {}/{}/{}/{} on {} (--list shows what it has)",
                    o.dist,
                    o.release,
                    o.arch,
                    o.variant,
                    o.server
                )
            })?;
        check_index_path(&line.path)?;
        let build = &line.fields[4];
        if std::fs::read_to_string(cache.join("build_id")).is_ok_and(|b| b.trim() == build) {
            println!("The cache is already up to date\nUsing image from local cache");
        } else {
            let parent = cache.parent().ok_or_else(|| anyhow!("bad cache path"))?;
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
            // staged beside the cache entry: it becomes the entry by a rename once verified
            let staged = tempfile::Builder::new()
                .prefix(".download-")
                .tempdir_in(parent)?;
            let dir = staged.path();
            let base = line.path.trim_end_matches('/');
            for file in ["rootfs.tar.xz", "meta.tar.xz"] {
                println!(
                    "Downloading the {}",
                    if file == "meta.tar.xz" {
                        "metadata"
                    } else {
                        "rootfs"
                    }
                );
                client.file(&format!("{base}/{file}"), &dir.join(file))?;
                if let (true, Some(key)) = (validate, &key) {
                    client.file(
                        &format!("{base}/{file}.asc"),
                        &dir.join(format!("{file}.asc")),
                    )?;
                    verify(&dir.join(file), &dir.join(format!("{file}.asc")), key)?;
                }
            }
            extract_meta(&dir.join("meta.tar.xz"), dir)?;
            std::fs::remove_file(dir.join("meta.tar.xz"))?;
            std::fs::write(dir.join("build_id"), format!("{build}\n"))?;
            if cache.exists() {
                std::fs::remove_dir_all(&cache)
                    .with_context(|| format!("remove {}", cache.display()))?;
            }
            let staged = staged.keep();
            std::fs::rename(&staged, &cache)
                .with_context(|| format!("move the download into {}", cache.display()))?;
            fresh = true;
            println!("The image cache is now ready");
        }
    } else {
        println!("Using image from local cache");
    }

    println!("Unpacking the rootfs");
    // an unprivileged container (id maps, or we run in a user namespace) gets no device nodes, as
    // LXC's excludes-user says
    let in_userns = std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| !m.split_whitespace().eq(["0", "0", "4294967295"]))
        .unwrap_or(false);
    let no_dev = in_userns || ctx.unprivileged;
    if let Err(e) =
        warren_image::unpack::unpack_fstree(&cache.join("rootfs.tar.xz"), ctx.rootfs, no_dev)
    {
        // an image that can't be unpacked safely is not kept either
        if fresh {
            let _ = std::fs::remove_dir_all(&cache);
        }
        // the whole chain in one line: which entry, and why
        bail!("the image's rootfs: {e:#}");
    }
    let _ = std::fs::create_dir_all(ctx.rootfs.join("dev/pts"));
    if let Ok(t) = std::fs::read_to_string(cache.join("templates")) {
        render_templates(ctx.rootfs, &t, ctx.name)?;
    }
    let config =
        std::fs::read_to_string(cache.join("config")).context("the cached image has no config")?;
    if let Ok(msg) = std::fs::read_to_string(cache.join("create-message")) {
        if !msg.trim().is_empty() {
            println!("\n---\n{}", msg.trim_end());
        }
    }
    Ok(TemplateOutput {
        config_lines: map_config(&config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_index_lines_and_paths() {
        assert_eq!(base_url("127.0.0.1:8443"), "https://127.0.0.1:8443/");
        assert_eq!(base_url("http://h:80/tree/"), "http://h:80/tree/");
        assert_eq!(server_slug("https://127.0.0.1:8443/"), "127.0.0.1_8443");
        let idx = parse_index("busybox;1.35;amd64;default;20260101_0000;/images/busybox/1.35/amd64/default/20260101_0000/\nbad line\n");
        assert_eq!(idx.len(), 1);
        assert!(check_index_path(&idx[0].path).is_ok());
        for bad in [
            "/images/../../etc/",
            "images/x/",
            "http://evil/x/",
            "/a/./b/",
        ] {
            assert!(check_index_path(bad).is_err(), "{bad}");
        }
        assert!(parse_args(&[
            "-d".into(),
            "../x".into(),
            "-r".into(),
            "1".into(),
            "-a".into(),
            "amd64".into()
        ])
        .is_err());
    }
}
