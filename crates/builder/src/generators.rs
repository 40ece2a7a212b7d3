//! The `files` generators (dump, copy, remove, hostname, hosts, template, cloud-init, fstab,
//! incus-agent) and what they give each output: changes to the rootfs, LXC metadata templates and
//! per-LXC file replacements, Incus templates. Rootfs changes run chrooted (sandbox::in_root), so
//! a symlink in the rootfs can't send a write to the host.

use crate::definition::{Definition, FileEntry};
use crate::filter::{applies, Phase};
use crate::pongo;
use crate::sandbox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use warren_image::incus::TemplateEntry;

#[derive(Debug, thiserror::Error)]
#[error("files.{index} ({generator}): {message}")]
pub struct GeneratorError {
    pub index: usize,
    pub generator: String,
    pub message: String,
}

/// What the generators produced beside their changes to the rootfs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outputs {
    /// Paths listed in LXC's meta `templates` (LXC_NAME is replaced in them at create).
    pub lxc_templates: Vec<String>,
    /// Files whose content differs in the LXC rootfs tarball (rootfs-relative path → content).
    pub lxc_replace: BTreeMap<String, Vec<u8>>,
    /// Paths left out of the LXC rootfs tarball.
    pub lxc_omit: Vec<String>,
    /// Files only the LXC rootfs tarball has.
    pub lxc_add: BTreeMap<String, Vec<u8>>,
    /// Incus metadata templates by path, and the template files by name.
    pub incus_templates: BTreeMap<String, TemplateEntry>,
    pub incus_files: BTreeMap<String, String>,
}

/// One host file, directory or symlink for the copy generator, read before entering the rootfs.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum CopyItem {
    Dir {
        dest: String,
        mode: u32,
    },
    File {
        dest: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        dest: String,
        target: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    Dump {
        index: usize,
        path: String,
        content: String,
        mode: String,
        uid: String,
        gid: String,
        templated: bool,
    },
    Copy {
        index: usize,
        items: Vec<CopyItem>,
        mode: String,
        uid: String,
        gid: String,
    },
    Remove {
        path: String,
    },
    Hostname {
        path: String,
        when: Vec<String>,
        properties: BTreeMap<String, String>,
    },
    Hosts {
        path: String,
        when: Vec<String>,
        properties: BTreeMap<String, String>,
    },
    CloudInitDisable,
}

fn gen_err(index: usize, f: &FileEntry, message: impl Into<String>) -> GeneratorError {
    GeneratorError {
        index,
        generator: f.generator.clone(),
        message: message.into(),
    }
}

/// Runs the generators that apply in `phase`. `image` is false for build-dir, where only the
/// rootfs-changing generators do anything (as in distrobuilder).
pub fn run(
    def: &Definition,
    rootfs: &Path,
    phase: Phase,
    image: bool,
) -> Result<Outputs, GeneratorError> {
    let ctx = crate::context(def);
    let mut jobs = Vec::new();
    let mut out = Outputs::default();
    for (index, f) in def.files.iter().enumerate() {
        if !applies(&f.filter, def, phase) {
            continue;
        }
        let render = |s: &str| -> Result<String, GeneratorError> {
            if f.pongo {
                pongo::render(s, &ctx).map_err(|e| gen_err(index, f, e.to_string()))
            } else {
                Ok(s.to_string())
            }
        };
        let path = render(&f.path)?;
        let when = if f.template.when.is_empty() {
            vec!["create".to_string(), "copy".to_string()]
        } else {
            f.template.when.clone()
        };
        match f.generator.as_str() {
            "dump" => jobs.push(Job::Dump {
                index,
                path,
                content: render(&f.content)?,
                mode: f.mode.clone(),
                uid: f.uid.clone(),
                gid: f.gid.clone(),
                templated: f.templated && image,
            }),
            "copy" => {
                let source = render(&f.source)?;
                let items = read_copy_sources(&source, &path).map_err(|m| gen_err(index, f, m))?;
                jobs.push(Job::Copy {
                    index,
                    items,
                    mode: f.mode.clone(),
                    uid: f.uid.clone(),
                    gid: f.gid.clone(),
                });
            }
            "remove" => jobs.push(Job::Remove { path }),
            "hostname" if image => jobs.push(Job::Hostname {
                path,
                when,
                properties: f.template.properties.clone(),
            }),
            "hosts" if image => jobs.push(Job::Hosts {
                path,
                when,
                properties: f.template.properties.clone(),
            }),
            "template" if image => {
                let mut content = render(&f.content)?;
                if f.pongo {
                    let incus_ctx = serde_json::json!({ "incus": ctx.get("targets").and_then(|t| t.get("incus")) });
                    content = pongo::render(&content, &incus_ctx)
                        .map_err(|e| gen_err(index, f, e.to_string()))?;
                }
                let file = format!("{}.tpl", f.name);
                out.incus_files
                    .insert(file.clone(), ensure_newline(&content));
                out.incus_templates.insert(
                    path,
                    TemplateEntry {
                        when,
                        create_only: false,
                        template: file,
                        properties: f.template.properties.clone(),
                    },
                );
            }
            "cloud-init" if image => {
                jobs.push(Job::CloudInitDisable);
                let (file, default_path, content) = cloud_init_template(&f.name, &f.content);
                let target = if f.path.is_empty() {
                    default_path
                } else {
                    path
                };
                let mut properties = BTreeMap::new();
                if matches!(f.name.as_str(), "user-data" | "vendor-data") {
                    let d = if f.content.is_empty() {
                        "#cloud-config\n{}".to_string()
                    } else {
                        f.content.clone()
                    };
                    properties.insert("default".to_string(), d);
                }
                out.incus_files.insert(file.clone(), content);
                out.incus_templates.insert(
                    target,
                    TemplateEntry {
                        when: vec!["create".into(), "copy".into()],
                        create_only: false,
                        template: file,
                        properties,
                    },
                );
            }
            "fstab" | "incus-agent" if image && phase != Phase::Vm => {
                return Err(gen_err(
                    index,
                    f,
                    "is for VM images only; give the entry `types: [vm]`",
                ));
            }
            _ => {}
        }
    }
    let rootfs_out: Outputs =
        sandbox::in_root(rootfs, move || run_jobs(jobs)).map_err(|e| GeneratorError {
            index: 0,
            generator: "files".into(),
            message: e.to_string(),
        })?;
    out.lxc_templates = rootfs_out.lxc_templates;
    out.lxc_replace = rootfs_out.lxc_replace;
    out.lxc_omit = rootfs_out.lxc_omit;
    out.lxc_add = rootfs_out.lxc_add;
    out.incus_files.extend(rootfs_out.incus_files);
    out.incus_templates.extend(rootfs_out.incus_templates);
    Ok(out)
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn cloud_init_template(name: &str, content: &str) -> (String, String, String) {
    let file = format!("cloud-init-{name}.tpl");
    let path = format!("/var/lib/cloud/seed/nocloud-net/{name}");
    let body = match name {
        "user-data" | "vendor-data" => {
            let key = name;
            format!(
                "{{% if config_get(\"cloud-init.{key}\", \"\") == \"\" %}}{{{{ config_get(\"user.{key}\", properties.default) }}}}{{% else %}}{{{{ config_get(\"cloud-init.{key}\", properties.default) }}}}{{% endif %}}\n"
            )
        }
        "meta-data" => "instance-id: {{ container.name }}\nlocal-hostname: {{ container.name }}\n{{ config_get(\"user.meta-data\", \"\") }}\n".to_string(),
        _ => {
            if content.is_empty() {
                "{% if config_get(\"cloud-init.network-config\", \"\") == \"\" %}{% if config_get(\"user.network-config\", \"\") == \"\" %}version: 1\nconfig:\n  - type: physical\n    name: {% if instance.type == \"virtual-machine\" %}enp5s0{% else %}eth0{% endif %}\n    subnets:\n      - type: {% if config_get(\"user.network_mode\", \"\") == \"link-local\" %}manual{% else %}dhcp{% endif %}\n        control: auto\n{% else %}{{ config_get(\"user.network-config\", \"\") }}{% endif %}{% else %}{{ config_get(\"cloud-init.network-config\", \"\") }}{% endif %}\n".to_string()
            } else {
                ensure_newline(content)
            }
        }
    };
    (file, path, body)
}

/// Reads the copy generator's host sources (a glob in the last component is allowed).
fn read_copy_sources(source: &str, dest: &str) -> Result<Vec<CopyItem>, String> {
    use std::os::unix::fs::PermissionsExt;
    let matches: Vec<std::path::PathBuf> = glob::glob(source)
        .map_err(|e| format!("source \"{source}\": {e}"))?
        .filter_map(Result::ok)
        .collect();
    if matches.is_empty() {
        return Err(format!("source \"{source}\" matches nothing on the host"));
    }
    let mut items = Vec::new();
    let into_dir = matches.len() > 1 || dest.ends_with('/');
    for m in &matches {
        let base = if dest.is_empty() {
            m.to_string_lossy().into_owned()
        } else if into_dir {
            format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                m.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        } else {
            dest.to_string()
        };
        let mut stack = vec![(m.clone(), base)];
        while let Some((host, dest)) = stack.pop() {
            let md =
                std::fs::symlink_metadata(&host).map_err(|e| format!("{}: {e}", host.display()))?;
            let mode = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                items.push(CopyItem::Dir {
                    dest: dest.clone(),
                    mode,
                });
                let mut children: Vec<_> = std::fs::read_dir(&host)
                    .map_err(|e| format!("{}: {e}", host.display()))?
                    .filter_map(Result::ok)
                    .map(|e| e.file_name())
                    .collect();
                children.sort();
                for c in children.into_iter().rev() {
                    stack.push((host.join(&c), format!("{dest}/{}", c.to_string_lossy())));
                }
            } else if md.file_type().is_symlink() {
                let target =
                    std::fs::read_link(&host).map_err(|e| format!("{}: {e}", host.display()))?;
                items.push(CopyItem::Symlink {
                    dest,
                    target: target.to_string_lossy().into_owned(),
                });
            } else {
                let data = std::fs::read(&host).map_err(|e| format!("{}: {e}", host.display()))?;
                items.push(CopyItem::File { dest, data, mode });
            }
        }
    }
    Ok(items)
}

// ---- inside the rootfs (chrooted child)

fn run_jobs(jobs: Vec<Job>) -> Result<Outputs, String> {
    let mut out = Outputs::default();
    for job in jobs {
        match job {
            Job::Dump {
                index,
                path,
                content,
                mode,
                uid,
                gid,
                templated,
            } => {
                let content = ensure_newline(&content);
                write_file(&path, content.as_bytes(), &mode, 0o644)
                    .map_err(|e| format!("files.{index}: {path}: {e}"))?;
                set_owner(&path, &uid, &gid).map_err(|e| format!("files.{index}: {path}: {e}"))?;
                if templated {
                    out.lxc_templates.push(path);
                }
            }
            Job::Copy {
                index,
                items,
                mode,
                uid,
                gid,
            } => {
                for item in items {
                    let r = match &item {
                        CopyItem::Dir { dest, mode: m } => {
                            mkdir_p(dest).and_then(|_| chmod(dest, *m))
                        }
                        CopyItem::File {
                            dest,
                            data,
                            mode: m,
                        } => write_file(dest, data, &mode, *m),
                        CopyItem::Symlink { dest, target } => {
                            let _ = std::fs::remove_file(dest);
                            std::os::unix::fs::symlink(target, dest).map_err(|e| e.to_string())
                        }
                    };
                    let dest = match &item {
                        CopyItem::Dir { dest, .. }
                        | CopyItem::File { dest, .. }
                        | CopyItem::Symlink { dest, .. } => dest,
                    };
                    r.and_then(|_| set_owner(dest, &uid, &gid))
                        .map_err(|e| format!("files.{index}: {dest}: {e}"))?;
                }
            }
            Job::Remove { path } => {
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                    Ok(_) => std::fs::remove_file(&path),
                    Err(_) => Ok(()),
                }
                .map_err(|e| format!("remove {path}: {e}"))?;
            }
            Job::Hostname {
                path,
                when,
                properties,
            } => {
                if std::fs::symlink_metadata(&path).is_ok() {
                    out.lxc_replace.insert(rel(&path), b"LXC_NAME\n".to_vec());
                    out.lxc_templates.push(path.clone());
                    out.incus_files
                        .insert("hostname.tpl".into(), "{{ container.name }}\n".into());
                    out.incus_templates.insert(
                        path,
                        TemplateEntry {
                            when,
                            create_only: false,
                            template: "hostname.tpl".into(),
                            properties,
                        },
                    );
                }
            }
            Job::Hosts {
                path,
                when,
                properties,
            } => {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let for_name = |name: &str| {
                        let t = text.replace("distrobuilder", name);
                        if t.contains(name) {
                            t
                        } else {
                            format!("127.0.1.1\t{name}\n{t}")
                        }
                    };
                    out.lxc_replace
                        .insert(rel(&path), for_name("LXC_NAME").into_bytes());
                    out.lxc_templates.push(path.clone());
                    out.incus_files
                        .insert("hosts.tpl".into(), for_name("{{ container.name }}"));
                    out.incus_templates.insert(
                        path,
                        TemplateEntry {
                            when,
                            create_only: false,
                            template: "hosts.tpl".into(),
                            properties,
                        },
                    );
                }
            }
            Job::CloudInitDisable => {
                // LXC images have no cloud-init datasource: its services are disabled there.
                for dir in [
                    "/etc/runlevels/default",
                    "/etc/runlevels/boot",
                    "/etc/runlevels/sysinit",
                ] {
                    for svc in [
                        "cloud-init-local",
                        "cloud-config",
                        "cloud-init",
                        "cloud-final",
                    ] {
                        let p = format!("{dir}/{svc}");
                        if std::fs::symlink_metadata(&p).is_ok() {
                            out.lxc_omit.push(rel(&p));
                        }
                    }
                }
                out.lxc_add
                    .insert("etc/cloud/cloud-init.disabled".into(), Vec::new());
            }
        }
    }
    Ok(out)
}

fn rel(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

fn mkdir_p(path: &str) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| e.to_string())
}

fn chmod(path: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

fn write_file(path: &str, data: &[u8], mode: &str, default_mode: u32) -> Result<(), String> {
    if let Some(parent) = Path::new(path).parent() {
        mkdir_p(&parent.to_string_lossy())?;
    }
    // Replace, never write through: a symlink at `path` is removed, not followed.
    if std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
    {
        std::fs::remove_file(path).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, data).map_err(|e| e.to_string())?;
    let m = if mode.is_empty() {
        default_mode
    } else {
        u32::from_str_radix(mode, 8).map_err(|_| format!("bad mode \"{mode}\""))?
    };
    chmod(path, m)
}

/// `uid`/`gid` numbers, or names looked up in the rootfs's /etc/passwd and /etc/group.
fn set_owner(path: &str, uid: &str, gid: &str) -> Result<(), String> {
    if uid.is_empty() && gid.is_empty() {
        return Ok(());
    }
    let lookup = |db: &str, name: &str| -> Result<Option<u32>, String> {
        if name.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = name.parse() {
            return Ok(Some(n));
        }
        let text = std::fs::read_to_string(db).map_err(|e| format!("{db}: {e}"))?;
        text.lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name))
                    .then(|| f.nth(1).and_then(|id| id.parse().ok()))
                    .flatten()
            })
            .map(Some)
            .ok_or_else(|| format!("no \"{name}\" in the rootfs's {db}"))
    };
    let u = lookup("/etc/passwd", uid)?;
    let g = lookup("/etc/group", gid)?;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        u.map(nix::unistd::Uid::from_raw),
        g.map(nix::unistd::Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| e.to_string())
}
