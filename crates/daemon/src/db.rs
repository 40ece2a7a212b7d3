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
];

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
    pub name: String,
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
    pub name: String,
    pub description: String,
    pub config: Value,
    pub devices: Value,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
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

    pub fn profiles(&self) -> Result<Vec<Profile>, DbError> {
        self.text_rows("SELECT name, description, config, devices FROM profiles ORDER BY name")?
            .into_iter()
            .map(|[name, description, config, devices]| {
                Ok(Profile {
                    name,
                    description,
                    config: serde_json::from_str(&config)?,
                    devices: serde_json::from_str(&devices)?,
                })
            })
            .collect()
    }

    pub fn profile(&self, name: &str) -> Result<Option<Profile>, DbError> {
        Ok(self.profiles()?.into_iter().find(|p| p.name == name))
    }

    /// Creates or replaces a profile.
    pub fn put_profile(&self, p: &Profile) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO profiles (name, description, config, devices) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET description = ?2, config = ?3, devices = ?4",
            params![
                p.name,
                p.description,
                serde_json::to_string(&p.config)?,
                serde_json::to_string(&p.devices)?
            ],
        )?;
        Ok(())
    }

    pub fn images(&self) -> Result<Vec<Image>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT fingerprint, filename, size, architecture, properties, created_at, uploaded_at, cached, update_source, auto_update FROM images ORDER BY uploaded_at",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                (r.get::<_, String>(4)?, r.get(5)?, r.get(6)?),
                (
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                ),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                (fingerprint, filename, size, architecture),
                (properties, created_at, uploaded_at),
                (cached, update_source, auto_update),
            ) = row?;
            out.push(Image {
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
            "INSERT INTO images (fingerprint, filename, size, architecture, properties, created_at, uploaded_at, cached, update_source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![i.fingerprint, i.filename, i.size, i.architecture, serde_json::to_string(&i.properties)?, i.created_at, i.uploaded_at, i.cached as i64, serde_json::to_string(&i.update_source)?],
        )?;
        Ok(())
    }

    pub fn set_image_auto_update(&self, fingerprint: &str, on: bool) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE images SET auto_update = ?2 WHERE fingerprint = ?1",
            params![fingerprint, on as i64],
        )?;
        Ok(())
    }

    /// Points the aliases of image `from` at image `to`.
    pub fn move_aliases(&self, from: &str, to: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE image_aliases SET target = ?2 WHERE target = ?1",
            params![from, to],
        )?;
        Ok(())
    }

    /// Records where an image came from, and whether it is only a cache.
    pub fn set_image_origin(
        &self,
        fingerprint: &str,
        cached: bool,
        update_source: &Value,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE images SET cached = ?2, update_source = ?3 WHERE fingerprint = ?1",
            params![
                fingerprint,
                cached as i64,
                serde_json::to_string(update_source)?
            ],
        )?;
        Ok(())
    }

    pub fn delete_image(&self, fingerprint: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM images WHERE fingerprint = ?1",
            params![fingerprint],
        )?;
        Ok(())
    }

    /// (name, target, description) of every alias.
    pub fn aliases(&self) -> Result<Vec<(String, String, String)>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT name, target, description FROM image_aliases ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_alias(&self, name: &str, target: &str, description: &str) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO image_aliases (name, target, description) VALUES (?1, ?2, ?3)",
            params![name, target, description],
        )?;
        Ok(())
    }

    pub fn delete_alias(&self, name: &str) -> Result<usize, DbError> {
        Ok(self
            .conn
            .execute("DELETE FROM image_aliases WHERE name = ?1", params![name])?)
    }

    pub fn instances(&self) -> Result<Vec<Instance>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT name, description, config, devices, profiles, architecture, created_at, ephemeral FROM instances ORDER BY name",
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
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, description, config, devices, profiles, architecture, created_at, ephemeral) =
                row?;
            out.push(Instance {
                name,
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
            "INSERT INTO instances (name, description, config, devices, profiles, architecture, created_at, ephemeral)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                i.name,
                i.description,
                serde_json::to_string(&i.config)?,
                serde_json::to_string(&i.devices)?,
                serde_json::to_string(&i.profiles)?,
                i.architecture,
                i.created_at,
                i.ephemeral as i64
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

    /// Renames an instance and its snapshots' rows together.
    pub fn rename_instance(&self, old: &str, new: &str) -> Result<(), DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        tx.execute(
            "UPDATE instances SET name = ?2 WHERE name = ?1",
            params![old, new],
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

    pub fn volumes(&self, pool: &str) -> Result<Vec<Volume>, DbError> {
        let mut out = Vec::new();
        for [name, description, config, created_at] in self.rows_of_four(
            "SELECT name, description, config, created_at FROM volumes WHERE pool = ?1 ORDER BY name",
            params![pool],
        )? {
            out.push(Volume {
                pool: pool.to_string(),
                name,
                description,
                config: serde_json::from_str(&config)?,
                created_at,
            });
        }
        Ok(out)
    }

    pub fn add_volume(&self, v: &Volume) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO volumes (pool, name, description, config, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![v.pool, v.name, v.description, serde_json::to_string(&v.config)?, v.created_at],
        )?;
        Ok(())
    }

    pub fn update_volume(&self, v: &Volume) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE volumes SET description = ?3, config = ?4 WHERE pool = ?1 AND name = ?2",
            params![
                v.pool,
                v.name,
                v.description,
                serde_json::to_string(&v.config)?
            ],
        )?;
        Ok(())
    }

    pub fn rename_volume(&self, pool: &str, old: &str, new: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE volumes SET name = ?3 WHERE pool = ?1 AND name = ?2",
            params![pool, old, new],
        )?;
        Ok(())
    }

    pub fn delete_volume(&self, pool: &str, name: &str) -> Result<(), DbError> {
        self.conn.execute(
            "DELETE FROM volumes WHERE pool = ?1 AND name = ?2",
            params![pool, name],
        )?;
        Ok(())
    }

    pub fn delete_profile(&self, name: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM profiles WHERE name = ?1", params![name])?;
        Ok(())
    }

    pub fn rename_profile(&self, old: &str, new: &str) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE profiles SET name = ?2 WHERE name = ?1",
            params![old, new],
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

    pub fn profile_exists(&self, name: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM profiles WHERE name = ?1",
                params![name],
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
            "SELECT fingerprint, name, type, certificate, description FROM certificates ORDER BY name, fingerprint",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Certificate {
                fingerprint: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                certificate: r.get(3)?,
                description: r.get(4)?,
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
            "INSERT OR REPLACE INTO certificates (fingerprint, name, type, certificate, description) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.fingerprint, c.name, c.kind, c.certificate, c.description],
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
