//! What every lxc-* tool shares: the common options (-n, -P, -f, -o, -l, -q), lxcpath and
//! default-config lookup, loading a container's config into a runtime spec, and error printing.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use warren_lxc_config::Config;
use warren_runtime::spec::ContainerSpec;

/// The options of every lxc-* tool.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Common {
    /// Name of the container
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Use the specified container path (default: /var/lib/lxc, or lxc.lxcpath in /etc/lxc/lxc.conf)
    #[arg(short = 'P', long = "lxcpath", value_name = "PATH")]
    pub lxcpath: Option<PathBuf>,
    /// Load the configuration file instead of <lxcpath>/<name>/config
    #[arg(short = 'f', long = "rcfile", value_name = "FILE")]
    pub rcfile: Option<PathBuf>,
    /// Log file (every step of start at -l DEBUG)
    #[arg(short = 'o', long = "logfile", value_name = "FILE")]
    pub logfile: Option<PathBuf>,
    /// Log priority: TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, CRIT, ALERT, FATAL
    #[arg(short = 'l', long = "logpriority", value_name = "LEVEL")]
    pub logpriority: Option<String>,
    /// Don't print warnings
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// The common options minus `-f` (for tools where -f means something else: ls -f, destroy -f).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Base {
    /// Name of the container
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Use the specified container path (default: /var/lib/lxc, or lxc.lxcpath in /etc/lxc/lxc.conf)
    #[arg(short = 'P', long = "lxcpath", value_name = "PATH")]
    pub lxcpath: Option<PathBuf>,
    /// Log file
    #[arg(short = 'o', long = "logfile", value_name = "FILE")]
    pub logfile: Option<PathBuf>,
    /// Log priority
    #[arg(short = 'l', long = "logpriority", value_name = "LEVEL")]
    pub logpriority: Option<String>,
    /// Don't print warnings
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl Base {
    pub fn to_common(&self) -> Common {
        Common {
            name: self.name.clone(),
            lxcpath: self.lxcpath.clone(),
            rcfile: None,
            logfile: self.logfile.clone(),
            logpriority: self.logpriority.clone(),
            quiet: self.quiet,
        }
    }
}

/// The lxcpath: `-P`, else `lxc.lxcpath` of /etc/lxc/lxc.conf, else /var/lib/lxc; for a regular
/// user `~/.config/lxc/lxc.conf` and `~/.local/share/lxc` instead, as LXC.
pub fn lxcpath(opt: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = opt {
        return p.clone();
    }
    if crate::user::is_regular_user() {
        return crate::user::default_lxcpath();
    }
    lxcpath_from(Path::new("/etc/lxc/lxc.conf")).unwrap_or_else(|| PathBuf::from("/var/lib/lxc"))
}

/// The `lxc.lxcpath` set in an lxc.conf, if any.
pub fn lxcpath_from(conf: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(conf).ok()?;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("lxc.lxcpath") {
            if let Some(v) = rest.trim_start().strip_prefix('=') {
                let v = v.trim();
                if !v.is_empty() {
                    return Some(PathBuf::from(v));
                }
            }
        }
    }
    None
}

/// The host-wide defaults for new containers: `$WARREN_LXC_DEFAULT_CONF` (tests point it at their own
/// file), else /etc/lxc/default.conf.
pub fn default_config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WARREN_LXC_DEFAULT_CONF") {
        return PathBuf::from(p);
    }
    if crate::user::is_regular_user() {
        return crate::user::default_config();
    }
    PathBuf::from("/etc/lxc/default.conf")
}

/// Refuse names LXC refuses (and a few that would make paths ambiguous).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("a container name is needed (-n NAME)");
    }
    if name.contains('/') {
        bail!("invalid container name \"{name}\": it must not contain \"/\"");
    }
    if name.starts_with('.') {
        bail!("invalid container name \"{name}\": it must not start with \".\"");
    }
    if name.len() > 200 || name.chars().any(|c| c.is_control() || c == '\0') {
        bail!("invalid container name \"{name}\"");
    }
    Ok(())
}

/// A container on disk: where it lives and its config.
pub struct Container {
    pub name: String,
    pub lxcpath: PathBuf,
    pub config_path: PathBuf,
}

impl Container {
    /// Resolve `-n`/positional name and `-P`; with `must_exist`, fail as LXC does when it doesn't.
    pub fn locate(
        common: &Common,
        positional: Option<&String>,
        must_exist: bool,
    ) -> Result<Container> {
        let name = common
            .name
            .clone()
            .or_else(|| positional.cloned())
            .unwrap_or_default();
        check_name(&name)?;
        let lxcpath = lxcpath(&common.lxcpath);
        let config_path = common
            .rcfile
            .clone()
            .unwrap_or_else(|| lxcpath.join(&name).join("config"));
        let c = Container {
            name,
            lxcpath,
            config_path,
        };
        if must_exist && !c.exists() {
            bail!("{} doesn't exist", c.name);
        }
        Ok(c)
    }

    pub fn dir(&self) -> PathBuf {
        self.lxcpath.join(&self.name)
    }

    pub fn exists(&self) -> bool {
        self.config_path.is_file()
    }

    pub fn load_config(&self) -> Result<Config> {
        Config::load(&self.config_path).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Parse the config and map it to the runtime's spec; warnings go to stderr unless `quiet`.
    pub fn spec(&self, quiet: bool) -> Result<ContainerSpec> {
        let cfg = self.load_config()?;
        if !quiet {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
        }
        let spec = warren_lxc_config::to_spec(&cfg, &self.name, &self.lxcpath)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(spec)
    }

    pub fn is_running(&self) -> bool {
        matches!(
            warren_runtime::proto::connect(&self.lxcpath, &self.name),
            Ok(Some(_))
        )
    }

    pub fn info(&self) -> Option<warren_runtime::proto::InitInfo> {
        use warren_runtime::proto::{call, Request};
        match call(&self.lxcpath, &self.name, &Request::Info) {
            Ok(Some((resp, _))) if resp.ok => resp.info,
            _ => None,
        }
    }
}

/// The names of the containers under `lxcpath` (directories holding a config), sorted.
pub fn list_names(lxcpath: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(lxcpath)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("config").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// One line for the user: the error and, at most, its first cause.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = format!("error: {e}");
    if let Some(cause) = e.chain().nth(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(&format!(": {c}"));
        }
    }
    line
}

/// Set up the runtime's log from -o/-l.
pub fn init_log(common: &Common, name: &str) -> Result<()> {
    let level = match &common.logpriority {
        Some(l) => warren_runtime::log::Level::parse(l).with_context(|| {
            format!("invalid log priority \"{l}\" (use TRACE, DEBUG, INFO, WARN, ERROR...)")
        })?,
        None => warren_runtime::log::Level::Error,
    };
    warren_runtime::log::init(common.logfile.as_deref(), level, name).with_context(|| {
        format!(
            "open log file {}",
            common.logfile.as_deref().unwrap_or(Path::new("")).display()
        )
    })?;
    Ok(())
}

/// warren's shipped files (common.seccomp, ...) are referred to by path from configs; make sure
/// they are on disk when a spec points at them (the binary carries them).
pub fn ensure_shipped_files(spec: &ContainerSpec) {
    let dir = Path::new(warren_lxc_config::WARREN_CONFIG_DIR);
    if let Some(p) = &spec.seccomp_profile {
        if p.starts_with(dir) && !p.exists() {
            let _ = warren_lxc_config::install_shipped_configs(dir);
        }
    }
}

/// What start and execute do to a spec before a monitor gets it: a regular user's maps are
/// checked against /etc/subuid and /etc/subgid, warren's shipped files put on disk (by root), the
/// shift marker applied, the seccomp profile compiled.
pub fn prepare_spec(c: &Container, spec: &mut ContainerSpec) -> Result<()> {
    if crate::user::is_regular_user() {
        crate::user::check_maps(&spec.idmaps, &c.config_path)?;
    } else {
        ensure_shipped_files(spec);
    }
    apply_shift_marker(c, spec)?;
    compile_seccomp(spec)
}

/// Compile the container's seccomp profile into the spec (a bad profile is an error naming its
/// file and line, before anything is started).
pub fn compile_seccomp(spec: &mut ContainerSpec) -> Result<()> {
    if let Some(path) = &spec.seccomp_profile {
        // warren's own profile is built in: a regular user can't install it on disk
        let embedded = path
            .strip_prefix(warren_lxc_config::WARREN_CONFIG_DIR)
            .ok()
            .and_then(|rest| rest.to_str())
            .and_then(warren_lxc_config::embedded_config);
        let program = match embedded {
            Some(text) if !path.exists() => warren_runtime::seccomp::compile_text(text, path),
            _ => warren_runtime::seccomp::compile_file(path),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        spec.seccomp_bpf = Some(program);
    }
    Ok(())
}

/// The file that says a container's rootfs ownership was shifted, and through which map.
pub fn shift_marker(c: &Container) -> PathBuf {
    c.dir().join("rootfs.shifted")
}

/// Id maps as `lxc.idmap` values, one per line (the shift marker's content).
pub fn idmap_text(maps: &[warren_runtime::spec::IdMap]) -> String {
    maps.iter()
        .map(|m| {
            format!(
                "{} {} {} {}\n",
                if m.is_uid { "u" } else { "g" },
                m.container_id,
                m.host_id,
                m.count
            )
        })
        .collect()
}

/// A shifted rootfs is presented as it is; it must have been shifted through the same map.
pub fn apply_shift_marker(c: &Container, spec: &mut ContainerSpec) -> Result<()> {
    let marker = shift_marker(c);
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return Ok(());
    };
    if text != idmap_text(&spec.idmaps) {
        bail!(
            "the rootfs of {} was shifted through another id map ({}); run `warren-lxc shift --reverse -n {}` with the old lxc.idmap, then shift again",
            c.name,
            text.trim().replace('\n', ", "),
            c.name
        );
    }
    spec.rootfs.shifted = true;
    Ok(())
}
