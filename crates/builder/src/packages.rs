//! The package phase: repositories written into the rootfs, then refresh, update (+ post-update
//! actions), install/remove of the merged sets, clean, all in the sandbox.

use crate::build::{run_actions, BuildError, Env};
use crate::definition::Definition;
use crate::filter::{applies, Phase};
use crate::managers::{self, argv};
use crate::sandbox::{self, Program};
use std::path::Path;

pub fn run(def: &Definition, rootfs: &Path, phase: Phase, env: &Env) -> Result<(), BuildError> {
    write_repositories(def, rootfs, phase)?;
    let sets: Vec<_> = def
        .packages
        .sets
        .iter()
        .filter(|s| applies(&s.filter, def, phase))
        .collect();
    if sets.is_empty() && !def.packages.update {
        return Ok(());
    }
    let table = match &def.packages.custom_manager {
        Some(cm) => managers::custom_table(cm),
        None => managers::table(&def.packages.manager).ok_or_else(|| {
            BuildError::Step(format!(
                "packages.manager: no manager \"{}\"",
                def.packages.manager
            ))
        })?,
    };
    let exec = |argv: Vec<String>, what: &str| -> Result<(), BuildError> {
        crate::progress::step(&argv.join(" "));
        sandbox::run(rootfs, Program::Argv(&argv), &env.vars, what).map_err(BuildError::from)
    };
    if let Some(refresh) = &table.refresh {
        exec(argv(refresh, &[], &[]), "packages: refresh")?;
    }
    if def.packages.update {
        if let Some(update) = &table.update {
            exec(argv(update, &[], &[]), "packages: update")?;
        }
        run_actions(def, "post-update", rootfs, phase, env)?;
    }
    for (action, flags, pkgs) in managers::merge_sets(&sets) {
        let c = if action == "install" {
            &table.install
        } else {
            &table.remove
        };
        exec(argv(c, &flags, &pkgs), &format!("packages: {action}"))?;
    }
    if def.packages.cleanup {
        if let Some(clean) = &table.clean {
            exec(argv(clean, &[], &[]), "packages: clean")?;
        }
        let paths: Vec<String> = table.clean_paths.iter().map(|s| s.to_string()).collect();
        sandbox::in_root(rootfs, move || {
            for p in paths {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => {
                        // empty the directory, keep it (apt expects lists/ to exist)
                        if let Ok(rd) = std::fs::read_dir(&p) {
                            for e in rd.flatten() {
                                let path = e.path();
                                let _ = if path.is_dir() && !path.is_symlink() {
                                    std::fs::remove_dir_all(&path)
                                } else {
                                    std::fs::remove_file(&path)
                                };
                            }
                        }
                    }
                    Ok(_) => {
                        let _ = std::fs::remove_file(&p);
                    }
                    Err(_) => {}
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Repositories as each manager keeps them.
fn write_repositories(def: &Definition, rootfs: &Path, phase: Phase) -> Result<(), BuildError> {
    let ctx = crate::context(def);
    let mut writes: Vec<(String, String, bool)> = Vec::new(); // path, content, append
    for (i, r) in def.packages.repositories.iter().enumerate() {
        if !applies(&r.filter, def, phase) {
            continue;
        }
        let url = crate::pongo::render(&r.url, &ctx)
            .map_err(|e| BuildError::Step(format!("packages.repositories.{i}.url: {e}")))?;
        let key = crate::pongo::render(&r.key, &ctx)
            .map_err(|e| BuildError::Step(format!("packages.repositories.{i}.key: {e}")))?;
        let manager = if def.packages.custom_manager.is_some() {
            "custom"
        } else {
            def.packages.manager.as_str()
        };
        match manager {
            "apt" => {
                let path = if r.name == "sources.list" {
                    "/etc/apt/sources.list".to_string()
                } else {
                    format!("/etc/apt/sources.list.d/{}.list", r.name.trim_end_matches(".list"))
                };
                writes.push((path, format!("{}\n", url.trim_end()), true));
                if key.contains("BEGIN PGP PUBLIC KEY BLOCK") {
                    writes.push((format!("/etc/apt/trusted.gpg.d/{}.asc", r.name), key, false));
                }
            }
            "apk" => writes.push(("/etc/apk/repositories".into(), format!("{}\n", url.trim_end()), true)),
            "yum" | "dnf" => writes.push((format!("/etc/yum.repos.d/{}.repo", r.name), format!("{}\n", url.trim_end()), false)),
            "zypper" => writes.push((format!("/etc/zypp/repos.d/{}.repo", r.name), format!("{}\n", url.trim_end()), false)),
            other => {
                return Err(BuildError::Step(format!(
                    "packages.repositories.{i}: warren-build writes repositories for apt, apk, yum, dnf and zypper, not {other}; add the file with a `dump` generator"
                )))
            }
        }
    }
    if writes.is_empty() {
        return Ok(());
    }
    sandbox::in_root(rootfs, move || {
        const HEADER: &str = "# Generated by distrobuilder\n";
        let mut started: Vec<String> = Vec::new();
        for (path, content, append) in writes {
            if let Some(parent) = Path::new(&path).parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
            }
            // A file is written anew once per build, then appended to (several entries, one file),
            // as distrobuilder does with its header line.
            let existing = std::fs::read_to_string(&path).unwrap_or_default();
            let text = if append && (started.contains(&path) || existing.starts_with(HEADER)) {
                format!("{existing}{content}")
            } else if append {
                format!("{HEADER}{content}")
            } else {
                content
            };
            if std::fs::symlink_metadata(&path)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                let _ = std::fs::remove_file(&path);
            }
            std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
            started.push(path);
        }
        Ok(())
    })?;
    Ok(())
}
