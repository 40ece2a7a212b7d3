//! Flags shared by the build and pack commands, and the work directory they use.

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};
use warren_builder::build::BuildOptions;
use warren_builder::pack::{IncusType, PackOptions};
use warren_image::compression::Compression;

#[derive(ClapArgs, Clone)]
pub struct Common {
    /// Override a value: KEY=VALUE (repeatable; several pairs may be comma-separated; \, and \= escape)
    #[arg(short = 'o', long = "options", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Work directory (emptied first; default: a new /var/cache/warren-build.XXXXXX)
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Remove the work directory at the end, also after errors
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub cleanup: bool,
    /// Proceed with sources that can't be verified (plain HTTP without keys, skip_verification)
    #[arg(long)]
    pub insecure: bool,
    /// Keep each stage (source, customised rootfs, outputs) here by a hash of its inputs, and skip
    /// stages whose inputs are unchanged
    #[arg(
        long = "step-cache",
        value_name = "DIR",
        default_value = "/var/cache/warren-build"
    )]
    pub step_cache: PathBuf,
    /// Build every stage from scratch (the step cache is neither read nor written)
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

#[derive(ClapArgs, Clone)]
pub struct Sources {
    /// Where downloads are kept between builds
    #[arg(long = "sources-dir", value_name = "DIR", default_value_os_t = default_sources_dir())]
    pub sources_dir: PathBuf,
    /// Keep the downloads after the build
    #[arg(long = "keep-sources", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub keep_sources: bool,
}

#[derive(ClapArgs, Clone)]
pub struct Packing {
    /// Compression: xz (default), zstd, gzip, bzip2, lzip, lzma, lzo or none, with an optional -LEVEL
    #[arg(long, default_value = "xz")]
    pub compression: String,
}

#[derive(ClapArgs, Clone)]
pub struct IncusFlags {
    /// split (incus.tar.* + rootfs.squashfs) or unified (one tarball)
    #[arg(long = "type", default_value = "split", value_parser = ["split", "unified"])]
    pub kind: String,
    /// Build a VM image (not supported yet)
    #[arg(long)]
    pub vm: bool,
}

fn default_sources_dir() -> PathBuf {
    std::env::temp_dir().join("warren-build")
}

/// Build commands need root, and run in a mount namespace of their own so that no mount they make
/// (overlays, debootstrap's /proc) can outlive them.
pub fn enter_build_namespace() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("building images needs root (run it with sudo)");
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("unshare a mount namespace")?;
    let none: Option<&str> = None;
    nix::mount::mount(
        none,
        "/",
        none,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        none,
    )
    .context("make the build's mounts private")?;
    Ok(())
}

/// The work directory: the given one emptied, or a fresh one; removed at drop when `cleanup`.
pub struct WorkDir {
    pub path: PathBuf,
    cleanup: bool,
}

impl WorkDir {
    pub fn new(dir: Option<&Path>, cleanup: bool) -> Result<WorkDir> {
        let path = match dir {
            Some(d) => {
                if d.exists() {
                    std::fs::remove_dir_all(d).with_context(|| format!("empty {}", d.display()))?;
                }
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                d.to_path_buf()
            }
            None => {
                std::fs::create_dir_all("/var/cache").context("create /var/cache")?;
                tempfile::Builder::new()
                    .prefix("warren-build.")
                    .tempdir_in("/var/cache")
                    .context("create a work dir in /var/cache")?
                    .keep()
            }
        };
        Ok(WorkDir { path, cleanup })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.cleanup {
            // overlays first: the work dir may hold a mount
            let merged = self.path.join("rootfs");
            let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn options(
    common: &Common,
    sources: Option<&Sources>,
    packing: Option<&Packing>,
    incus: Option<&IncusFlags>,
    with_post_files: bool,
) -> Result<BuildOptions> {
    let compression = match packing {
        Some(p) => Compression::parse(&p.compression)?,
        None => Compression::XZ,
    };
    if incus.is_some_and(|i| i.vm) {
        bail!("--vm: VM images are not supported by warren-build yet");
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|s| s.trim().parse::<i64>())
        .transpose()
        .context("SOURCE_DATE_EPOCH must be a unix time")?;
    Ok(BuildOptions {
        step_cache: warren_builder::stepcache::StepCache::new(
            (!common.no_cache).then(|| common.step_cache.clone()),
        ),
        sources_dir: sources
            .map(|s| s.sources_dir.clone())
            .unwrap_or_else(default_sources_dir),
        insecure: common.insecure,
        with_post_files,
        pack: PackOptions {
            compression,
            incus_type: if incus.is_some_and(|i| i.kind == "unified") {
                IncusType::Unified
            } else {
                IncusType::Split
            },
            vm: false,
            epoch,
        },
    })
}

/// Removes the sources dir after the build when --keep-sources=false.
pub fn finish_sources(sources: &Sources) {
    if !sources.keep_sources {
        let _ = std::fs::remove_dir_all(&sources.sources_dir);
    }
}

pub fn load(def: &str, common: &Common) -> Result<warren_builder::load::Loaded> {
    Ok(warren_builder::load::load_path(def, &common.options)?)
}

/// build-lxc, build-incus and build-all: the definition built into a fresh work directory and
/// packed as `outputs` into `target`, with the summary at the end.
pub fn build_image(
    definition: &str,
    target: &Path,
    common: &Common,
    sources: &Sources,
    packing: &Packing,
    incus: Option<&IncusFlags>,
    outputs: warren_builder::build::Outputs,
) -> Result<()> {
    let loaded = load(definition, common)?;
    enter_build_namespace()?;
    let opts = options(common, Some(sources), Some(packing), incus, false)?;
    let work = WorkDir::new(common.cache_dir.as_deref(), common.cleanup)?;
    let r = warren_builder::build::build_image(&loaded, &work.path, target, outputs, &opts);
    finish_sources(sources);
    r?.print(Some(target));
    Ok(())
}
