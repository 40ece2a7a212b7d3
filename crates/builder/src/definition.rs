//! distrobuilder's image definition: the typed schema, and its strict decoding from a YAML tree
//! (unknown keys, wrong types and bad values are errors naming the file position or the `-o`).

use crate::yaml::{Node, Origin, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A definition error: where (file:line:col or `-o ...`), which key, and what is wrong.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{location}: {key}: {message}")]
pub struct DefinitionError {
    pub location: String,
    pub key: String,
    pub message: String,
}

/// Filters on an entry: each non-empty list must contain the current value.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Filter {
    pub releases: Vec<String>,
    pub architectures: Vec<String>,
    pub variants: Vec<String>,
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Image {
    pub distribution: String,
    pub release: String,
    pub architecture: String,
    pub variant: String,
    pub description: String,
    pub expiry: String,
    pub name: String,
    pub serial: String,
    pub architecture_mapped: String,
    pub architecture_kernel: String,
    pub architecture_personality: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Source {
    pub downloader: String,
    pub url: String,
    pub keys: Vec<String>,
    pub keyserver: String,
    pub variant: String,
    pub suite: String,
    pub same_as: String,
    pub skip_verification: bool,
    pub components: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LxcConfigEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub before: u32,
    pub after: u32,
    pub content: String,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetLxc {
    pub create_message: String,
    pub config: Vec<LxcConfigEntry>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetVm {
    pub size: u64,
    pub filesystem: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetIncus {
    pub vm: TargetVm,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Targets {
    pub lxc: TargetLxc,
    pub incus: TargetIncus,
    /// `container` or `vm`: which build this is (not a YAML key).
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileTemplate {
    pub properties: BTreeMap<String, String>,
    pub when: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileEntry {
    pub generator: String,
    pub path: String,
    pub content: String,
    pub name: String,
    pub source: String,
    pub template: FileTemplate,
    pub templated: bool,
    pub mode: String,
    pub uid: String,
    pub gid: String,
    pub pongo: bool,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CustomCommand {
    pub cmd: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CustomManager {
    pub clean: CustomCommand,
    pub install: CustomCommand,
    pub remove: CustomCommand,
    pub refresh: CustomCommand,
    pub update: CustomCommand,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PackageSet {
    pub packages: Vec<String>,
    pub action: String,
    pub early: bool,
    pub flags: Vec<String>,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Repository {
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Packages {
    pub manager: String,
    pub custom_manager: Option<CustomManager>,
    pub update: bool,
    pub cleanup: bool,
    pub sets: Vec<PackageSet>,
    pub repositories: Vec<Repository>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Action {
    pub trigger: String,
    pub action: String,
    pub pongo: bool,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Mappings {
    pub architecture_map: String,
    pub architectures: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EnvVariable {
    pub key: String,
    pub value: String,
    #[serde(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Environment {
    pub clear_defaults: bool,
    pub variables: Vec<EnvVariable>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Definition {
    pub image: Image,
    pub source: Source,
    pub targets: Targets,
    pub files: Vec<FileEntry>,
    pub packages: Packages,
    pub actions: Vec<Action>,
    pub mappings: Mappings,
    pub environment: Environment,
}

/// Where each key of a decoded definition came from, by dotted path (`files.2.mode`), so that
/// validation errors can point at the line.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub file: String,
    by_path: HashMap<String, Origin>,
}

impl Origins {
    /// The location text for `path`, falling back to its nearest recorded parent.
    pub fn location(&self, path: &str) -> String {
        let mut p = path.to_string();
        loop {
            if let Some(o) = self.by_path.get(&p) {
                return self.render(o);
            }
            match p.rfind('.') {
                Some(i) => p.truncate(i),
                None => break,
            }
        }
        match self.by_path.get("") {
            Some(o) => self.render(o),
            None => self.file.clone(),
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    fn render(&self, o: &Origin) -> String {
        match o {
            Origin::File { line, col } => format!("{}:{line}:{col}", self.file),
            Origin::Override(_) => o.to_string(),
        }
    }

    pub fn error(&self, path: &str, message: impl Into<String>) -> DefinitionError {
        DefinitionError {
            location: self.location(path),
            key: path.to_string(),
            message: message.into(),
        }
    }
}

/// Decodes a definition tree strictly.
pub fn decode(root: &Node, file: &str) -> Result<(Definition, Origins), DefinitionError> {
    let mut d = Decoder {
        origins: Origins {
            file: file.to_string(),
            by_path: HashMap::new(),
        },
    };
    let def = d.definition(root)?;
    Ok((def, d.origins))
}

struct Decoder {
    origins: Origins,
}

/// The entries of one mapping being decoded; whatever is left unread at `finish` is unknown.
struct Fields<'a> {
    path: String,
    entries: Vec<(&'a str, &'a Origin, &'a Node)>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Decoder {
    fn err(&self, origin: &Origin, key: &str, message: impl Into<String>) -> DefinitionError {
        DefinitionError {
            location: self.origins.render(origin),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn fields<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
    ) -> Result<Option<Fields<'a>>, DefinitionError> {
        self.origins
            .by_path
            .entry(path.to_string())
            .or_insert_with(|| node.origin.clone());
        match &node.value {
            Value::Null => Ok(None),
            Value::Map(entries) => Ok(Some(Fields {
                path: path.to_string(),
                entries: entries.iter().map(|(k, o, n)| (k.as_str(), o, n)).collect(),
            })),
            _ => Err(self.err(
                &node.origin,
                display_path(path),
                format!("expected a mapping, found {}", node.kind()),
            )),
        }
    }

    fn take<'a>(&mut self, f: &mut Fields<'a>, key: &str) -> Option<&'a Node> {
        let i = f.entries.iter().position(|(k, _, _)| *k == key)?;
        let (_, key_origin, node) = f.entries.remove(i);
        // Keys are recorded where the key is written: "image:" is where a missing image.release belongs.
        self.origins
            .by_path
            .insert(join(&f.path, key), key_origin.clone());
        Some(node)
    }

    fn finish(&self, f: Fields<'_>, known: &[&str]) -> Result<(), DefinitionError> {
        if let Some((key, origin, _)) = f.entries.first() {
            let mut msg = format!("unknown key \"{key}\"");
            if let Some(close) = known.iter().find(|k| similar(k, key)) {
                msg.push_str(&format!(" (did you mean \"{close}\"?)"));
            } else if !known.is_empty() {
                msg.push_str(&format!("; known keys here: {}", known.join(", ")));
            }
            return Err(self.err(origin, display_path(&join(&f.path, key)), msg));
        }
        Ok(())
    }

    fn string(&mut self, f: &mut Fields<'_>, key: &str) -> Result<String, DefinitionError> {
        let path = join(&f.path, key);
        match self.take(f, key) {
            None => Ok(String::new()),
            Some(n) => self.scalar_text(n, &path),
        }
    }

    fn scalar_text(&self, n: &Node, path: &str) -> Result<String, DefinitionError> {
        match &n.value {
            Value::Null => Ok(String::new()),
            Value::Scalar { text, .. } => Ok(text.clone()),
            _ => Err(self.err(
                &n.origin,
                path,
                format!("expected a string, found {}", n.kind()),
            )),
        }
    }

    fn bool(&mut self, f: &mut Fields<'_>, key: &str) -> Result<bool, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(false);
        };
        match &n.value {
            Value::Null => Ok(false),
            Value::Scalar { text, .. } => parse_bool(text).ok_or_else(|| {
                self.err(
                    &n.origin,
                    &path,
                    format!("expected true or false, found \"{text}\""),
                )
            }),
            _ => Err(self.err(
                &n.origin,
                &path,
                format!("expected true or false, found {}", n.kind()),
            )),
        }
    }

    fn uint(&mut self, f: &mut Fields<'_>, key: &str) -> Result<u64, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(0);
        };
        match &n.value {
            Value::Null => Ok(0),
            Value::Scalar { text, .. } => text.trim().parse::<u64>().map_err(|_| {
                self.err(
                    &n.origin,
                    &path,
                    format!("expected a non-negative whole number, found \"{text}\""),
                )
            }),
            _ => Err(self.err(
                &n.origin,
                &path,
                format!("expected a number, found {}", n.kind()),
            )),
        }
    }

    fn strings(&mut self, f: &mut Fields<'_>, key: &str) -> Result<Vec<String>, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(Vec::new());
        };
        match &n.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.{i}");
                    self.origins.by_path.insert(p.clone(), item.origin.clone());
                    out.push(self.scalar_text(item, &p)?);
                }
                Ok(out)
            }
            _ => Err(self.err(
                &n.origin,
                &path,
                format!("expected a list of strings, found {}", n.kind()),
            )),
        }
    }

    fn string_map(
        &mut self,
        f: &mut Fields<'_>,
        key: &str,
    ) -> Result<BTreeMap<String, String>, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(BTreeMap::new());
        };
        match &n.value {
            Value::Null => Ok(BTreeMap::new()),
            Value::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, _, v) in entries {
                    out.insert(k.clone(), self.scalar_text(v, &join(&path, k))?);
                }
                Ok(out)
            }
            _ => Err(self.err(
                &n.origin,
                &path,
                format!("expected a mapping of strings, found {}", n.kind()),
            )),
        }
    }

    fn list<'a, T>(
        &mut self,
        f: &mut Fields<'a>,
        key: &str,
        mut each: impl FnMut(&mut Self, &'a Node, &str) -> Result<T, DefinitionError>,
    ) -> Result<Vec<T>, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(Vec::new());
        };
        match &n.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(each(self, item, &format!("{path}.{i}"))?);
                }
                Ok(out)
            }
            _ => Err(self.err(
                &n.origin,
                &path,
                format!("expected a list, found {}", n.kind()),
            )),
        }
    }

    fn filter(&mut self, f: &mut Fields<'_>) -> Result<Filter, DefinitionError> {
        Ok(Filter {
            releases: self.strings(f, "releases")?,
            architectures: self.strings(f, "architectures")?,
            variants: self.strings(f, "variants")?,
            types: self.strings(f, "types")?,
        })
    }

    fn definition(&mut self, root: &Node) -> Result<Definition, DefinitionError> {
        let Some(mut f) = self.fields(root, "")? else {
            return Err(self.err(&root.origin, "(top)", "the definition is empty"));
        };
        let mut def = Definition::default();
        if let Some(n) = self.take(&mut f, "image") {
            def.image = self.image(n)?;
        }
        if let Some(n) = self.take(&mut f, "source") {
            def.source = self.source(n)?;
        }
        if let Some(n) = self.take(&mut f, "targets") {
            def.targets = self.targets(n)?;
        }
        def.files = self.list(&mut f, "files", |d, n, p| d.file_entry(n, p))?;
        if let Some(n) = self.take(&mut f, "packages") {
            def.packages = self.packages(n)?;
        }
        def.actions = self.list(&mut f, "actions", |d, n, p| d.action(n, p))?;
        if let Some(n) = self.take(&mut f, "mappings") {
            if let Some(mut m) = self.fields(n, "mappings")? {
                def.mappings.architecture_map = self.string(&mut m, "architecture_map")?;
                def.mappings.architectures = self.string_map(&mut m, "architectures")?;
                self.finish(m, &["architecture_map", "architectures"])?;
            }
        }
        if let Some(n) = self.take(&mut f, "environment") {
            if let Some(mut m) = self.fields(n, "environment")? {
                def.environment.clear_defaults = self.bool(&mut m, "clear_defaults")?;
                def.environment.variables = self.list(&mut m, "variables", |d, n, p| {
                    let Some(mut v) = d.fields(n, p)? else {
                        return Ok(EnvVariable::default());
                    };
                    let var = EnvVariable {
                        key: d.string(&mut v, "key")?,
                        value: d.string(&mut v, "value")?,
                        filter: d.filter(&mut v)?,
                    };
                    d.finish(
                        v,
                        &[
                            "key",
                            "value",
                            "releases",
                            "architectures",
                            "variants",
                            "types",
                        ],
                    )?;
                    Ok(var)
                })?;
                self.finish(m, &["clear_defaults", "variables"])?;
            }
        }
        self.finish(
            f,
            &[
                "image",
                "source",
                "targets",
                "files",
                "packages",
                "actions",
                "mappings",
                "environment",
            ],
        )?;
        Ok(def)
    }

    fn image(&mut self, n: &Node) -> Result<Image, DefinitionError> {
        let Some(mut f) = self.fields(n, "image")? else {
            return Ok(Image::default());
        };
        let img = Image {
            distribution: self.string(&mut f, "distribution")?,
            release: self.string(&mut f, "release")?,
            architecture: self.string(&mut f, "architecture")?,
            variant: self.string(&mut f, "variant")?,
            description: self.string(&mut f, "description")?,
            expiry: self.string(&mut f, "expiry")?,
            name: self.string(&mut f, "name")?,
            serial: self.string(&mut f, "serial")?,
            architecture_mapped: self.string(&mut f, "architecture_mapped")?,
            architecture_kernel: self.string(&mut f, "architecture_kernel")?,
            architecture_personality: self.string(&mut f, "architecture_personality")?,
        };
        self.finish(f, IMAGE_KEYS)?;
        Ok(img)
    }

    fn source(&mut self, n: &Node) -> Result<Source, DefinitionError> {
        let Some(mut f) = self.fields(n, "source")? else {
            return Ok(Source::default());
        };
        let s = Source {
            downloader: self.string(&mut f, "downloader")?,
            url: self.string(&mut f, "url")?,
            keys: self.strings(&mut f, "keys")?,
            keyserver: self.string(&mut f, "keyserver")?,
            variant: self.string(&mut f, "variant")?,
            suite: self.string(&mut f, "suite")?,
            same_as: self.string(&mut f, "same_as")?,
            skip_verification: self.bool(&mut f, "skip_verification")?,
            components: self.strings(&mut f, "components")?,
        };
        self.finish(
            f,
            &[
                "downloader",
                "url",
                "keys",
                "keyserver",
                "variant",
                "suite",
                "same_as",
                "skip_verification",
                "components",
            ],
        )?;
        Ok(s)
    }

    fn targets(&mut self, n: &Node) -> Result<Targets, DefinitionError> {
        let Some(mut f) = self.fields(n, "targets")? else {
            return Ok(Targets::default());
        };
        let mut t = Targets::default();
        if let Some(n) = self.take(&mut f, "lxc") {
            if let Some(mut l) = self.fields(n, "targets.lxc")? {
                t.lxc.create_message = self.string(&mut l, "create_message")?;
                t.lxc.config = self.list(&mut l, "config", |d, n, p| {
                    let Some(mut c) = d.fields(n, p)? else {
                        return Ok(LxcConfigEntry::default());
                    };
                    let e = LxcConfigEntry {
                        kind: d.string(&mut c, "type")?,
                        before: u32_of(d.uint(&mut c, "before")?),
                        after: u32_of(d.uint(&mut c, "after")?),
                        content: d.string(&mut c, "content")?,
                        filter: d.filter(&mut c)?,
                    };
                    d.finish(
                        c,
                        &[
                            "type",
                            "before",
                            "after",
                            "content",
                            "releases",
                            "architectures",
                            "variants",
                            "types",
                        ],
                    )?;
                    Ok(e)
                })?;
                self.finish(l, &["create_message", "config"])?;
            }
        }
        if let Some(n) = self.take(&mut f, "incus") {
            if let Some(mut i) = self.fields(n, "targets.incus")? {
                if let Some(n) = self.take(&mut i, "vm") {
                    if let Some(mut v) = self.fields(n, "targets.incus.vm")? {
                        t.incus.vm.size = self.uint(&mut v, "size")?;
                        t.incus.vm.filesystem = self.string(&mut v, "filesystem")?;
                        self.finish(v, &["size", "filesystem"])?;
                    }
                }
                self.finish(i, &["vm"])?;
            }
        }
        self.finish(f, &["lxc", "incus"])?;
        Ok(t)
    }

    fn file_entry(&mut self, n: &Node, path: &str) -> Result<FileEntry, DefinitionError> {
        let Some(mut f) = self.fields(n, path)? else {
            return Ok(FileEntry::default());
        };
        let mut e = FileEntry {
            generator: self.string(&mut f, "generator")?,
            path: self.string(&mut f, "path")?,
            content: self.string(&mut f, "content")?,
            name: self.string(&mut f, "name")?,
            source: self.string(&mut f, "source")?,
            templated: self.bool(&mut f, "templated")?,
            mode: self.string(&mut f, "mode")?,
            uid: self.string(&mut f, "uid")?,
            gid: self.string(&mut f, "gid")?,
            pongo: self.bool(&mut f, "pongo")?,
            filter: self.filter(&mut f)?,
            ..Default::default()
        };
        if let Some(t) = self.take(&mut f, "template") {
            if let Some(mut tf) = self.fields(t, &join(path, "template"))? {
                e.template.properties = self.string_map(&mut tf, "properties")?;
                e.template.when = self.strings(&mut tf, "when")?;
                self.finish(tf, &["properties", "when"])?;
            }
        }
        self.finish(
            f,
            &[
                "generator",
                "path",
                "content",
                "name",
                "source",
                "template",
                "templated",
                "mode",
                "uid",
                "gid",
                "pongo",
                "releases",
                "architectures",
                "variants",
                "types",
            ],
        )?;
        Ok(e)
    }

    fn custom_command(
        &mut self,
        f: &mut Fields<'_>,
        key: &str,
    ) -> Result<CustomCommand, DefinitionError> {
        let path = join(&f.path, key);
        let Some(n) = self.take(f, key) else {
            return Ok(CustomCommand::default());
        };
        let Some(mut c) = self.fields(n, &path)? else {
            return Ok(CustomCommand::default());
        };
        let cmd = CustomCommand {
            cmd: self.string(&mut c, "cmd")?,
            flags: self.strings(&mut c, "flags")?,
        };
        self.finish(c, &["cmd", "flags"])?;
        Ok(cmd)
    }

    fn packages(&mut self, n: &Node) -> Result<Packages, DefinitionError> {
        let Some(mut f) = self.fields(n, "packages")? else {
            return Ok(Packages::default());
        };
        let mut p = Packages {
            manager: self.string(&mut f, "manager")?,
            update: self.bool(&mut f, "update")?,
            cleanup: self.bool(&mut f, "cleanup")?,
            ..Default::default()
        };
        if let Some(cm) = self.take(&mut f, "custom_manager") {
            if let Some(mut c) = self.fields(cm, "packages.custom_manager")? {
                p.custom_manager = Some(CustomManager {
                    clean: self.custom_command(&mut c, "clean")?,
                    install: self.custom_command(&mut c, "install")?,
                    remove: self.custom_command(&mut c, "remove")?,
                    refresh: self.custom_command(&mut c, "refresh")?,
                    update: self.custom_command(&mut c, "update")?,
                    flags: self.strings(&mut c, "flags")?,
                });
                self.finish(
                    c,
                    &["clean", "install", "remove", "refresh", "update", "flags"],
                )?;
            }
        }
        p.sets = self.list(&mut f, "sets", |d, n, path| {
            let Some(mut s) = d.fields(n, path)? else {
                return Ok(PackageSet::default());
            };
            let set = PackageSet {
                packages: d.strings(&mut s, "packages")?,
                action: d.string(&mut s, "action")?,
                early: d.bool(&mut s, "early")?,
                flags: d.strings(&mut s, "flags")?,
                filter: d.filter(&mut s)?,
            };
            d.finish(
                s,
                &[
                    "packages",
                    "action",
                    "early",
                    "flags",
                    "releases",
                    "architectures",
                    "variants",
                    "types",
                ],
            )?;
            Ok(set)
        })?;
        p.repositories = self.list(&mut f, "repositories", |d, n, path| {
            let Some(mut r) = d.fields(n, path)? else {
                return Ok(Repository::default());
            };
            let repo = Repository {
                name: d.string(&mut r, "name")?,
                url: d.string(&mut r, "url")?,
                kind: d.string(&mut r, "type")?,
                key: d.string(&mut r, "key")?,
                filter: d.filter(&mut r)?,
            };
            d.finish(
                r,
                &[
                    "name",
                    "url",
                    "type",
                    "key",
                    "releases",
                    "architectures",
                    "variants",
                    "types",
                ],
            )?;
            Ok(repo)
        })?;
        self.finish(
            f,
            &[
                "manager",
                "custom_manager",
                "update",
                "cleanup",
                "sets",
                "repositories",
            ],
        )?;
        Ok(p)
    }

    fn action(&mut self, n: &Node, path: &str) -> Result<Action, DefinitionError> {
        let Some(mut f) = self.fields(n, path)? else {
            return Ok(Action::default());
        };
        let a = Action {
            trigger: self.string(&mut f, "trigger")?,
            action: self.string(&mut f, "action")?,
            pongo: self.bool(&mut f, "pongo")?,
            filter: self.filter(&mut f)?,
        };
        self.finish(
            f,
            &[
                "trigger",
                "action",
                "pongo",
                "releases",
                "architectures",
                "variants",
                "types",
            ],
        )?;
        Ok(a)
    }
}

const IMAGE_KEYS: &[&str] = &[
    "distribution",
    "release",
    "architecture",
    "variant",
    "description",
    "expiry",
    "name",
    "serial",
    "architecture_mapped",
    "architecture_kernel",
    "architecture_personality",
];

fn u32_of(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(top)"
    } else {
        path
    }
}

/// YAML 1.1 booleans as yaml.v2 reads them, plus Go's ParseBool forms that `-o` accepts.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" | "1"
        | "t" | "T" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N"
        | "0" | "f" | "F" => Some(false),
        _ => None,
    }
}

/// Close enough to be a typo: same length ±1 and at most two differing characters.
fn similar(a: &str, b: &str) -> bool {
    if a == b || a.len().abs_diff(b.len()) > 1 || a.len() < 3 {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Levenshtein distance ≤ 2, small inputs.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}
