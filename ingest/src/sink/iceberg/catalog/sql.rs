//! The SQL catalog on SQLite (rusqlite, blocking calls on tokio's blocking pool) or PostgreSQL
//! (tokio-postgres, through the PostgreSQL sink's connection settings: same URL syntax, same
//! TLS).
//!
//! The tables are created if missing exactly as pyiceberg's `SqlCatalog` creates them (its
//! "v1" schema, with `iceberg_type`); a catalog made by Java's `JdbcCatalog` or iceberg-rust
//! has the same columns (an older one without `iceberg_type` works too). Namespaces are
//! recorded as pyiceberg does: a row `exists = true` in `iceberg_namespace_properties`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;

use super::{catalog_err, Loaded, Outcome, TableIdent};
use crate::sink::iceberg::io::{StoreSettings, TableIo};
use crate::sink::iceberg::metadata::TableMetadata;
use crate::sink::postgres::conn::Settings;
use crate::sink::{Result, SinkError};

const CREATE_TABLES: &str = "CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name))";
const CREATE_NAMESPACES: &str = "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key))";

/// How long SQLite waits for another process's write lock before giving up.
const SQLITE_BUSY: Duration = Duration::from_secs(60);

enum Db {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres {
        settings: Box<Settings>,
        client: AsyncMutex<Option<Arc<tokio_postgres::Client>>>,
    },
}

/// A SQL catalog: see the [module docs](self).
pub(crate) struct SqlCatalog {
    db: Db,
    name: String,
    label: String,
    /// Whether `iceberg_tables` has the `iceberg_type` column.
    typed: bool,
}

/// The SQLite file of a `sqlite:///relative` or `sqlite:////absolute` URI (SQLAlchemy's).
pub(crate) fn sqlite_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("sqlite:///")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    Some(PathBuf::from(rest))
}

/// `postgresql+psycopg2://...` (SQLAlchemy) and `postgresql://...` as libpq's `postgres://`.
fn postgres_url(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    matches!(base, "postgres" | "postgresql").then(|| format!("postgres://{rest}"))
}

fn sqlite_err<'a>(label: &'a str, op: &'static str) -> impl Fn(rusqlite::Error) -> SinkError + 'a {
    move |e| catalog_err(label, op, e.to_string())
}

impl SqlCatalog {
    pub(crate) async fn connect(uri: &str, name: &str) -> Result<SqlCatalog> {
        let label = super::CatalogConfig::Sql {
            uri: uri.to_owned(),
            name: name.to_owned(),
        }
        .label();
        if let Some(path) = sqlite_path(uri) {
            let l = label.clone();
            let (conn, typed) = blocking(move || {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| catalog_err(&l, "create directory", e.to_string()))?;
                }
                let conn = rusqlite::Connection::open(&path).map_err(sqlite_err(&l, "open"))?;
                conn.busy_timeout(SQLITE_BUSY)
                    .map_err(sqlite_err(&l, "busy_timeout"))?;
                conn.execute_batch(&format!("{CREATE_TABLES};\n{CREATE_NAMESPACES};"))
                    .map_err(sqlite_err(&l, "create tables"))?;
                let typed = conn
                    .prepare("SELECT iceberg_type FROM iceberg_tables LIMIT 0")
                    .is_ok();
                Ok((conn, typed))
            })
            .await?;
            return Ok(SqlCatalog {
                db: Db::Sqlite(Arc::new(Mutex::new(conn))),
                name: name.to_owned(),
                label,
                typed,
            });
        }
        let url = postgres_url(uri).ok_or_else(|| {
            catalog_err(
                &label,
                "connect",
                "the uri is neither sqlite:///FILE nor postgresql://...",
            )
        })?;
        let settings = Settings::parse(&url).map_err(|e| catalog_err(&label, "connect", e))?;
        let mut cat = SqlCatalog {
            db: Db::Postgres {
                settings: Box::new(settings),
                client: AsyncMutex::new(None),
            },
            name: name.to_owned(),
            label,
            typed: false,
        };
        let client = cat.pg().await?;
        for ddl in [CREATE_TABLES, CREATE_NAMESPACES] {
            if let Err(e) = client.batch_execute(ddl).await {
                // Two processes creating the tables at once: the loser's error is harmless.
                tracing::debug!(error = %e, "creating the catalog tables");
            }
        }
        cat.typed = client
            .batch_execute("SELECT iceberg_type FROM iceberg_tables LIMIT 0")
            .await
            .is_ok();
        Ok(cat)
    }

    /// The PostgreSQL client, connecting (again) when needed.
    async fn pg(&self) -> Result<Arc<tokio_postgres::Client>> {
        let Db::Postgres { settings, client } = &self.db else {
            return Err(catalog_err(
                &self.label,
                "connect",
                "not a PostgreSQL catalog",
            ));
        };
        let mut c = client.lock().await;
        if let Some(existing) = c.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(existing));
        }
        let fresh = settings.connect().await.map_err(|e| {
            catalog_err(
                &self.label,
                "connect",
                crate::sink::postgres::conn::describe(&e),
            )
        })?;
        *c = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    fn type_filter(&self) -> &'static str {
        if self.typed {
            " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)"
        } else {
            ""
        }
    }

    async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        let (ns, table) = (ident.namespace_text(), ident.name.clone());
        let sql = format!(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND \
             table_namespace = $2 AND table_name = $3{}",
            self.type_filter()
        );
        match &self.db {
            Db::Sqlite(conn) => {
                let (conn, name, label) = (Arc::clone(conn), self.name.clone(), self.label.clone());
                blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    let sql = sql.replace('$', "?");
                    let mut stmt = conn.prepare(&sql).map_err(sqlite_err(&label, "load"))?;
                    let mut rows = stmt
                        .query(rusqlite::params![name, ns, table])
                        .map_err(sqlite_err(&label, "load"))?;
                    match rows.next().map_err(sqlite_err(&label, "load"))? {
                        Some(row) => row
                            .get::<_, Option<String>>(0)
                            .map_err(sqlite_err(&label, "load")),
                        None => Ok(None),
                    }
                })
                .await
            }
            Db::Postgres { .. } => {
                let client = self.pg().await?;
                let rows = client
                    .query(&sql, &[&self.name, &ns, &table])
                    .await
                    .map_err(|e| self.pg_err("load", &e))?;
                Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)))
            }
        }
    }

    fn pg_err(&self, op: &'static str, e: &tokio_postgres::Error) -> SinkError {
        catalog_err(&self.label, op, crate::sink::postgres::conn::describe(e))
    }

    pub(crate) async fn load(
        &self,
        ident: &TableIdent,
        store: &StoreSettings,
    ) -> Result<Option<Loaded>> {
        let Some(location) = self.metadata_location(ident).await? else {
            return Ok(None);
        };
        let bytes = TableIo::for_location(&location, store)?
            .read(&location)
            .await?;
        let metadata = TableMetadata::parse(&bytes).map_err(|reason| SinkError::Table {
            table: ident.to_string(),
            reason: format!("{location}: {reason}"),
        })?;
        Ok(Some(Loaded { location, metadata }))
    }

    pub(crate) async fn create(
        &self,
        ident: &TableIdent,
        metadata: &TableMetadata,
        metadata_location: &str,
        io: &TableIo,
    ) -> Result<Option<Loaded>> {
        io.write(metadata_location, metadata.to_bytes()).await?;
        let (ns, table) = (ident.namespace_text(), ident.name.clone());
        let typed = self.typed;
        let insert_table = if typed {
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
             metadata_location, previous_metadata_location, iceberg_type) \
             VALUES ($1, $2, $3, $4, NULL, 'TABLE')"
        } else {
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
             metadata_location, previous_metadata_location) VALUES ($1, $2, $3, $4, NULL)"
        };
        let insert_ns = "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, \
                         property_key, property_value) VALUES ($1, $2, 'exists', 'true')";
        let created = match &self.db {
            Db::Sqlite(conn) => {
                let (conn, name, label) = (Arc::clone(conn), self.name.clone(), self.label.clone());
                let loc = metadata_location.to_owned();
                blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    // The namespace row may exist already: that is fine.
                    let _ = conn.execute(&insert_ns.replace('$', "?"), rusqlite::params![name, ns]);
                    match conn.execute(
                        &insert_table.replace('$', "?"),
                        rusqlite::params![name, ns, table, loc],
                    ) {
                        Ok(_) => Ok(true),
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                        {
                            Ok(false)
                        }
                        Err(e) => Err(sqlite_err(&label, "create table")(e)),
                    }
                })
                .await?
            }
            Db::Postgres { .. } => {
                let client = self.pg().await?;
                let ns_sql = format!("{insert_ns} ON CONFLICT DO NOTHING");
                client
                    .execute(&ns_sql, &[&self.name, &ns])
                    .await
                    .map_err(|e| self.pg_err("create namespace", &e))?;
                match client
                    .execute(insert_table, &[&self.name, &ns, &table, &metadata_location])
                    .await
                {
                    Ok(_) => true,
                    Err(e)
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                    {
                        false
                    }
                    Err(e) => return Err(self.pg_err("create table", &e)),
                }
            }
        };
        if !created {
            io.delete(metadata_location).await;
            return Ok(None);
        }
        Ok(Some(Loaded {
            location: metadata_location.to_owned(),
            metadata: metadata.clone(),
        }))
    }

    pub(crate) async fn commit(
        &self,
        ident: &TableIdent,
        base: &Loaded,
        new: &TableMetadata,
        new_location: &str,
        io: &TableIo,
    ) -> Result<Outcome> {
        io.write(new_location, new.to_bytes()).await?;
        let (ns, table) = (ident.namespace_text(), ident.name.clone());
        let sql = "UPDATE iceberg_tables SET metadata_location = $1, \
                   previous_metadata_location = $2 WHERE catalog_name = $3 AND \
                   table_namespace = $4 AND table_name = $5 AND metadata_location = $2";
        let updated: std::result::Result<u64, String> = match &self.db {
            Db::Sqlite(conn) => {
                let (conn, name) = (Arc::clone(conn), self.name.clone());
                let (new_loc, old) = (new_location.to_owned(), base.location.clone());
                blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    // `?NNN` keeps the numbered parameters ($2 is used twice).
                    let sql = sql.replace('$', "?");
                    Ok(conn
                        .execute(&sql, rusqlite::params![new_loc, old, name, ns, table])
                        .map(|n| n as u64)
                        .map_err(|e| e.to_string()))
                })
                .await?
            }
            Db::Postgres { .. } => {
                let client = self.pg().await?;
                client
                    .execute(
                        sql,
                        &[&new_location, &base.location, &self.name, &ns, &table],
                    )
                    .await
                    .map_err(|e| crate::sink::postgres::conn::describe(&e))
            }
        };
        match updated {
            Ok(1) => Ok(Outcome::Committed),
            Ok(_) => {
                io.delete(new_location).await;
                Ok(Outcome::Conflict)
            }
            Err(e) => Ok(Outcome::Unknown(e)),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SinkError::Poisoned(format!("a catalog task failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_sql_uris_read_as_sqlalchemy_writes_them() {
        assert_eq!(
            sqlite_path("sqlite:///cat.db"),
            Some(PathBuf::from("cat.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:////var/lib/cat.db"),
            Some(PathBuf::from("/var/lib/cat.db"))
        );
        assert_eq!(sqlite_path("postgresql://x"), None);
        assert_eq!(
            postgres_url("postgresql+psycopg2://u:p@h/db").as_deref(),
            Some("postgres://u:p@h/db")
        );
        assert_eq!(postgres_url("mysql://h/db"), None);
    }
}
