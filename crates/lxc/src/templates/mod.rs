//! Templates that fill a new container's rootfs and add their config lines: busybox (from the
//! host's busybox-static), local (an LXC image pair), download (from an image server).

pub mod busybox;
pub mod download;
pub mod local;

use anyhow::Result;
use std::path::Path;

/// What a template is given.
pub struct TemplateContext<'a> {
    pub name: &'a str,
    /// `<lxcpath>/<name>/rootfs`, already created and empty.
    pub rootfs: &'a Path,
    /// The arguments after `--`.
    pub args: &'a [String],
    /// The container has id maps (its rootfs must not get device nodes).
    pub unprivileged: bool,
}

/// What a template gives back: config lines to append (`key = value`, comments allowed).
pub struct TemplateOutput {
    pub config_lines: Vec<String>,
}

/// Run template `name`.
pub fn run(name: &str, ctx: &TemplateContext<'_>) -> Result<TemplateOutput> {
    match name {
        "busybox" => busybox::create(ctx),
        "local" => local::create(ctx),
        "download" => download::create(ctx),
        other => {
            anyhow::bail!("unknown template \"{other}\" (available: busybox, local, download)")
        }
    }
}
