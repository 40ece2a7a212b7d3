//! Loading a definition: read (file or stdin), parse, apply `-o`, decode, fill defaults, validate.

use crate::arch;
use crate::definition::{decode, Definition, DefinitionError, Origins};
use crate::overrides::{self, Override};
use crate::yaml;

/// Downloaders distrobuilder accepts.
pub const DISTROBUILDER_DOWNLOADERS: &[&str] = &[
    "almalinux-http",
    "alpaquita-http",
    "alpinelinux-http",
    "alt-http",
    "apertis-http",
    "archlinux-http",
    "busybox",
    "centos-http",
    "springdalelinux-http",
    "debootstrap",
    "rpmbootstrap",
    "fedora-http",
    "gentoo-http",
    "ubuntu-http",
    "sabayon-http",
    "docker-http",
    "oraclelinux-http",
    "openeuler-http",
    "opensuse-http",
    "openwrt-http",
    "plamolinux-http",
    "voidlinux-http",
    "funtoo-http",
    "rootfs-http",
    "rockylinux-http",
    "vyos-http",
    "slackware-http",
    "nixos-http",
];

/// Downloaders warren-build implements.
pub const IMPLEMENTED_DOWNLOADERS: &[&str] =
    &["alpinelinux-http", "busybox", "debootstrap", "rootfs-http"];

pub const GENERATORS: &[&str] = &[
    "dump",
    "copy",
    "template",
    "hostname",
    "hosts",
    "remove",
    "cloud-init",
    "incus-agent",
    "fstab",
];

pub const TRIGGERS: &[&str] = &["post-unpack", "post-update", "post-packages", "post-files"];

/// A loaded, defaulted and validated definition, with where its keys came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub def: Definition,
    pub origins: Origins,
    /// The definition's source text and overrides, for cache keys.
    pub text: String,
    pub overrides: Vec<Override>,
}

/// Reads `path` (`-` is stdin) and loads it with the raw `-o` arguments.
pub fn load_path(path: &str, option_args: &[String]) -> Result<Loaded, DefinitionError> {
    let (text, name) = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            DefinitionError {
                location: "<stdin>".into(),
                key: "(top)".into(),
                message: format!("can't read the definition: {e}"),
            }
        })?;
        (s, "<stdin>".to_string())
    } else {
        let s = std::fs::read_to_string(path).map_err(|e| DefinitionError {
            location: path.into(),
            key: "(top)".into(),
            message: format!("can't read the definition: {e}"),
        })?;
        (s, path.to_string())
    };
    let mut ovs = Vec::new();
    for arg in option_args {
        ovs.extend(overrides::parse(arg)?);
    }
    load_text(&text, &name, ovs)
}

pub fn load_text(text: &str, file: &str, ovs: Vec<Override>) -> Result<Loaded, DefinitionError> {
    let mut root = yaml::parse(text).map_err(|e| DefinitionError {
        location: format!("{file}:{}:{}", e.line, e.col),
        key: "(yaml)".into(),
        message: e.message,
    })?;
    for ov in &ovs {
        overrides::apply(&mut root, ov)?;
    }
    let (mut def, origins) = decode(&root, file)?;
    set_defaults(&mut def);
    validate(&mut def, &origins)?;
    Ok(Loaded {
        def,
        origins,
        text: text.to_string(),
        overrides: ovs,
    })
}

/// The UTC build serial `YYYYmmdd_HHMM`, from SOURCE_DATE_EPOCH when set (reproducible builds).
pub fn default_serial() -> String {
    let c = warren_image::time::civil(build_epoch());
    format!(
        "{:04}{:02}{:02}_{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// SOURCE_DATE_EPOCH, or now.
pub fn build_epoch() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        })
}

fn set_defaults(def: &mut Definition) {
    let img = &mut def.image;
    if img.architecture.is_empty() {
        img.architecture = arch::host();
    }
    if img.variant.is_empty() {
        img.variant = "default".into();
    }
    if img.expiry.is_empty() {
        img.expiry = "30d".into();
    }
    if img.serial.is_empty() {
        img.serial = default_serial();
    }
    if img.description.is_empty() {
        img.description = "{{ image.distribution|capfirst }} {{ image.release }} {{ image.architecture_mapped }}{% if image.variant != \"default\" %} ({{ image.variant }}){% endif %} ({{ image.serial }})".into();
    }
    if img.name.is_empty() {
        img.name = "{{ image.distribution }}-{{ image.release }}-{{ image.architecture_mapped }}-{{ image.variant }}-{{ image.serial }}".into();
    }
    if def.targets.incus.vm.size == 0 {
        def.targets.incus.vm.size = 4 * 1024 * 1024 * 1024;
    }
    if def.targets.incus.vm.filesystem.is_empty() {
        def.targets.incus.vm.filesystem = "ext4".into();
    }
}

/// Parses distrobuilder's expiry (`30d`, `1h 30m`, `2w`) into seconds.
pub fn expiry_seconds(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = rest[digits + 1..].trim_start();
    }
    Some(total)
}

fn is_armored_key(k: &str) -> bool {
    k.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")
}

fn validate(def: &mut Definition, o: &Origins) -> Result<(), DefinitionError> {
    let missing = |path: &str, example: &str, why: &str| {
        o.error(
            path,
            format!("is missing{why}; set it in the definition or pass -o {path}={example}"),
        )
    };
    if def.image.distribution.trim().is_empty() {
        return Err(missing("image.distribution", "debian", ""));
    }
    let Some(canon) = arch::canonical(&def.image.architecture) else {
        return Err(o.error(
            "image.architecture",
            format!(
                "\"{}\" is not an architecture Incus knows ({})",
                def.image.architecture,
                arch::known_names()
            ),
        ));
    };
    let m = &def.mappings;
    if !m.architecture_map.is_empty() && !arch::is_preset(&m.architecture_map) {
        return Err(o.error(
            "mappings.architecture_map",
            format!(
                "no architecture map \"{}\" (known: {})",
                m.architecture_map,
                arch::preset_names()
            ),
        ));
    }
    def.image.architecture_kernel = canon.to_string();
    def.image.architecture_personality = arch::personality(canon).to_string();
    def.image.architecture_mapped = arch::map(canon, &m.architecture_map, &m.architectures);
    if expiry_seconds(&def.image.expiry).is_none() {
        return Err(o.error(
            "image.expiry",
            format!(
                "\"{}\" is not a duration like 30d, 2w or 1h 30m",
                def.image.expiry
            ),
        ));
    }

    let src = &def.source;
    if src.downloader.is_empty() {
        return Err(missing("source.downloader", "debootstrap", ""));
    }
    if !DISTROBUILDER_DOWNLOADERS.contains(&src.downloader.as_str()) {
        return Err(o.error(
            "source.downloader",
            format!(
                "no downloader \"{}\" (known: {})",
                src.downloader,
                DISTROBUILDER_DOWNLOADERS.join(", ")
            ),
        ));
    }
    if !IMPLEMENTED_DOWNLOADERS.contains(&src.downloader.as_str()) {
        return Err(o.error(
            "source.downloader",
            format!(
                "\"{}\" is a distrobuilder downloader warren-build does not implement yet (it has: {}); \
                 rootfs-http takes any rootfs tarball URL",
                src.downloader,
                IMPLEMENTED_DOWNLOADERS.join(", ")
            ),
        ));
    }
    let needs_release = matches!(src.downloader.as_str(), "alpinelinux-http" | "busybox")
        || (src.downloader == "debootstrap" && src.suite.is_empty());
    if needs_release && def.image.release.trim().is_empty() {
        let example = match src.downloader.as_str() {
            "alpinelinux-http" => "3.20",
            "busybox" => "1.36.1",
            _ => "bookworm",
        };
        return Err(missing(
            "image.release",
            example,
            &format!(" (the {} downloader needs it)", src.downloader),
        ));
    }
    if matches!(src.downloader.as_str(), "alpinelinux-http" | "rootfs-http")
        && src.url.trim().is_empty()
    {
        return Err(missing(
            "source.url",
            "https://dl-cdn.alpinelinux.org/alpine/",
            &format!(" (the {} downloader needs it)", src.downloader),
        ));
    }
    if src.downloader == "alpinelinux-http" && def.image.release == "edge" && src.same_as.is_empty()
    {
        return Err(missing(
            "source.same_as",
            "3.20",
            " (alpine edge bootstraps from a stable release)",
        ));
    }
    for (i, k) in src.keys.iter().enumerate() {
        if !k.contains("{{") && !is_armored_key(k) {
            return Err(o.error(
                &format!("source.keys.{i}"),
                "is not an armored OpenPGP public key: warren-build never asks a keyserver; paste the key's \
                 `gpg --armor --export` block instead of its fingerprint",
            ));
        }
    }

    let p = &def.packages;
    match (&p.manager.is_empty(), &p.custom_manager) {
        (true, None) => {
            return Err(missing(
                "packages.manager",
                "apt",
                " (or give packages.custom_manager)",
            ))
        }
        (false, Some(_)) => {
            return Err(o.error(
                "packages.custom_manager",
                "packages.manager and packages.custom_manager exclude each other",
            ))
        }
        (false, None) => {
            if crate::managers::table(&p.manager).is_none() {
                return Err(o.error(
                    "packages.manager",
                    format!(
                        "no package manager \"{}\" (known: {})",
                        p.manager,
                        crate::managers::names().join(", ")
                    ),
                ));
            }
        }
        (true, Some(cm)) => {
            for (name, cmd) in [
                ("clean", &cm.clean),
                ("install", &cm.install),
                ("remove", &cm.remove),
                ("refresh", &cm.refresh),
                ("update", &cm.update),
            ] {
                if cmd.cmd.trim().is_empty() {
                    return Err(missing(
                        &format!("packages.custom_manager.{name}.cmd"),
                        "true",
                        "",
                    ));
                }
            }
        }
    }
    for (i, set) in p.sets.iter().enumerate() {
        if !matches!(set.action.as_str(), "install" | "remove") {
            return Err(o.error(
                &format!("packages.sets.{i}.action"),
                if set.action.is_empty() {
                    "is missing: install or remove".to_string()
                } else {
                    format!("\"{}\" is neither install nor remove", set.action)
                },
            ));
        }
        check_types(&set.filter.types, &format!("packages.sets.{i}.types"), o)?;
    }
    for (i, r) in p.repositories.iter().enumerate() {
        if r.name.is_empty() {
            return Err(missing(
                &format!("packages.repositories.{i}.name"),
                "sources.list",
                "",
            ));
        }
        check_types(
            &r.filter.types,
            &format!("packages.repositories.{i}.types"),
            o,
        )?;
    }

    for (i, f) in def.files.iter().enumerate() {
        let at = |k: &str| format!("files.{i}.{k}");
        if f.generator.is_empty() {
            return Err(o.error(
                &at("generator"),
                format!("is missing (one of: {})", GENERATORS.join(", ")),
            ));
        }
        if !GENERATORS.contains(&f.generator.as_str()) {
            let hint = if f.generator == "lxd-agent" {
                "; it is called incus-agent now"
            } else {
                ""
            };
            return Err(o.error(
                &at("generator"),
                format!(
                    "no generator \"{}\" (known: {}){hint}",
                    f.generator,
                    GENERATORS.join(", ")
                ),
            ));
        }
        if !f.mode.is_empty() && (f.mode.len() > 5 || u32::from_str_radix(&f.mode, 8).is_err()) {
            return Err(o.error(
                &at("mode"),
                format!("\"{}\" is not an octal file mode like 0644", f.mode),
            ));
        }
        for w in &f.template.when {
            if !matches!(w.as_str(), "create" | "copy" | "start") {
                return Err(o.error(
                    &at("template.when"),
                    format!("\"{w}\" is not create, copy or start"),
                ));
            }
        }
        if f.generator == "cloud-init"
            && !matches!(
                f.name.as_str(),
                "user-data" | "meta-data" | "vendor-data" | "network-config"
            )
        {
            return Err(o.error(
                &at("name"),
                format!("\"{}\" is not a cloud-init file (user-data, meta-data, vendor-data, network-config)", f.name),
            ));
        }
        if matches!(
            f.generator.as_str(),
            "dump" | "copy" | "template" | "hostname" | "hosts" | "remove"
        ) && f.path.is_empty()
            && (f.generator != "copy" || f.source.is_empty())
        {
            return Err(missing(
                &at("path"),
                "/etc/example",
                &format!(" (the {} generator needs it)", f.generator),
            ));
        }
        if f.generator == "template" && f.name.is_empty() {
            return Err(missing(
                &at("name"),
                "example",
                " (the template's file name)",
            ));
        }
        if f.generator == "copy" && f.source.is_empty() {
            return Err(missing(
                &at("source"),
                "/path/on/host",
                " (the copy generator needs it)",
            ));
        }
        check_types(&f.filter.types, &at("types"), o)?;
    }
    for (i, a) in def.actions.iter().enumerate() {
        if !TRIGGERS.contains(&a.trigger.as_str()) {
            return Err(o.error(
                &format!("actions.{i}.trigger"),
                if a.trigger.is_empty() {
                    format!("is missing (one of: {})", TRIGGERS.join(", "))
                } else {
                    format!(
                        "no trigger \"{}\" (known: {})",
                        a.trigger,
                        TRIGGERS.join(", ")
                    )
                },
            ));
        }
        check_types(&a.filter.types, &format!("actions.{i}.types"), o)?;
    }
    for (i, c) in def.targets.lxc.config.iter().enumerate() {
        if !matches!(c.kind.as_str(), "all" | "system" | "user") {
            return Err(o.error(
                &format!("targets.lxc.config.{i}.type"),
                format!("\"{}\" is not all, system or user", c.kind),
            ));
        }
        check_types(&c.filter.types, &format!("targets.lxc.config.{i}.types"), o)?;
    }
    if !matches!(def.targets.incus.vm.filesystem.as_str(), "ext4" | "btrfs") {
        return Err(o.error(
            "targets.incus.vm.filesystem",
            format!(
                "\"{}\" is not ext4 or btrfs",
                def.targets.incus.vm.filesystem
            ),
        ));
    }
    for (i, v) in def.environment.variables.iter().enumerate() {
        if v.key.is_empty() || v.key.contains('=') {
            return Err(o.error(
                &format!("environment.variables.{i}.key"),
                "must be a variable name",
            ));
        }
        check_types(
            &v.filter.types,
            &format!("environment.variables.{i}.types"),
            o,
        )?;
    }
    Ok(())
}

fn check_types(types: &[String], path: &str, o: &Origins) -> Result<(), DefinitionError> {
    for t in types {
        if !matches!(t.as_str(), "container" | "vm") {
            return Err(o.error(path, format!("\"{t}\" is not container or vm")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_dates() {
        assert_eq!(expiry_seconds("30d"), Some(30 * 86400));
        assert_eq!(expiry_seconds("1h 30m"), Some(5400));
        assert_eq!(expiry_seconds("soon"), None);
    }
}
