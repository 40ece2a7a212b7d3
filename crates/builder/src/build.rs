//! The build pipeline, in distrobuilder's order: source → post-unpack → packages (post-update) →
//! post-packages → generators → systemd generator → post-files → pack.

use crate::definition::Definition;
use crate::filter::{applies, Phase};
use crate::generators;
use crate::load::Loaded;
use crate::pack::{self, PackOptions};
use crate::sandbox::{self, Program};
use crate::sources::{self, SourceContext};
use crate::stepcache::{self, StepCache};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    #[error(transparent)]
    Cache(#[from] stepcache::CacheError),
}

/// What each stage took, and whether the step cache had it.
#[derive(Debug, Default)]
pub struct Summary {
    pub stages: Vec<(&'static str, bool, Duration)>,
}

impl Summary {
    fn add(&mut self, stage: &'static str, cached: bool, started: Instant) {
        self.stages.push((stage, cached, started.elapsed()));
    }

    /// One line per stage and per output file, for the end of a build.
    pub fn print(&self, target: Option<&Path>) {
        eprintln!("summary:");
        for (stage, cached, t) in &self.stages {
            eprintln!(
                "  {stage:<10} {:<6} {:>7.1}s",
                if *cached { "cached" } else { "built" },
                t.as_secs_f64()
            );
        }
        if let Some(dir) = target {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_file())
                .collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                eprintln!(
                    "  {:<40} {:>10}",
                    f.file_name().to_string_lossy(),
                    crate::progress::human(size)
                );
            }
        }
    }
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
    pub step_cache: StepCache,
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

/// Everything the customisation stage depends on besides the source: the hooks and package work
/// that apply in `phase`, rendered, and the environment.
fn customize_inputs(def: &Definition, phase: Phase) -> Result<String, BuildError> {
    let ctx = crate::context(def);
    let mut actions = Vec::new();
    for a in def
        .actions
        .iter()
        .filter(|a| a.trigger != "post-files" && applies(&a.filter, def, phase))
    {
        let text = if a.pongo {
            crate::pongo::render(&a.action, &ctx).map_err(|e| BuildError::Step(e.to_string()))?
        } else {
            a.action.clone()
        };
        actions.push((a.trigger.clone(), text));
    }
    let mut repos = Vec::new();
    for r in def
        .packages
        .repositories
        .iter()
        .filter(|r| applies(&r.filter, def, phase))
    {
        let url =
            crate::pongo::render(&r.url, &ctx).map_err(|e| BuildError::Step(e.to_string()))?;
        let key =
            crate::pongo::render(&r.key, &ctx).map_err(|e| BuildError::Step(e.to_string()))?;
        repos.push((r.name.clone(), r.kind.clone(), url, key));
    }
    let sets: Vec<_> = def
        .packages
        .sets
        .iter()
        .filter(|s| applies(&s.filter, def, phase))
        .collect();
    let p = &def.packages;
    let v = serde_json::json!({
        "phase": phase.target_type(),
        "actions": actions,
        "manager": p.manager, "custom_manager": p.custom_manager, "update": p.update, "cleanup": p.cleanup,
        "sets": sets, "repositories": repos,
        "env": Env::of(def, phase).vars,
    });
    Ok(v.to_string())
}

/// The source stage's key: the source section, what selects the upstream files, the early
/// package sets, and the upstream's identity now.
fn source_key(def: &Definition, identity: &str) -> String {
    let early: Vec<_> = def
        .packages
        .sets
        .iter()
        .filter(|s| s.early && applies(&s.filter, def, Phase::Dir))
        .collect();
    let source = serde_json::json!({
        "source": def.source, "arch": def.image.architecture_mapped, "release": def.image.release, "early": early,
    });
    stepcache::key("source", &[&source.to_string(), identity])
}

/// Fetches the source into `rootfs` and runs the package phase and its hooks, through the step
/// cache: a stage whose inputs are unchanged is copied from it instead.
fn prepare(
    def: &Definition,
    rootfs: &Path,
    phase: Phase,
    opts: &BuildOptions,
    summary: &mut Summary,
) -> Result<Option<String>, BuildError> {
    std::fs::create_dir_all(&opts.sources_dir)
        .map_err(|e| BuildError::Step(format!("{}: {e}", opts.sources_dir.display())))?;
    let mut sctx = SourceContext {
        def,
        rootfs,
        sources_dir: &opts.sources_dir,
        insecure: opts.insecure,
        fetched: Vec::new(),
    };
    let cache = &opts.step_cache;
    let identity = if cache.enabled() {
        sources::identity(&sctx)?
    } else {
        None
    };
    let source_key = identity.map(|id| source_key(def, &id));
    let custom_key = match &source_key {
        Some(k) => Some(stepcache::key(
            "custom",
            &[k, &customize_inputs(def, phase)?],
        )),
        None => None,
    };
    let started = Instant::now();
    if let Some(k) = &custom_key {
        if cache.restore("custom", k, rootfs)? {
            summary.add("source", true, started);
            summary.add("packages", true, started);
            return Ok(custom_key);
        }
    }
    let cached_source = match &source_key {
        Some(k) => cache.restore("source", k, rootfs)?,
        None => false,
    };
    if !cached_source {
        sources::fetch(&mut sctx)?;
        if let Some(k) = &source_key {
            cache.store("source", k, rootfs)?;
        }
    }
    summary.add("source", cached_source, started);
    let started = Instant::now();
    customize(def, rootfs, phase)?;
    if let Some(k) = &custom_key {
        cache.store("custom", k, rootfs)?;
    }
    summary.add("packages", false, started);
    Ok(custom_key)
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
pub fn build_dir(
    loaded: &Loaded,
    target: &Path,
    opts: &BuildOptions,
) -> Result<Summary, BuildError> {
    let def = rendered(loaded, Phase::Dir)?;
    let mut summary = Summary::default();
    prepare(&def, target, Phase::Dir, opts, &mut summary)?;
    let started = Instant::now();
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
    summary.add("files", false, started);
    Ok(summary)
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
) -> Result<Summary, BuildError> {
    let phase = if opts.pack.vm {
        Phase::Vm
    } else {
        Phase::Container
    };
    let def = rendered(loaded, phase)?;
    let rootfs = work.join("rootfs");
    let mut summary = Summary::default();
    // The outputs themselves are cached too, by the customised rootfs's key and everything the
    // finishing stage reads (not when a `copy` generator reads host files the key can't see).
    let started = Instant::now();
    let cache = &opts.step_cache;
    let copies_host_files = def
        .files
        .iter()
        .any(|f| f.generator == "copy" && applies(&f.filter, &def, phase));
    let out_key = |custom: &str| {
        let p = &opts.pack;
        let inputs = serde_json::json!({
            "def": def, "lxc": outputs.lxc, "incus": outputs.incus,
            "compression": [p.compression.name(), p.compression.level.map(|l| l.to_string()).unwrap_or_default()],
            "unified": p.incus_type == pack::IncusType::Unified, "epoch": p.epoch, "generator": SYSTEMD_GENERATOR,
        });
        stepcache::key(
            "outputs",
            &[custom, &inputs.to_string(), env!("CARGO_PKG_VERSION")],
        )
    };
    if cache.enabled() && !copies_host_files {
        let probe = SourceContext {
            def: &def,
            rootfs: &rootfs,
            sources_dir: &opts.sources_dir,
            insecure: opts.insecure,
            fetched: Vec::new(),
        };
        if let Some(id) = sources::identity(&probe)? {
            let custom = stepcache::key(
                "custom",
                &[&source_key(&def, &id), &customize_inputs(&def, phase)?],
            );
            if cache.restore("outputs", &out_key(&custom), target)? {
                for stage in ["source", "packages", "files", "pack"] {
                    summary.add(stage, true, started);
                }
                return Ok(summary);
            }
        }
    }
    let custom_key = prepare(&def, &rootfs, phase, opts, &mut summary)?;
    let packed = tempfile::Builder::new()
        .prefix("outputs-")
        .tempdir_in(work)
        .map_err(|e| BuildError::Step(format!("{}: {e}", work.display())))?;
    finish_and_pack(
        &def,
        &rootfs,
        packed.path(),
        outputs,
        phase,
        opts,
        &mut summary,
    )?;
    if let (Some(k), false) = (&custom_key, copies_host_files) {
        cache.store("outputs", &out_key(k), packed.path())?;
    }
    move_outputs(packed.path(), target)?;
    Ok(summary)
}

/// Moves the packed files into the target directory (a rename, or a copy across filesystems).
fn move_outputs(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(|e| BuildError::Step(format!("{}: {e}", to.display())))?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| BuildError::Step(format!("{}: {e}", from.display())))?;
    for e in entries.flatten() {
        let dest = to.join(e.file_name());
        if std::fs::rename(e.path(), &dest).is_err() {
            std::fs::copy(e.path(), &dest)
                .map_err(|err| BuildError::Step(format!("{}: {err}", dest.display())))?;
        }
    }
    Ok(())
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
) -> Result<Summary, BuildError> {
    let phase = if opts.pack.vm {
        Phase::Vm
    } else {
        Phase::Container
    };
    let def = rendered(loaded, phase)?;
    let rootfs = work.join("rootfs");
    let mut summary = Summary::default();
    let started = Instant::now();
    overlay(source, work, &rootfs)?;
    customize(&def, &rootfs, Phase::PackRerun { vm: opts.pack.vm })?;
    summary.add("packages", false, started);
    finish_and_pack(&def, &rootfs, target, outputs, phase, opts, &mut summary)?;
    Ok(summary)
}

fn finish_and_pack(
    def: &Definition,
    rootfs: &Path,
    target: &Path,
    outputs: Outputs,
    phase: Phase,
    opts: &BuildOptions,
    summary: &mut Summary,
) -> Result<(), BuildError> {
    let started = Instant::now();
    let gen = generators::run(def, rootfs, phase, true)?;
    install_systemd_generator(rootfs)?;
    run_actions(def, "post-files", rootfs, phase, &Env::of(def, phase))?;
    wipe_dev(rootfs);
    if let Some(epoch) = opts.pack.epoch {
        scrub_build_records(rootfs)?;
        clamp_mtimes(rootfs, epoch);
    }
    summary.add("files", false, started);
    let started = Instant::now();
    std::fs::create_dir_all(target)
        .map_err(|e| BuildError::Step(format!("{}: {e}", target.display())))?;
    pack::pack(def, rootfs, target, &gen, outputs, &opts.pack)?;
    summary.add("pack", false, started);
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

/// For reproducible images: the records a build writes with the time in them (package manager
/// logs, ldconfig's aux-cache) are emptied, as Debian's reproducible image tools do.
fn scrub_build_records(rootfs: &Path) -> Result<(), BuildError> {
    sandbox::in_root(rootfs, || {
        let _ = std::fs::remove_file("/var/cache/ldconfig/aux-cache");
        let mut stack = vec![PathBuf::from("/var/log")];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(e.path());
                } else if ft.is_file() {
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(e.path());
                }
            }
        }
        Ok(())
    })?;
    Ok(())
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
