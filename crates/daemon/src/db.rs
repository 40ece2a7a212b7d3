//! warrend's state: SQLite (WAL) under $WARREN_DIR, with numbered schema migrations.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Json(#[from] serde_json::Error),
}

/// The schema, one migration per entry; applied in order, each once.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE storage_pools (name TEXT PRIMARY KEY, driver TEXT NOT NULL, description TEXT NOT NULL, config TEXT NOT NULL);
     CREATE TABLE profiles (name TEXT PRIMARY KEY, description TEXT NOT NULL, config TEXT NOT NULL, devices TEXT NOT NULL);
     INSERT INTO profiles VALUES ('default', 'Default warren profile', '{}', '{}');",
    "CREATE TABLE images (fingerprint TEXT PRIMARY KEY, filename TEXT NOT NULL, size INTEGER NOT NULL,
        architecture TEXT NOT NULL, properties TEXT NOT NULL, created_at TEXT NOT NULL, uploaded_at TEXT NOT NULL);
     CREATE TABLE image_aliases (name TEXT PRIMARY KEY, target TEXT NOT NULL REFERENCES images(fingerprint) ON DELETE CASCADE,
        description TEXT NOT NULL);",
    "CREATE TABLE instances (name TEXT PRIMARY KEY, description TEXT NOT NULL, config TEXT NOT NULL, devices TEXT NOT NULL,
        profiles TEXT NOT NULL, architecture TEXT NOT NULL, created_at TEXT NOT NULL, ephemeral INTEGER NOT NULL);",
    "CREATE TABLE snapshots (instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE, name TEXT NOT NULL,
        created_at TEXT NOT NULL, config TEXT NOT NULL, devices TEXT NOT NULL, profiles TEXT NOT NULL,
        PRIMARY KEY (instance, name));",
    "CREATE TABLE volumes (pool TEXT NOT NULL REFERENCES storage_pools(name) ON DELETE CASCADE, name TEXT NOT NULL,
        description TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (pool, name));",
    "ALTER TABLE images ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE images ADD COLUMN update_source TEXT NOT NULL DEFAULT 'null';",
    "CREATE TABLE networks (name TEXT PRIMARY KEY, description TEXT NOT NULL, type TEXT NOT NULL, config TEXT NOT NULL);",
    "ALTER TABLE images ADD COLUMN auto_update INTEGER NOT NULL DEFAULT 0;",
    "CREATE TABLE server_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE certificates (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
        certificate TEXT NOT NULL, description TEXT NOT NULL);",
    // projects: instances keep their storage name (`<project>_<name>` outside default) as key;
    // profiles, images, aliases and volumes are keyed by project too
    "CREATE TABLE projects (name TEXT PRIMARY KEY, description TEXT NOT NULL, config TEXT NOT NULL);
     INSERT INTO projects VALUES ('default', 'Default warren project',
        '{\"features.images\":\"true\",\"features.networks\":\"true\",\"features.networks.zones\":\"true\",\"features.profiles\":\"true\",\"features.storage.buckets\":\"true\",\"features.storage.volumes\":\"true\"}');
     ALTER TABLE instances ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
     CREATE TABLE profiles_new (project TEXT NOT NULL DEFAULT 'default', name TEXT NOT NULL, description TEXT NOT NULL,
        config TEXT NOT NULL, devices TEXT NOT NULL, PRIMARY KEY (project, name));
     INSERT INTO profiles_new SELECT 'default', name, description, config, devices FROM profiles;
     DROP TABLE profiles;
     ALTER TABLE profiles_new RENAME TO profiles;
     CREATE TABLE aliases_old AS SELECT * FROM image_aliases;
     DROP TABLE image_aliases;
     CREATE TABLE images_new (project TEXT NOT NULL DEFAULT 'default', fingerprint TEXT NOT NULL, filename TEXT NOT NULL,
        size INTEGER NOT NULL, architecture TEXT NOT NULL, properties TEXT NOT NULL, created_at TEXT NOT NULL,
        uploaded_at TEXT NOT NULL, cached INTEGER NOT NULL DEFAULT 0, update_source TEXT NOT NULL DEFAULT 'null',
        auto_update INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (project, fingerprint));
     INSERT INTO images_new SELECT 'default', fingerprint, filename, size, architecture, properties, created_at,
        uploaded_at, cached, update_source, auto_update FROM images;
     DROP TABLE images;
     ALTER TABLE images_new RENAME TO images;
     CREATE TABLE image_aliases (project TEXT NOT NULL DEFAULT 'default', name TEXT NOT NULL, target TEXT NOT NULL,
        description TEXT NOT NULL, PRIMARY KEY (project, name),
        FOREIGN KEY (project, target) REFERENCES images(project, fingerprint) ON DELETE CASCADE);
     INSERT INTO image_aliases SELECT 'default', name, target, description FROM aliases_old;
     DROP TABLE aliases_old;
     CREATE TABLE volumes_new (pool TEXT NOT NULL REFERENCES storage_pools(name) ON DELETE CASCADE,
        project TEXT NOT NULL DEFAULT 'default', name TEXT NOT NULL, description TEXT NOT NULL, config TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (pool, project, name));
     INSERT INTO volumes_new SELECT pool, 'default', name, description, config, created_at FROM volumes;
     DROP TABLE volumes;
     ALTER TABLE volumes_new RENAME TO volumes;",
    // restricted client certificates: only the projects listed (a JSON array)
    "ALTER TABLE certificates ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE certificates ADD COLUMN projects TEXT NOT NULL DEFAULT '[]';",
];

/// A project (`incus project`): its own instances, and as its `features.*` say its own
/// profiles, images and custom volumes (or the default project's).
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub description: String,
    /// key → string value
    pub config: Value,
}

impl Project {
    /// Project "p" with `config`, for unit tests.
    #[cfg(test)]
    pub fn for_test(config: Value) -> Project {
        Project {
            name: "p".into(),
            description: String::new(),
            config,
        }
    }

    fn feature(&self, key: &str) -> bool {
        self.config.get(key).and_then(Value::as_str) == Some("true")
    }

    /// The project whose profiles this one's instances use.
    pub fn profiles_project(&self) -> &str {
        self.owner_of("features.profiles")
    }

    /// The project whose images this one uses.
    pub fn images_project(&self) -> &str {
        self.owner_of("features.images")
    }

    /// The project whose custom volumes this one uses.
    pub fn volumes_project(&self) -> &str {
        self.owner_of("features.storage.volumes")
    }

    fn owner_of(&self, feature: &str) -> &str {
        if self.name == "default" || self.feature(feature) {
            &self.name
        } else {
            "default"
        }
    }

    /// The storage (and container) name of instance `name` of this project: as Incus names
    /// them, `<project>_<name>` outside the default project (neither may hold a `_`).
    pub fn key(&self, name: &str) -> String {
        storage_name(&self.name, name)
    }

    /// An API path of this project: `?project=` added outside the default one.
    pub fn url(&self, path: &str) -> String {
        project_url(&self.name, path)
    }
}

/// `<project>_<name>` outside the default project, `name` in it.
pub fn storage_name(project: &str, name: &str) -> String {
    if project == "default" {
        name.to_string()
    } else {
        format!("{project}_{name}")
    }
}

/// (project, name) of an instance's storage name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('_').unwrap_or(("default", key))
}

/// The API path of instance `key` (a storage name) with `suffix` (`/snapshots/s1`), its
/// project added.
pub fn instance_path(key: &str, suffix: &str) -> String {
    let (project, name) = split_key(key);
    project_url(project, &format!("/1.0/instances/{name}{suffix}"))
}

/// An API path with `?project=` for a project other than default.
pub fn project_url(project: &str, path: &str) -> String {
    if project == "default" {
        path.to_string()
    } else {
        format!("{path}?project={project}")
    }
}

/// A trusted client certificate (`incus config trust`).
#[derive(Debug, Clone)]
pub struct Certificate {
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    pub name: String,
    pub kind: String,
    /// PEM.
    pub certificate: String,
    pub description: String,
    /// Only `projects` are open to it, and nothing that changes the server or a project.
    pub restricted: bool,
    pub projects: Vec<String>,
}

/// A managed network.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub config: Value,
}

/// A custom storage volume.
#[derive(Debug, Clone)]
pub struct Volume {
    pub pool: String,
    pub project: String,
    pub name: String,
    pub description: String,
    pub config: Value,
    pub created_at: String,
}

/// A snapshot row: the instance's config as it was, beside a copy of its rootfs.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub instance: String,
    pub name: String,
    pub created_at: String,
    pub config: Value,
    pub devices: Value,
    pub profiles: Value,
}

/// An instance row.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The storage name: `<project>_<name>` outside the default project (see `api_name`).
    pub name: String,
    pub project: String,
    /// The project whose profiles it uses (its own, or default's: `features.profiles`).
    pub profiles_project: String,
    /// The project whose custom volumes its disks name (`features.storage.volumes`).
    pub volumes_project: String,
    pub description: String,
    pub config: Value,
    pub devices: Value,
    pub profiles: Value,
    pub architecture: String,
    pub created_at: String,
    pub ephemeral: bool,
}

/// An image row.
#[derive(Debug, Clone)]
pub struct Image {
    pub project: String,
    pub fingerprint: String,
    pub filename: String,
    pub size: i64,
    pub architecture: String,
    pub properties: Value,
    pub created_at: String,
    pub uploaded_at: String,
    /// Downloaded for an instance (not copied or imported by the user).
    pub cached: bool,
    /// Where it came from (server, protocol, alias, certificate), null for an upload.
    pub update_source: Value,
    /// Refreshed from its source now and then.
    pub auto_update: bool,
}

impl Instance {
    /// The name the API shows (the storage name without its project).
    pub fn api_name(&self) -> &str {
        split_key(&self.name).1
    }

    /// `/1.0/instances/<name>`, with its project.
    pub fn url(&self) -> String {
        instance_path(&self.name, "")
    }
}

pub struct Db {
    conn: Connection,
}

/// A storage pool row.
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub driver: String,
    pub description: String,
    pub config: Value,
}

/// A profile row.
#[derive(Debug, Clone)]
pub struct Profile {
    pub project: String,
    pub name: String,
    pub description: String,
    pub config: Value,
    pub devices: Value,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // off while tables are rebuilt by a migration
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema (version INTEGER NOT NULL)")?;
        let version: i64 =
            conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema", [], |r| {
                r.get(0)
            })?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.execute(
                "INSERT INTO schema (version) VALUES (?1)",
                params![i as i64 + 1],
            )?;
            tx.commit()?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Db { conn })
    }

    /// The rows of a query selecting four text columns.
    fn text_rows(&self, sql: &str) -> Result<Vec<[String; 4]>, DbError> {
        let mut st = self.conn.prepare(sql)?;
        let rows = st.query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn pools(&self) -> Result<Vec<Pool>, DbError> {
        self.text_rows("SELECT name, driver, description, config FROM storage_pools ORDER BY name")?
            .into_iter()
            .map(|[name, driver, description, config]| {
                Ok(Pool {
                    name,
                    driver,
                    description,
                    config: serde_json::from_str(&config)?,
                })
            })
            .collect()
    }

    pub fn add_pool(&self, p: &Pool) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO storage_pools (name, driver, description, config) VALUES (?1, ?2, ?3, ?4)",
            params![
                p.name,
                p.driver,
                p.description,
                serde_json::to_string(&p.config)?
            ],
        )?;
        Ok(())
    }

    /// The profiles of `project` (the project that holds them: see `Project::profiles_project`).
    pub fn profiles(&self, project: &str) -> Result<Vec<Profile>, DbError> {
        self.rows_of_four(
            "SELECT name, description, config, devices FROM profiles WHERE project = ?1 ORDER BY name",
            params![project],
        )?
            .into_iter()
            .map(|[name, description, config, devices]| {
                Ok(Profile {
                    project: project.to_string(),
                    name,
                    description,
                    config: serde_json::from_str(&config)?,
                    devices: serde_json::from_str(&devices)?,
                })
            })
            .collect()
    }

    pub fn profile(&self, project: &str, name: &str) -> Result<Option<Profile>, DbError> {
        Ok(self.profiles(project)?.into_iter().find(|p| p.name == name))
    }

    /// The profiles of every project (an instance expands those of its `profiles_project`).
    pub fn all_profiles(&self) -> Result<Vec<Profile>, DbError> {
        let mut out = Vec::new();
        for project in self.projects()? {
            out.extend(self.profiles(&project.name)?);
        }
        Ok(out)
    }

    pub fn projects(&self) -> Result<Vec<Project>, DbError> {
        let mut out = Vec::new();
        for [name, description, config, _] in self.rows_of_four(
            "SELECT name, description, config, '' FROM projects ORDER BY name",
            [],
        )? {
            out.push(Project {
                name,
                description,
                config: serde_json::from_str(&config)?,
            });
        }
        Ok(out)
    }

    pub fn project(&self, name: &str) -> Result<Option<Project>, DbError> {
        Ok(self.projects()?.into_iter().find(|p| p.name == name))
    }

    /// Creates or replaces a project.
    pub fn put_project(&self, p: &Project) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO projects (name, description, config) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET description = ?2, config = ?3",
            params![p.name, p.description, serde_json::to_string(&p.config)?],
        )?;
        Ok(())
    }

    /// Makes project `p` with its own default profile (when it has its own profiles).
    pub fn add_project(&self, p: &Project) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO projects (name, description, config) VALUES (?1, ?2, ?3)",
            params![p.name, p.description, serde_json::to_string(&p.config)?],
        )?;
        if p.profiles_project() == p.name {
            tx.execute(
                "INSERT INTO profiles (project, name, description, config, devices) VALUES (?1, 'default', ?2, '{}', '{}')",
                params![p.name, format!("Default warren profile for project {}", p.name)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes an (empty) project with its profiles.
    pub fn delete_project(&self, name: &str) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM profiles WHERE project = ?1", params![name])?;
        tx.execute("DELETE FROM projects WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(())
    }

    /// Renames an (empty) project and its profiles.
    pub fn rename_project(&self, old: &str, new: &str) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE projects SET name = ?2 WHERE name = ?1",
            params![old, new],
        )?;
        tx.execute(
            "UPDATE profiles SET project = ?2 WHERE project = ?1",
            params![old, new],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Creates or replaces a profile.
    pub fn put_profile(&self, p: &Profile) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO profiles (project, name, description, config, devices) VALUES (?5, ?1, ?2, ?3, ?4)
             ON CONFLICT(project, name) DO UPDATE SET description = ?2, config = ?3, devices = ?4",
            params![
                p.name,
                p.description,
                serde_json::to_string(&p.config)?,
                serde_json::to_string(&p.devices)?,
                p.project
            ],
        )?;
        Ok(())
    }

    /// The images of `project` (the project that holds them: see `Project::images_project`).
    pub fn images(&self, project: &str) -> Result<Vec<Image>, DbError> {
        self.images_where("WHERE project = ?1", project)
    }

    /// Whether any project has image `fingerprint` (its file is shared).
    pub fn image_anywhere(&self, fingerprint: &str) -> Result<bool, DbError> {
        Ok(!self
            .images_where("WHERE fingerprint = ?1", fingerprint)?
            .is_empty())
    }

    fn images_where(&self, clause: &str, arg: &str) -> Result<Vec<Image>, DbError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT fingerprint, filename, size, architecture, properties, created_at, uploaded_at, cached, update_source, auto_update, project FROM images {clause} ORDER BY uploaded_at"
        ))?;
        let rows = st.query_map(params![arg], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                (r.get::<_, String>(4)?, r.get(5)?, r.get(6)?),
                (
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, String>(10)?,
                ),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                (fingerprint, filename, size, architecture),
                (properties, created_at, uploaded_at),
                (cached, update_source, auto_update, project),
            ) = row?;
            out.push(Image {
                project,
                fingerprint,
                filename,
                size,
                architecture,
                properties: serde_json::from_str(&properties)?,
                created_at,
                uploaded_at,
                cached: cached != 0,
                update_source: serde_json::from_str(&update_source)?,
                auto_update: auto_update != 0,
            });
        }
        Ok(out)
    }

    pub fn add_image(&self, i: &Image) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO images (fingerprint, filename, size, architecture, properties, created_at, uploaded_at, cached, update_source, project) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![i.fingerprint, i.filename, i.size, i.architecture, serde_json::to_string(&i.properties)?, i.created_at, i.uploaded_at, i.cached as i64, serde_json::to_string(&i.update_source)?, i.project],
        )?;
        Ok(())
    }

    pub fn set_image_auto_update(
        &self,
        project: &str,
        fingerprint: &str,
        on: bool,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE images SET auto_update = ?2 WHERE fingerprint = ?1 AND project = ?3",
            params![fingerprint, on as i64, project],
        )?;
        Ok(())
    }

    /// Points the aliases of image `from` at image `to`.
    pub fn move_aliases(&self, project: &str, from: &str, to: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE image_aliases SET target = ?2 WHERE target = ?1 AND project = ?3",
            params![from, to, project],
        )?;
        Ok(())
    }

    /// Records where an image came from, and whether it is only a cache.
    pub fn set_image_origin(
        &self,
        project: &str,
        fingerprint: &str,
        cached: bool,
        update_source: &Value,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE images SET cached = ?2, update_source = ?3 WHERE fingerprint = ?1 AND project = ?4",
            params![
                fingerprint,
                cached as i64,
                serde_json::to_string(update_source)?,
                project
            ],
        )?;
        Ok(())
    }

    pub fn delete_image(&self, project: &str, fingerprint: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM images WHERE fingerprint = ?1 AND project = ?2",
            params![fingerprint, project],
        )?;
        Ok(())
    }

    /// (name, target, description) of every alias.
    pub fn aliases(&self, project: &str) -> Result<Vec<(String, String, String)>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT name, target, description FROM image_aliases WHERE project = ?1 ORDER BY name",
        )?;
        let rows = st.query_map(params![project], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_alias(
        &self,
        project: &str,
        name: &str,
        target: &str,
        description: &str,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO image_aliases (project, name, target, description) VALUES (?4, ?1, ?2, ?3)",
            params![name, target, description, project],
        )?;
        Ok(())
    }

    pub fn delete_alias(&self, project: &str, name: &str) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM image_aliases WHERE name = ?1 AND project = ?2",
            params![name, project],
        )?)
    }

    pub fn instances(&self) -> Result<Vec<Instance>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT name, description, config, devices, profiles, architecture, created_at, ephemeral, project FROM instances ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
            ))
        })?;
        let projects = self.projects()?;
        let owner = |project: &str, of: fn(&Project) -> &str| {
            projects
                .iter()
                .find(|p| p.name == project)
                .map_or("default", of)
                .to_string()
        };
        let mut out = Vec::new();
        for row in rows {
            let (
                name,
                description,
                config,
                devices,
                profiles,
                architecture,
                created_at,
                ephemeral,
                project,
            ) = row?;
            out.push(Instance {
                name,
                profiles_project: owner(&project, Project::profiles_project),
                volumes_project: owner(&project, Project::volumes_project),
                project,
                description,
                config: serde_json::from_str(&config)?,
                devices: serde_json::from_str(&devices)?,
                profiles: serde_json::from_str(&profiles)?,
                architecture,
                created_at,
                ephemeral: ephemeral != 0,
            });
        }
        Ok(out)
    }

    pub fn instance(&self, name: &str) -> Result<Option<Instance>, DbError> {
        Ok(self.instances()?.into_iter().find(|i| i.name == name))
    }

    pub fn add_instance(&self, i: &Instance) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO instances (name, description, config, devices, profiles, architecture, created_at, ephemeral, project)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                i.name,
                i.description,
                serde_json::to_string(&i.config)?,
                serde_json::to_string(&i.devices)?,
                serde_json::to_string(&i.profiles)?,
                i.architecture,
                i.created_at,
                i.ephemeral as i64,
                i.project
            ],
        )?;
        Ok(())
    }

    pub fn update_instance(&self, i: &Instance) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE instances SET description = ?2, config = ?3, devices = ?4, profiles = ?5, ephemeral = ?6 WHERE name = ?1",
            params![
                i.name,
                i.description,
                serde_json::to_string(&i.config)?,
                serde_json::to_string(&i.devices)?,
                serde_json::to_string(&i.profiles)?,
                i.ephemeral as i64
            ],
        )?;
        Ok(())
    }

    pub fn snapshots(&self, instance: &str) -> Result<Vec<Snapshot>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT name, created_at, config, devices, profiles FROM snapshots WHERE instance = ?1 ORDER BY created_at",
        )?;
        let rows = st.query_map(params![instance], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, created_at, config, devices, profiles) = row?;
            out.push(Snapshot {
                instance: instance.to_string(),
                name,
                created_at,
                config: serde_json::from_str(&config)?,
                devices: serde_json::from_str(&devices)?,
                profiles: serde_json::from_str(&profiles)?,
            });
        }
        Ok(out)
    }

    pub fn add_snapshot(&self, s: &Snapshot) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO snapshots (instance, name, created_at, config, devices, profiles) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                s.instance,
                s.name,
                s.created_at,
                serde_json::to_string(&s.config)?,
                serde_json::to_string(&s.devices)?,
                serde_json::to_string(&s.profiles)?
            ],
        )?;
        Ok(())
    }

    pub fn delete_snapshot(&self, instance: &str, name: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM snapshots WHERE instance = ?1 AND name = ?2",
            params![instance, name],
        )?;
        Ok(())
    }

    /// Renames an instance (into `project`) and its snapshots' rows together.
    pub fn rename_instance(&self, old: &str, new: &str, project: &str) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        tx.execute(
            "UPDATE instances SET name = ?2, project = ?3 WHERE name = ?1",
            params![old, new, project],
        )?;
        tx.execute(
            "UPDATE snapshots SET instance = ?2 WHERE instance = ?1",
            params![old, new],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn networks(&self) -> Result<Vec<Network>, DbError> {
        let mut out = Vec::new();
        for [name, description, kind, config] in self.rows_of_four(
            "SELECT name, description, type, config FROM networks ORDER BY name",
            [],
        )? {
            out.push(Network {
                name,
                description,
                kind,
                config: serde_json::from_str(&config)?,
            });
        }
        Ok(out)
    }

    /// The rows of a query of four text columns.
    fn rows_of_four(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<[String; 4]>, DbError> {
        let mut st = self.conn.prepare(sql)?;
        let rows = st.query_map(params, |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// Adds or replaces a network.
    pub fn put_network(&self, n: &Network) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO networks (name, description, type, config) VALUES (?1, ?2, ?3, ?4)",
            params![n.name, n.description, n.kind, serde_json::to_string(&n.config)?],
        )?;
        Ok(())
    }

    pub fn delete_network(&self, name: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM networks WHERE name = ?1", params![name])?;
        Ok(())
    }

    /// The custom volumes of pool `pool`, of every project.
    pub fn volumes(&self, pool: &str) -> Result<Vec<Volume>, DbError> {
        let mut out = Vec::new();
        for [name, description, config, created_at] in self.rows_of_four(
            "SELECT project || '/' || name, description, config, created_at FROM volumes WHERE pool = ?1 ORDER BY name",
            params![pool],
        )? {
            let (project, name) = name.split_once('/').unwrap_or(("default", &name));
            out.push(Volume {
                pool: pool.to_string(),
                project: project.to_string(),
                name: name.to_string(),
                description,
                config: serde_json::from_str(&config)?,
                created_at,
            });
        }
        Ok(out)
    }

    pub fn add_volume(&self, v: &Volume) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO volumes (pool, name, description, config, created_at, project) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.pool, v.name, v.description, serde_json::to_string(&v.config)?, v.created_at, v.project],
        )?;
        Ok(())
    }

    pub fn update_volume(&self, v: &Volume) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE volumes SET description = ?3, config = ?4 WHERE pool = ?1 AND name = ?2 AND project = ?5",
            params![
                v.pool,
                v.name,
                v.description,
                serde_json::to_string(&v.config)?,
                v.project
            ],
        )?;
        Ok(())
    }

    pub fn rename_volume(&self, v: &Volume, new: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE volumes SET name = ?3 WHERE pool = ?1 AND name = ?2 AND project = ?4",
            params![v.pool, v.name, new, v.project],
        )?;
        Ok(())
    }

    pub fn delete_volume(&self, v: &Volume) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM volumes WHERE pool = ?1 AND name = ?2 AND project = ?3",
            params![v.pool, v.name, v.project],
        )?;
        Ok(())
    }

    pub fn delete_profile(&self, project: &str, name: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM profiles WHERE name = ?1 AND project = ?2",
            params![name, project],
        )?;
        Ok(())
    }

    pub fn rename_profile(&self, project: &str, old: &str, new: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE profiles SET name = ?2 WHERE name = ?1 AND project = ?3",
            params![old, new, project],
        )?;
        Ok(())
    }

    pub fn delete_pool(&self, name: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM storage_pools WHERE name = ?1", params![name])?;
        Ok(())
    }

    pub fn delete_instance(&self, name: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM instances WHERE name = ?1", params![name])?;
        Ok(())
    }

    pub fn profile_exists(&self, project: &str, name: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM profiles WHERE name = ?1 AND project = ?2",
                params![name, project],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The server's config (`incus config`): key → value.
    pub fn server_config(&self) -> Result<std::collections::BTreeMap<String, String>, DbError> {
        let mut st = self.conn.prepare("SELECT key, value FROM server_config")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// Replaces the server's config.
    pub fn set_server_config(
        &self,
        config: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM server_config", [])?;
        for (k, v) in config {
            tx.execute(
                "INSERT INTO server_config (key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn certificates(&self) -> Result<Vec<Certificate>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT fingerprint, name, type, certificate, description, restricted, projects FROM certificates ORDER BY name, fingerprint",
        )?;
        let rows = st.query_map([], |r| {
            let projects: String = r.get(6)?;
            Ok(Certificate {
                fingerprint: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                certificate: r.get(3)?,
                description: r.get(4)?,
                restricted: r.get::<_, i64>(5)? != 0,
                projects: serde_json::from_str(&projects).unwrap_or_default(),
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// Adds or replaces a trusted certificate.
    pub fn put_certificate(&self, c: &Certificate) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO certificates (fingerprint, name, type, certificate, description, restricted, projects) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.fingerprint,
                c.name,
                c.kind,
                c.certificate,
                c.description,
                c.restricted,
                serde_json::to_string(&c.projects).unwrap_or_else(|_| "[]".into())
            ],
        )?;
        Ok(())
    }

    pub fn delete_certificate(&self, fingerprint: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM certificates WHERE fingerprint = ?1",
            params![fingerprint],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_projects_keeps_its_rows_in_the_default_project() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("warren.db");
        {
            // the schema as it was before projects, with a row of each kind
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch("CREATE TABLE schema (version INTEGER NOT NULL)")
                .expect("schema");
            for (i, m) in MIGRATIONS[..9].iter().enumerate() {
                conn.execute_batch(m).expect("migration");
                conn.execute(
                    "INSERT INTO schema (version) VALUES (?1)",
                    params![i as i64 + 1],
                )
                .expect("version");
            }
            conn.execute_batch(
                "INSERT INTO storage_pools VALUES ('default', 'dir', '', '{}');
                 INSERT INTO profiles VALUES ('web', 'w', '{}', '{}');
                 INSERT INTO images (fingerprint, filename, size, architecture, properties, created_at, uploaded_at)
                    VALUES ('abc', 'f', 1, 'x86_64', '{}', 't', 't');
                 INSERT INTO image_aliases VALUES ('bb', 'abc', '');
                 INSERT INTO instances VALUES ('c1', '', '{}', '{}', '[\"default\"]', 'x86_64', 't', 0);
                 INSERT INTO volumes VALUES ('default', 'data', '', '{}', 't');",
            )
            .expect("rows");
        }
        let db = Db::open(&path).expect("migrated");
        let names: Vec<String> = db
            .profiles("default")
            .expect("profiles")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["default", "web"]);
        assert_eq!(db.images("default").expect("images")[0].fingerprint, "abc");
        assert_eq!(db.aliases("default").expect("aliases")[0].0, "bb");
        let i = db.instance("c1").expect("instance").expect("c1");
        assert_eq!(
            (i.project.as_str(), i.api_name(), i.url().as_str()),
            ("default", "c1", "/1.0/instances/c1")
        );
        assert_eq!(
            db.volumes("default").expect("volumes")[0].project,
            "default"
        );
        let default = db.project("default").expect("project").expect("default");
        assert_eq!(default.images_project(), "default");
        // the alias still follows its image
        db.delete_image("default", "abc").expect("delete");
        assert!(db.aliases("default").expect("aliases").is_empty());
    }

    #[test]
    fn a_project_names_its_instances_and_what_it_shares() {
        let p = Project {
            name: "p1".into(),
            description: String::new(),
            config: serde_json::json!({"features.profiles": "false", "features.images": "true"}),
        };
        assert_eq!(p.key("c1"), "p1_c1");
        assert_eq!(split_key("p1_c1"), ("p1", "c1"));
        assert_eq!(split_key("c1"), ("default", "c1"));
        assert_eq!(
            instance_path("p1_c1", "/snapshots/s"),
            "/1.0/instances/c1/snapshots/s?project=p1"
        );
        assert_eq!(p.profiles_project(), "default");
        assert_eq!(p.images_project(), "p1");
        assert_eq!(p.volumes_project(), "default");
        assert_eq!(p.url("/1.0/profiles/x"), "/1.0/profiles/x?project=p1");
    }
}
