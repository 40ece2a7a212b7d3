//! The build pipeline, in distrobuilder's order: source → post-unpack → packages (post-update) →
//! post-packages → generators → systemd generator → post-files → pack.

use crate::definition::Definition;
use crate::filter::{applies, Phase};
use crate::generators;
use crate::load::Loaded;
use crate::pack::{self, PackOptions};
use crate::sandbox::{self, Program};
use crate::sources::{self, SourceContext};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error(transparent)]
    Source(#[from] sources::SourceError),
    #[error(transparent)]
    Generator(#[from] generators::GeneratorError),
    #[error(transparent)]
    Pack(#[from] pack::PackError),
}

/// The environment of package commands and actions.
pub struct Env {
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn of(def: &Definition, phase: Phase) -> Env {
        let mut vars: Vec<(String, String)> = Vec::new();
        if !def.environment.clear_defaults {
            for (k, v) in [
                (
                    "PATH",
                    "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
                ),
                ("SHELL", "/bin/sh"),
                ("TERM", "xterm"),
                ("DEBIAN_FRONTEND", "noninteractive"),
                ("LANG", "C.UTF-8"),
            ] {
                vars.push((k.into(), v.into()));
            }
        }
        for v in def
            .environment
            .variables
            .iter()
            .filter(|v| applies(&v.filter, def, phase))
        {
            vars.retain(|(k, _)| *k != v.key);
            vars.push((v.key.clone(), v.value.clone()));
        }
        Env { vars }
    }
}

/// Runs the actions of `trigger` that apply in `phase`.
pub fn run_actions(
    def: &Definition,
    trigger: &str,
    rootfs: &Path,
    phase: Phase,
    env: &Env,
) -> Result<(), BuildError> {
    let ctx = crate::context(def);
    for (i, a) in def.actions.iter().enumerate() {
        if a.trigger != trigger || !applies(&a.filter, def, phase) {
            continue;
        }
        let script = if a.pongo {
            crate::pongo::render(&a.action, &ctx)
                .map_err(|e| BuildError::Step(format!("actions.{i}.action: {e}")))?
        } else {
            a.action.clone()
        };
        if !script.starts_with("#!") {
            return Err(BuildError::Step(format!(
                "actions.{i} ({trigger}): the script must start with a #! line"
            )));
        }
        crate::progress::step(&format!("action {i} ({trigger})"));
        sandbox::run(
            rootfs,
            Program::Script(&script),
            &env.vars,
            &format!("actions.{i} ({trigger})"),
        )?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub sources_dir: PathBuf,
    pub insecure: bool,
    pub pack: PackOptions,
    pub with_post_files: bool,
}

/// The definition with the rendered `image.name` and `image.description`.
pub fn rendered(loaded: &Loaded, phase: Phase) -> Result<Definition, BuildError> {
    let mut def = loaded.def.clone();
    def.targets.kind = phase.target_type().to_string();
    let ctx = crate::context(&def);
    def.image.name = crate::pongo::render(&def.image.name, &ctx)
        .map_err(|e| BuildError::Step(format!("image.name: {e}")))?;
    def.image.description = crate::pongo::render(&def.image.description, &ctx)
        .map_err(|e| BuildError::Step(format!("image.description: {e}")))?;
    Ok(def)
}

/// Fetches the source into `rootfs` and runs the package phase and its hooks.
fn prepare(
    def: &Definition,
    rootfs: &Path,
    phase: Phase,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    std::fs::create_dir_all(&opts.sources_dir)
        .map_err(|e| BuildError::Step(format!("{}: {e}", opts.sources_dir.display())))?;
    let mut sctx = SourceContext {
        def,
        rootfs,
        sources_dir: &opts.sources_dir,
        insecure: opts.insecure,
        fetched: Vec::new(),
    };
    sources::fetch(&mut sctx)?;
    customize(def, rootfs, phase)
}

/// post-unpack, packages, post-packages.
fn customize(def: &Definition, rootfs: &Path, phase: Phase) -> Result<(), BuildError> {
    let env = Env::of(def, phase);
    run_actions(def, "post-unpack", rootfs, phase, &env)?;
    crate::packages::run(def, rootfs, phase, &env)?;
    run_actions(def, "post-packages", rootfs, phase, &env)?;
    Ok(())
}

/// `build-dir`: the customised rootfs in `target`.
pub fn build_dir(loaded: &Loaded, target: &Path, opts: &BuildOptions) -> Result<(), BuildError> {
    let def = rendered(loaded, Phase::Dir)?;
    prepare(&def, target, Phase::Dir, opts)?;
    generators::run(&def, target, Phase::Dir, false)?;
    if opts.with_post_files {
        run_actions(
            &def,
            "post-files",
            target,
            Phase::Dir,
            &Env::of(&def, Phase::Dir),
        )?;
    }
    wipe_dev(target);
    Ok(())
}

/// Which images a build makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    pub lxc: bool,
    pub incus: bool,
}

/// `build-lxc` / `build-incus` / both: source into `work/rootfs`, customise, finish, pack.
pub fn build_image(
    loaded: &Loaded,
    work: &Path,
    target: &Path,
    outputs: Outputs,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let phase = if opts.pack.vm {
        Phase::Vm
    } else {
        Phase::Container
    };
    let def = rendered(loaded, phase)?;
    let rootfs = work.join("rootfs");
    prepare(&def, &rootfs, phase, opts)?;
    finish_and_pack(&def, &rootfs, target, outputs, phase, opts)
}

/// `pack-lxc` / `pack-incus`: an existing rootfs (build-dir's), seen through an overlay so it
/// stays as it is; typed package and hook phases re-run, then generators and packing.
pub fn pack_existing(
    loaded: &Loaded,
    source: &Path,
    work: &Path,
    target: &Path,
    outputs: Outputs,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let phase = if opts.pack.vm {
        Phase::Vm
    } else {
        Phase::Container
    };
    let def = rendered(loaded, phase)?;
    let rootfs = work.join("rootfs");
    overlay(source, work, &rootfs)?;
    customize(&def, &rootfs, Phase::PackRerun { vm: opts.pack.vm })?;
    finish_and_pack(&def, &rootfs, target, outputs, phase, opts)
}

fn finish_and_pack(
    def: &Definition,
    rootfs: &Path,
    target: &Path,
    outputs: Outputs,
    phase: Phase,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let gen = generators::run(def, rootfs, phase, true)?;
    install_systemd_generator(rootfs)?;
    run_actions(def, "post-files", rootfs, phase, &Env::of(def, phase))?;
    wipe_dev(rootfs);
    if let Some(epoch) = opts.pack.epoch {
        clamp_mtimes(rootfs, epoch);
    }
    std::fs::create_dir_all(target)
        .map_err(|e| BuildError::Step(format!("{}: {e}", target.display())))?;
    pack::pack(def, rootfs, target, &gen, outputs, &opts.pack)?;
    Ok(())
}

/// Mounts `lower` + an upper dir in `work` at `merged` (the builder runs in a mount namespace of
/// its own, so this mount goes when it exits). Without overlayfs, a copy.
fn overlay(lower: &Path, work: &Path, merged: &Path) -> Result<(), BuildError> {
    let upper = work.join("upper");
    let wdir = work.join("overlay-work");
    for d in [&upper, &wdir, &merged.to_path_buf()] {
        std::fs::create_dir_all(d)
            .map_err(|e| BuildError::Step(format!("{}: {e}", d.display())))?;
    }
    let lower = std::fs::canonicalize(lower)
        .map_err(|e| BuildError::Step(format!("{}: {e}", lower.display())))?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},xino=off",
        lower.display(),
        upper.display(),
        wdir.display()
    );
    if nix::mount::mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .is_ok()
    {
        return Ok(());
    }
    eprintln!(
        "warning: overlayfs is not available for {}; copying the rootfs instead",
        lower.display()
    );
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", lower.display()))
        .arg(merged)
        .status()
        .map_err(|e| BuildError::Step(format!("cp: {e}")))?;
    if !status.success() {
        return Err(BuildError::Step(format!(
            "copying {} failed",
            lower.display()
        )));
    }
    Ok(())
}

const SYSTEMD_GENERATOR: &str = include_str!("systemd-generator.sh");

/// Every image whose rootfs has systemd gets warren's generator (systemd-generator.sh).
pub fn install_systemd_generator(rootfs: &Path) -> Result<(), BuildError> {
    sandbox::in_root(rootfs, || {
        if !Path::new("/etc/systemd").is_dir() {
            return Ok(());
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = Path::new("/etc/systemd/system-generators");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("lxc");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, SYSTEMD_GENERATOR).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// The rootfs's /dev is left empty, as distrobuilder leaves it: the container manager makes /dev.
fn wipe_dev(rootfs: &Path) {
    let dev = rootfs.join("dev");
    if dev.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false) {
        if let Ok(rd) = std::fs::read_dir(&dev) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}

/// Times later than SOURCE_DATE_EPOCH become it, so both outputs are reproducible.
fn clamp_mtimes(root: &Path, epoch: i64) {
    use std::os::unix::fs::MetadataExt;
    let t = nix::sys::time::TimeSpec::new(epoch, 0);
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(p.clone());
                if md.mtime() > epoch {
                    dirs.push(p);
                }
            } else if md.mtime() > epoch {
                let _ = nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &p,
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                );
            }
        }
    }
    dirs.push(root.to_path_buf());
    for d in dirs {
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &d,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
}
