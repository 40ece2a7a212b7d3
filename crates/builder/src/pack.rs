//! Packing a finished rootfs: LXC (rootfs.tar.* + meta.tar.xz) and Incus (split: incus.tar.* +
//! rootfs.squashfs; unified: one tarball), compressed in parallel when both are made.

use crate::build::Outputs;
use crate::definition::Definition;
use crate::filter::{applies, Phase};
use crate::generators;
use std::collections::BTreeMap;
use std::path::Path;
use warren_image::compression::{CompressedWriter, Compression, CompressionError};
use warren_image::incus::Metadata;
use warren_image::lxc::LxcMetadata;
use warren_image::tarball::{self, TarOptions};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error(transparent)]
    Tar(#[from] tarball::TarError),
    #[error(transparent)]
    Squashfs(#[from] warren_image::squashfs::SquashfsError),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncusType {
    Split,
    Unified,
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub compression: Compression,
    pub incus_type: IncusType,
    pub vm: bool,
    /// SOURCE_DATE_EPOCH: clamps times, fixes creation dates.
    pub epoch: Option<i64>,
}

fn now() -> i64 {
    crate::load::build_epoch()
}

/// The LXC config files from `targets.lxc.config` with distrobuilder's compat levels.
pub fn lxc_configs(def: &Definition) -> Result<BTreeMap<String, String>, PackError> {
    let ctx = crate::context(def);
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (i, c) in def.targets.lxc.config.iter().enumerate() {
        if !applies(&c.filter, def, Phase::Container) {
            continue;
        }
        let content = crate::pongo::render(&c.content, &ctx)
            .map_err(|e| PackError::Other(format!("targets.lxc.config.{i}.content: {e}")))?;
        let before = if c.before == 0 { 6 } else { c.before };
        for level in 1..=5u32 {
            if !(c.after < level && level < before) {
                continue;
            }
            let suffix = if level == 5 {
                String::new()
            } else {
                format!(".{level}")
            };
            let mut names = Vec::new();
            if matches!(c.kind.as_str(), "all" | "system") {
                names.push(format!("config{suffix}"));
            }
            if matches!(c.kind.as_str(), "all" | "user") {
                names.push(format!("config-user{suffix}"));
            }
            for n in names {
                let f = files.entry(n).or_default();
                f.push_str(content.trim_end_matches('\n'));
                f.push('\n');
            }
        }
    }
    Ok(files)
}

pub fn incus_metadata(def: &Definition, gen: &generators::Outputs) -> Metadata {
    let created = now();
    let expiry = crate::load::expiry_seconds(&def.image.expiry).unwrap_or(30 * 86400) as i64;
    let img = &def.image;
    let mut properties = BTreeMap::new();
    properties.insert("architecture".to_string(), img.architecture_mapped.clone());
    properties.insert("description".to_string(), img.description.clone());
    properties.insert("name".to_string(), img.name.clone());
    properties.insert("os".to_string(), img.distribution.clone());
    properties.insert("release".to_string(), img.release.clone());
    properties.insert("serial".to_string(), img.serial.clone());
    properties.insert("variant".to_string(), img.variant.clone());
    Metadata {
        architecture: img.architecture_kernel.clone(),
        creation_date: created,
        expiry_date: created + expiry,
        properties,
        templates: gen.incus_templates.clone(),
    }
}

type TarOut = crate::progress::Counting<CompressedWriter>;

/// A compressed tarball written by `f`, with its progress shown.
fn write_tar(
    path: &Path,
    c: Compression,
    f: impl FnOnce(&mut tar::Builder<TarOut>) -> Result<(), PackError>,
) -> Result<(), PackError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = format!("packing {name}");
    let out = crate::progress::Counting::new(CompressedWriter::create(path, c)?, &label);
    let mut b = tar::Builder::new(out);
    f(&mut b)?;
    let out = b
        .into_inner()
        .map_err(|e| PackError::Other(format!("{}: {e}", path.display())))?;
    out.inner.finish()?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    crate::progress::finish(
        &label,
        &format!("packed {name}: {}", crate::progress::human(size)),
    );
    Ok(())
}

/// Writes the Incus metadata entries (metadata.yaml, templates/) into a tar.
fn append_incus_meta<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    meta: &Metadata,
    gen: &generators::Outputs,
    mtime: i64,
) -> Result<(), PackError> {
    let io = |e: std::io::Error| PackError::Other(format!("metadata: {e}"));
    tarball::append_file(b, "metadata.yaml", meta.to_yaml().as_bytes(), 0o644, mtime)
        .map_err(io)?;
    if !gen.incus_files.is_empty() {
        tarball::append_dir(b, "templates/", mtime).map_err(io)?;
        for (name, content) in &gen.incus_files {
            tarball::append_file(
                b,
                &format!("templates/{name}"),
                content.as_bytes(),
                0o644,
                mtime,
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

pub fn pack(
    def: &Definition,
    rootfs: &Path,
    target: &Path,
    gen: &generators::Outputs,
    outputs: Outputs,
    opts: &PackOptions,
) -> Result<(), PackError> {
    let mtime = opts.epoch.unwrap_or_else(now);
    let c = opts.compression;
    if outputs.incus && opts.incus_type == IncusType::Split {
        c.squashfs_args()?; // refuse bzip2 & co. before any work
    }
    let started = std::time::Instant::now();
    crate::progress::step(&format!("packing with {}", c.name()));
    let lxc_job = || -> Result<(), PackError> {
        if !outputs.lxc {
            return Ok(());
        }
        let topts = TarOptions {
            root_name: ".".into(),
            clamp_mtime: opts.epoch,
            replace: gen.lxc_replace.clone(),
            omit: gen.lxc_omit.iter().cloned().collect(),
            add: gen.lxc_add.clone(),
        };
        write_tar(
            &target.join(format!("rootfs{}", c.tar_extension())),
            c,
            |b| {
                tarball::write_tree(b, rootfs, &topts)?;
                Ok(())
            },
        )?;
        let meta = LxcMetadata {
            configs: lxc_configs(def)?,
            create_message: crate::pongo::render(
                &def.targets.lxc.create_message,
                &crate::context(def),
            )
            .map_err(|e| PackError::Other(format!("targets.lxc.create_message: {e}")))?,
            expiry: now() + crate::load::expiry_seconds(&def.image.expiry).unwrap_or(0) as i64,
            excludes_user: warren_image::lxc::device_nodes(rootfs),
            templates: gen.lxc_templates.clone(),
        };
        meta.write(&target.join("meta.tar.xz"), mtime)?;
        Ok(())
    };
    let incus_job = || -> Result<(), PackError> {
        if !outputs.incus {
            return Ok(());
        }
        let meta = incus_metadata(def, gen);
        match opts.incus_type {
            IncusType::Split => {
                write_tar(
                    &target.join(format!("incus{}", c.tar_extension())),
                    c,
                    |b| append_incus_meta(b, &meta, gen, mtime),
                )?;
                warren_image::squashfs::make(
                    rootfs,
                    &target.join("rootfs.squashfs"),
                    c,
                    opts.epoch,
                )?;
                let size = std::fs::metadata(target.join("rootfs.squashfs"))
                    .map(|m| m.len())
                    .unwrap_or(0);
                crate::progress::done(&format!(
                    "packed rootfs.squashfs: {}",
                    crate::progress::human(size)
                ));
            }
            IncusType::Unified => {
                let name = format!("{}{}", def.image.name, c.tar_extension());
                let topts = TarOptions {
                    root_name: "rootfs".into(),
                    clamp_mtime: opts.epoch,
                    ..Default::default()
                };
                write_tar(&target.join(name), c, |b| {
                    append_incus_meta(b, &meta, gen, mtime)?;
                    tarball::write_tree(b, rootfs, &topts)?;
                    Ok(())
                })?;
            }
        }
        Ok(())
    };
    // Both outputs at once where there are cores to spare. Each compressor already uses every
    // core, so on a small machine the two only compete: measured on 2 cores with xz, 61 s side by
    // side against 34 + 21 s one after the other.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (a, b) = if cores >= 4 && outputs.lxc && outputs.incus {
        std::thread::scope(|s| {
            let h = s.spawn(lxc_job);
            let b = incus_job();
            (
                h.join()
                    .unwrap_or_else(|_| Err(PackError::Other("the LXC packer panicked".into()))),
                b,
            )
        })
    } else {
        (lxc_job(), incus_job())
    };
    a?;
    b?;
    // What publishing needs to know about the image, beside it.
    let img = &def.image;
    warren_image::info::ImageInfo {
        os: img.distribution.clone(),
        release: img.release.clone(),
        arch: img.architecture_mapped.clone(),
        architecture: img.architecture_kernel.clone(),
        variant: img.variant.clone(),
        serial: img.serial.clone(),
        description: img.description.clone(),
        name: img.name.clone(),
    }
    .write(target)
    .map_err(|e| PackError::Other(format!("{}: {e}", target.display())))?;
    crate::progress::done(&format!(
        "packed in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
