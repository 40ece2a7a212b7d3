//! Package managers: the commands each one runs for refresh, update, install, remove and clean
//! (distrobuilder's tables), the custom manager, and how repositories are written.

use crate::definition::{CustomManager, PackageSet};

/// One operation: program, then its arguments (package names go after them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub refresh: Option<Command>,
    pub update: Option<Command>,
    pub install: Command,
    pub remove: Command,
    pub clean: Option<Command>,
    /// Paths (inside the rootfs) removed after `clean`.
    pub clean_paths: &'static [&'static str],
}

fn cmd(program: &str, args: &[&str]) -> Command {
    Command {
        program: program.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

const NAMES: &[&str] = &[
    "apk",
    "apt",
    "dnf",
    "egoportage",
    "opkg",
    "pacman",
    "portage",
    "yum",
    "equo",
    "xbps",
    "zypper",
    "anise",
    "luet",
    "slackpkg",
];

pub fn names() -> Vec<&'static str> {
    NAMES.to_vec()
}

/// The command table of a named manager.
pub fn table(name: &str) -> Option<Table> {
    let t = match name {
        "apk" => Table {
            refresh: Some(cmd("apk", &["--no-cache", "update"])),
            update: Some(cmd("apk", &["--no-cache", "upgrade"])),
            install: cmd("apk", &["--no-cache", "add"]),
            remove: cmd("apk", &["--no-cache", "del", "--rdepends"]),
            clean: None,
            clean_paths: &[],
        },
        "apt" => Table {
            refresh: Some(cmd("apt-get", &["-y", "update"])),
            update: Some(cmd("apt-get", &["-y", "dist-upgrade"])),
            install: cmd("apt-get", &["-y", "install"]),
            remove: cmd("apt-get", &["-y", "remove", "--auto-remove"]),
            clean: Some(cmd("apt-get", &["-y", "clean"])),
            clean_paths: &[
                "/var/lib/apt/lists",
                "/var/cache/apt/pkgcache.bin",
                "/var/cache/apt/srcpkgcache.bin",
            ],
        },
        "dnf" | "yum" => Table {
            refresh: Some(cmd(name, &["-y", "makecache"])),
            update: Some(cmd(name, &["-y", "upgrade"])),
            install: cmd(name, &["-y", "install"]),
            remove: cmd(name, &["-y", "remove"]),
            clean: Some(cmd(name, &["-y", "clean", "all"])),
            clean_paths: &[],
        },
        "pacman" => Table {
            refresh: Some(cmd("pacman", &["--noconfirm", "-Syy"])),
            update: Some(cmd("pacman", &["--noconfirm", "-Su"])),
            install: cmd("pacman", &["--noconfirm", "-S", "--needed"]),
            remove: cmd("pacman", &["--noconfirm", "-Rcs"]),
            clean: Some(cmd("pacman", &["--noconfirm", "-Sc"])),
            clean_paths: &[],
        },
        "zypper" => Table {
            refresh: Some(cmd(
                "zypper",
                &["--non-interactive", "--gpg-auto-import-keys", "refresh"],
            )),
            update: Some(cmd(
                "zypper",
                &["--non-interactive", "--gpg-auto-import-keys", "update"],
            )),
            install: cmd(
                "zypper",
                &[
                    "--non-interactive",
                    "--gpg-auto-import-keys",
                    "install",
                    "--allow-downgrade",
                    "--replacefiles",
                ],
            ),
            remove: cmd(
                "zypper",
                &["--non-interactive", "--gpg-auto-import-keys", "remove"],
            ),
            clean: Some(cmd("zypper", &["--non-interactive", "clean", "-a"])),
            clean_paths: &[],
        },
        "xbps" => Table {
            refresh: Some(cmd("xbps-install", &["-S"])),
            update: Some(cmd("xbps-install", &["-Suy"])),
            install: cmd("xbps-install", &["-y"]),
            remove: cmd("xbps-remove", &["-y"]),
            clean: Some(cmd("xbps-remove", &["-Oy"])),
            clean_paths: &[],
        },
        "equo" => Table {
            refresh: Some(cmd("equo", &["update"])),
            update: Some(cmd("equo", &["upgrade"])),
            install: cmd("equo", &["install"]),
            remove: cmd("equo", &["remove"]),
            clean: Some(cmd("equo", &["cleanup"])),
            clean_paths: &[],
        },
        "opkg" => Table {
            refresh: Some(cmd("opkg", &["update"])),
            update: None,
            install: cmd("opkg", &["install"]),
            remove: cmd("opkg", &["remove"]),
            clean: None,
            clean_paths: &["/tmp/opkg-lists"],
        },
        "portage" => Table {
            refresh: Some(cmd("emerge", &["--sync"])),
            update: Some(cmd("emerge", &["--update", "--deep", "--newuse", "@world"])),
            install: cmd("emerge", &["--autounmask-continue", "--quiet-build=y"]),
            remove: cmd("emerge", &["--unmerge"]),
            clean: None,
            clean_paths: &[],
        },
        "egoportage" => Table {
            refresh: Some(cmd("ego", &["sync"])),
            update: Some(cmd("emerge", &["--update", "--deep", "--newuse", "@world"])),
            install: cmd("emerge", &["--autounmask-continue", "--quiet-build=y"]),
            remove: cmd("emerge", &["--unmerge"]),
            clean: None,
            clean_paths: &[],
        },
        "anise" | "luet" => Table {
            refresh: Some(cmd(name, &["repo", "update"])),
            update: Some(cmd(name, &["upgrade", "-y"])),
            install: cmd(name, &["install", "-y"]),
            remove: cmd(name, &["uninstall", "-y"]),
            clean: Some(cmd(name, &["cleanup"])),
            clean_paths: &[],
        },
        "slackpkg" => Table {
            refresh: Some(cmd(
                "slackpkg",
                &["-batch=on", "-default_answer=y", "update"],
            )),
            update: Some(cmd(
                "slackpkg",
                &["-batch=on", "-default_answer=y", "upgrade-all"],
            )),
            install: cmd("slackpkg", &["-batch=on", "-default_answer=y", "install"]),
            remove: cmd("slackpkg", &["-batch=on", "-default_answer=y", "remove"]),
            clean: Some(cmd(
                "slackpkg",
                &["-batch=on", "-default_answer=y", "clean-system"],
            )),
            clean_paths: &[],
        },
        _ => return None,
    };
    Some(t)
}

/// A custom manager's table. As in distrobuilder an operation whose own `flags` are empty is
/// still run (distrobuilder skips it, which makes `install: {cmd: foo}` silently do nothing).
pub fn custom_table(cm: &CustomManager) -> Table {
    let op = |c: &crate::definition::CustomCommand| {
        let mut args = cm.flags.clone();
        args.extend(c.flags.iter().cloned());
        Command {
            program: c.cmd.clone(),
            args,
        }
    };
    Table {
        refresh: Some(op(&cm.refresh)),
        update: Some(op(&cm.update)),
        install: op(&cm.install),
        remove: op(&cm.remove),
        clean: Some(op(&cm.clean)),
        clean_paths: &[],
    }
}

/// Merges consecutive sets with the same action and flags (distrobuilder's optimizePackageSets).
pub fn merge_sets(sets: &[&PackageSet]) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for s in sets {
        match out.last_mut() {
            Some((action, flags, pkgs)) if *action == s.action && *flags == s.flags => {
                pkgs.extend(s.packages.iter().cloned())
            }
            _ => out.push((s.action.clone(), s.flags.clone(), s.packages.clone())),
        }
    }
    out.retain(|(_, _, pkgs)| !pkgs.is_empty());
    out
}

/// The full argv for an operation on packages.
pub fn argv(c: &Command, set_flags: &[String], packages: &[String]) -> Vec<String> {
    let mut v = vec![c.program.clone()];
    v.extend(c.args.iter().cloned());
    v.extend(set_flags.iter().cloned());
    v.extend(packages.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manager_has_a_table_and_sets_merge_like_distrobuilder() {
        for n in names() {
            assert!(table(n).is_some(), "{n}");
        }
        let set = |action: &str, p: &[&str]| PackageSet {
            action: action.into(),
            packages: p.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let (a, b, c) = (
            set("install", &["a"]),
            set("install", &["b"]),
            set("remove", &["c"]),
        );
        let merged = merge_sets(&[&a, &b, &c]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].2, vec!["a", "b"]);
        let apt = table("apt").unwrap();
        assert_eq!(
            argv(
                &apt.install,
                &["--no-install-recommends".into()],
                &merged[0].2
            )
            .join(" "),
            "apt-get -y install --no-install-recommends a b"
        );
    }
}
