//! The client's configuration, as incus keeps its own: `config.yml` (the remotes and the default
//! one) and `servercerts/<remote>.crt` (pinned certificates) in `$WARREN_CONF`, else
//! `~/.config/warren`.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub addr: String,
    /// `warren` (warrend's API) or `simplestreams` (an image server).
    pub protocol: String,
    pub public: bool,
    /// The project commands work in (`project switch`).
    pub project: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub default_remote: String,
    pub remotes: BTreeMap<String, Remote>,
    dir: PathBuf,
}

fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WARREN_CONF") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".config/warren")
}

fn defaults() -> BTreeMap<String, Remote> {
    let mut r = BTreeMap::new();
    r.insert(
        "local".into(),
        Remote {
            addr: "unix://".into(),
            protocol: "warren".into(),
            public: false,
            project: "default".into(),
        },
    );
    // the seed's image server; `warren remote set-url images URL` points it at another
    r.insert(
        "images".into(),
        Remote {
            addr: "https://images.linuxcontainers.org".into(),
            protocol: "simplestreams".into(),
            public: true,
            project: "default".into(),
        },
    );
    r
}

impl Config {
    pub fn load() -> Result<Config> {
        let dir = dir();
        let file = dir.join("config.yml");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config {
                    default_remote: "local".into(),
                    remotes: defaults(),
                    dir,
                })
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
        };
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", file.display(), e.marker().line()))?;
        let doc = docs.into_iter().next().unwrap_or(yaml_rust2::Yaml::Null);
        let mut remotes = BTreeMap::new();
        if let Some(h) = doc["remotes"].as_hash() {
            for (name, r) in h {
                let Some(name) = name.as_str() else { continue };
                let addr = r["addr"].as_str().unwrap_or("").to_string();
                if addr.is_empty() {
                    bail!("{}: remotes.{name}.addr is missing", file.display());
                }
                remotes.insert(
                    name.to_string(),
                    Remote {
                        addr,
                        protocol: r["protocol"].as_str().unwrap_or("warren").to_string(),
                        public: r["public"].as_bool().unwrap_or(false),
                        project: r["project"].as_str().unwrap_or("default").to_string(),
                    },
                );
            }
        }
        if remotes.is_empty() {
            remotes = defaults();
        }
        Ok(Config {
            default_remote: doc["default-remote"]
                .as_str()
                .unwrap_or("local")
                .to_string(),
            remotes,
            dir,
        })
    }

    pub fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let mut text = format!("default-remote: {}\nremotes:\n", self.default_remote);
        for (name, r) in &self.remotes {
            text.push_str(&format!(
                "  {name}:\n    addr: {}\n    protocol: {}\n    public: {}\n",
                r.addr, r.protocol, r.public
            ));
            if r.project != "default" {
                text.push_str(&format!("    project: {}\n", r.project));
            }
        }
        let file = self.dir.join("config.yml");
        let tmp = self.dir.join(".config.yml.new");
        std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("write {}", file.display()))
    }

    /// The project of the local warrend commands work in.
    pub fn project(&self) -> String {
        self.remotes
            .get("local")
            .map_or_else(|| "default".into(), |r| r.project.clone())
    }

    pub fn set_project(&mut self, project: &str) {
        if let Some(r) = self.remotes.get_mut("local") {
            r.project = project.to_string();
        }
    }

    /// The client's config directory (`$WARREN_CONF`, else ~/.config/warren).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn cert_path(&self, remote: &str) -> PathBuf {
        self.dir.join("servercerts").join(format!("{remote}.crt"))
    }

    /// The pinned certificate (PEM) of a remote, if any.
    pub fn cert(&self, remote: &str) -> Option<String> {
        std::fs::read_to_string(self.cert_path(remote)).ok()
    }

    /// `remote:name` split (no remote: the default one); the remote must exist.
    pub fn target<'a>(&self, s: &'a str) -> Result<(String, &'a str)> {
        let (remote, rest) = match s.split_once(':') {
            Some((r, rest)) => (r.to_string(), rest),
            None => (self.default_remote.clone(), s),
        };
        if !self.remotes.contains_key(&remote) {
            bail!("The remote \"{remote}\" doesn't exist (see `warren remote list`)");
        }
        Ok((remote, rest))
    }

    pub fn remote(&self, name: &str) -> Result<&Remote> {
        self.remotes.get(name).with_context(|| {
            format!("The remote \"{name}\" doesn't exist (see `warren remote list`)")
        })
    }
}
