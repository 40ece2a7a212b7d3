//! `lxc-create`: make `<lxcpath>/<name>/{config,rootfs}` from a template; a failed create leaves
//! nothing behind.

use anyhow::{anyhow, bail, Context, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::{default_config_path, Common, Container};
use crate::templates::{self, TemplateContext};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Template: busybox, local, download (none: a config without rootfs contents)
    #[arg(short = 't', long = "template", value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// Backing store: only dir is supported
    #[arg(short = 'B', long = "bdev", value_name = "TYPE", default_value = "dir")]
    pub bdev: String,
    /// Place the rootfs in this directory (with -B dir)
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Container name (instead of -n)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// Arguments for the template (after --)
    #[arg(last = true, value_name = "TEMPLATE-ARGS")]
    pub template_args: Vec<String>,
}

/// Removes what a create made unless it completed (the reverter of STYLE.md).
struct Undo {
    paths: Vec<PathBuf>,
    done: bool,
    /// A regular user's rootfs belongs to mapped ids: removed as the container's root.
    user_maps: Option<Vec<warren_runtime::spec::IdMap>>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.done {
            for p in self.paths.iter().rev() {
                match &self.user_maps {
                    Some(maps) => {
                        let _ = crate::user::remove_tree(maps, p);
                    }
                    None => {
                        let _ = std::fs::remove_dir_all(p);
                    }
                }
            }
        }
    }
}

pub fn run(args: Args) -> Result<i32> {
    // -f names the config to start from, not the container's own config
    let mut locate = args.common.clone();
    locate.rcfile = None;
    let c = Container::locate(&locate, args.positional.as_ref(), false)?;
    if args.bdev != "dir" {
        bail!(
            "backing store \"{}\" is not supported yet: use -B dir",
            args.bdev
        );
    }
    if c.dir().exists() {
        bail!("{} already exists in {}", c.name, c.lxcpath.display());
    }
    // the base config: -f, else the host's default.conf when present
    let base_path = args.common.rcfile.clone().or_else(|| {
        let d = default_config_path();
        d.is_file().then_some(d)
    });
    let regular_user = crate::user::is_regular_user();
    let base_text = match &base_path {
        Some(p) => {
            // parse first, so a bad base config is reported before anything is created
            warren_lxc_config::Config::load(p).map_err(|e| anyhow!("{e}"))?;
            std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?
        }
        None if regular_user => crate::user::generated_default_conf()?,
        None => String::new(),
    };
    // a regular user's container is unprivileged: its maps must be granted before anything
    // is made, and its template runs as the container's root
    let user_maps = if regular_user {
        let source = base_path.clone().unwrap_or_else(default_config_path);
        let maps = crate::user::idmaps_in(&base_text, &source)?;
        crate::user::check_maps(&maps, &source)?;
        Some(maps)
    } else {
        let _ = warren_lxc_config::install_shipped_configs(Path::new(
            warren_lxc_config::WARREN_CONFIG_DIR,
        ));
        None
    };

    std::fs::create_dir_all(&c.lxcpath)
        .with_context(|| format!("create {}", c.lxcpath.display()))?;
    let mut undo = Undo {
        paths: Vec::new(),
        done: false,
        user_maps: user_maps.clone(),
    };
    std::fs::DirBuilder::new()
        .mode(0o770)
        .create(c.dir())
        .with_context(|| format!("create {}", c.dir().display()))?;
    undo.paths.push(c.dir());
    let rootfs = match &args.dir {
        Some(d) => std::path::absolute(d).unwrap_or(d.clone()),
        None => c.dir().join("rootfs"),
    };
    if rootfs.exists()
        && std::fs::read_dir(&rootfs)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "rootfs directory {} exists and is not empty",
            rootfs.display()
        );
    }
    if !rootfs.exists() {
        std::fs::create_dir_all(&rootfs).with_context(|| format!("create {}", rootfs.display()))?;
        if args.dir.is_some() {
            undo.paths.push(rootfs.clone());
        }
    }
    let _ = std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755));

    let mut text = String::new();
    if let Some(t) = &args.template {
        text.push_str(&format!(
            "# Template used to create this container: warren {t}\n"
        ));
        if !args.template_args.is_empty() {
            text.push_str(&format!(
                "# Parameters passed to the template: {}\n",
                args.template_args.join(" ")
            ));
        }
    }
    text.push_str("# For additional config options, please look at lxc.container.conf(5)\n\n");
    if !base_text.is_empty() {
        text.push_str(&base_text);
        if !base_text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
    }
    if let Some(t) = &args.template {
        let unprivileged = user_maps.is_some()
            || warren_lxc_config::Config::parse_str(
                &base_text,
                &c.dir().join("config"),
                &Default::default(),
            )
            .map(|cfg| cfg.get("lxc.idmap").is_some())
            .unwrap_or(false);
        let ctx = TemplateContext {
            name: &c.name,
            rootfs: &rootfs,
            args: &args.template_args,
            unprivileged,
        };
        let lines = match &user_maps {
            Some(maps) => run_as_container_root(maps, t, &ctx)?,
            None => templates::run(t, &ctx)?.config_lines,
        };
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    // an unprivileged container (id maps in the base config) gets warren's userns.conf too
    let has_idmap =
        warren_lxc_config::Config::parse_str(&text, &c.dir().join("config"), &Default::default())
            .map(|cfg| cfg.get("lxc.idmap").is_some())
            .unwrap_or(false);
    if has_idmap && args.template.is_some() {
        text.push_str(&format!(
            "lxc.include = {}/userns.conf\n",
            warren_lxc_config::WARREN_CONFIG_DIR
        ));
    }
    text.push_str(&format!("lxc.rootfs.path = dir:{}\n", rootfs.display()));
    text.push_str(&format!("lxc.uts.name = {}\n", c.name));
    let config_path = c.dir().join("config");
    // validate what we are about to write: a config warren itself can't read is a failed create
    warren_lxc_config::Config::parse_str(&text, &config_path, &Default::default())
        .map_err(|e| anyhow!("the generated config is invalid: {e}"))?;
    std::fs::write(&config_path, &text)
        .with_context(|| format!("write {}", config_path.display()))?;
    let _ = std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o640));
    if let Some(maps) = &user_maps {
        // made with the mapped ids already: the marker says so to whoever starts it
        std::fs::write(
            crate::common::shift_marker(&c),
            crate::common::idmap_text(maps),
        )
        .context("write the shift marker")?;
    } else if has_idmap && args.template.is_some() {
        // an unprivileged container on a filesystem without idmapped mounts: shift its files once
        let needs_shift = std::env::var_os("WARREN_FORCE_SHIFT").is_some()
            || !warren_runtime::shift::idmapped_mounts_supported(&rootfs);
        if needs_shift {
            let spec = c.spec(true)?;
            warren_runtime::shift::shift_tree(&rootfs, &spec.idmaps, false)
                .map_err(|e| anyhow!("{e}"))?;
            std::fs::write(
                crate::common::shift_marker(&c),
                crate::common::idmap_text(&spec.idmaps),
            )
            .context("write the shift marker")?;
        }
    }
    undo.done = true;
    Ok(0)
}

/// Runs template `name` as root of a user namespace with the container's maps (a regular user's
/// container): its files get the mapped ids, and the rootfs directory itself becomes the
/// container root's. Returns the template's config lines.
fn run_as_container_root(
    maps: &[warren_runtime::spec::IdMap],
    name: &str,
    ctx: &TemplateContext<'_>,
) -> Result<Vec<String>> {
    let out = crate::user::as_container_root(maps, || {
        let out = templates::run(name, ctx).map_err(|e| format!("{e:#}"))?;
        std::os::unix::fs::chown(ctx.rootfs, Some(0), Some(0))
            .map_err(|e| format!("hand {} to the container's root: {e}", ctx.rootfs.display()))?;
        Ok(out.config_lines.join("\n").into_bytes())
    })?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect())
}
