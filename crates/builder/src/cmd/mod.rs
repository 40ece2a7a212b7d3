//! The command line: one module per subcommand.

mod build_all;
mod build_dir;
mod build_incus;
mod build_lxc;
mod common;
mod list;
mod pack_incus;
mod pack_lxc;
mod prune;
mod publish;
mod remove;
mod serve;
mod validate;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warren-build",
    version,
    about = "Build LXC and Incus images from distrobuilder YAML definitions",
    long_about = "Build LXC and Incus images from distrobuilder YAML definitions.\n\n\
                  Definitions follow distrobuilder's schema; `-o KEY=VALUE` overrides any single value \
                  (e.g. -o image.release=bookworm -o files.0.mode=0600). Set SOURCE_DATE_EPOCH for \
                  reproducible outputs."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a definition without building anything
    Validate(validate::Args),
    /// Build the rootfs into a directory
    #[command(name = "build-dir")]
    BuildDir(build_dir::Args),
    /// Build an LXC image (rootfs.tar.xz + meta.tar.xz)
    #[command(name = "build-lxc")]
    BuildLxc(build_lxc::Args),
    /// Build an Incus image (split: incus.tar.xz + rootfs.squashfs; or unified)
    #[command(name = "build-incus")]
    BuildIncus(build_incus::Args),
    /// Build the LXC and the Incus image from one build (packed side by side on 4+ cores)
    #[command(name = "build-all")]
    BuildAll(build_all::Args),
    /// Pack an existing rootfs (from build-dir) as an LXC image
    #[command(name = "pack-lxc")]
    PackLxc(pack_lxc::Args),
    /// Pack an existing rootfs (from build-dir) as an Incus image
    #[command(name = "pack-incus")]
    PackIncus(pack_incus::Args),
    /// Add built images to a tree served as LXC's download protocol and simplestreams, signed
    Publish(publish::Args),
    /// List the images a published tree holds
    List(list::Args),
    /// Remove images from a published tree
    Remove(remove::Args),
    /// Keep only the newest versions of each product in a published tree
    Prune(prune::Args),
    /// Serve a published tree over HTTPS (or HTTP)
    Serve(serve::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::BuildDir(a) => build_dir::run(a),
        Command::BuildLxc(a) => build_lxc::run(a),
        Command::BuildIncus(a) => build_incus::run(a),
        Command::BuildAll(a) => build_all::run(a),
        Command::PackLxc(a) => pack_lxc::run(a),
        Command::PackIncus(a) => pack_incus::run(a),
        Command::Publish(a) => publish::run(a),
        Command::List(a) => list::run(a),
        Command::Remove(a) => remove::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Serve(a) => serve::run(a),
    }
}
