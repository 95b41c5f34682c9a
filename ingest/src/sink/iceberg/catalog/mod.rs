//! Iceberg catalogs: where a table's current metadata file is recorded, and the
//! compare-and-swap that makes a commit atomic.
//!
//! - [`sql`]: the SQL catalog of pyiceberg's `SqlCatalog`, iceberg-rust's and Java's
//!   `JdbcCatalog` (tables `iceberg_tables` and `iceberg_namespace_properties`), on SQLite or
//!   PostgreSQL. This sink writes the metadata file and moves the table's `metadata_location`
//!   with `UPDATE ... WHERE metadata_location = <the one it read>`: zero rows updated means
//!   another writer committed first.
//! - [`rest`]: the Iceberg REST catalog protocol. The server writes the metadata; a commit
//!   sends the new snapshot with the requirement that `main` still points where it did, and a
//!   409 means another writer committed first.
//!
//! A SQL catalog's writer also deletes the metadata files a commit drops from `metadata-log`
//! when the table's `write.metadata.delete-after-commit.enabled` is set (tables kingest
//! creates set it); a REST server owns the metadata files it writes and their cleanup.
//!
//! Either way a conflict is retried by the sink on the new metadata, and an unknown outcome
//! (a connection lost during the commit) is resolved by reloading and looking for the
//! commit's id.

pub(crate) mod rest;
pub(crate) mod sql;

use serde_json::Value;

use super::io::{StoreSettings, TableIo};
use super::metadata::TableMetadata;
use crate::sink::{Result, SinkError};

/// A table name in a catalog: namespace levels and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableIdent {
    pub namespace: Vec<String>,
    pub name: String,
}

impl TableIdent {
    /// `a.b.table`: the last part is the table, the rest its namespace (at least one level).
    pub(crate) fn parse(text: &str) -> std::result::Result<TableIdent, String> {
        let parts: Vec<&str> = text.split('.').map(str::trim).collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "{text:?}: give the table as namespace.table (e.g. analytics.events)"
            ));
        }
        let (name, ns) = parts.split_last().unwrap_or((&"", &[]));
        Ok(TableIdent {
            namespace: ns.iter().map(|s| (*s).to_owned()).collect(),
            name: (*name).to_owned(),
        })
    }

    /// The namespace as SQL catalogs store it: levels joined by dots.
    pub(crate) fn namespace_text(&self) -> String {
        self.namespace.join(".")
    }
}

impl std::fmt::Display for TableIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.namespace_text(), self.name)
    }
}

/// How to reach the catalog (`[sink] catalog = {...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogConfig {
    /// A SQL catalog: `sqlite:///relative.db`, `sqlite:////absolute.db` (SQLAlchemy's form,
    /// which pyiceberg takes too) or `postgresql://user:pw@host/db`.
    Sql {
        /// The database URI.
        uri: String,
        /// The catalog's name (`catalog_name` in its tables; pyiceberg's catalog name).
        name: String,
    },
    /// A REST catalog.
    Rest {
        /// The server's base URI (`http://host:8181`).
        uri: String,
        /// The warehouse to ask the server for, if it serves several.
        warehouse: Option<String>,
        /// A bearer token.
        token: Option<String>,
    },
}

impl CatalogConfig {
    /// How the catalog is named in messages (no credentials).
    pub(crate) fn label(&self) -> String {
        match self {
            CatalogConfig::Sql { uri, name } => {
                let shown = match uri.split_once('@') {
                    Some((scheme_user, host)) => {
                        let scheme = scheme_user.split("://").next().unwrap_or("");
                        format!("{scheme}://{host}")
                    }
                    None => uri.clone(),
                };
                format!("sql catalog {name:?} at {shown}")
            }
            CatalogConfig::Rest { uri, .. } => format!("REST catalog at {uri}"),
        }
    }
}

/// A table as loaded from the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The metadata file the catalog points at.
    pub location: String,
    pub metadata: TableMetadata,
}

/// What a commit attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Committed,
    /// Another writer moved the table first: retry on its metadata.
    Conflict,
    /// The answer was lost: reload and look for the commit id.
    Unknown(String),
}

/// A connected catalog, and how the storage of its tables is reached.
pub(crate) struct Catalog {
    kind: Kind,
    /// `[sink.storage]` and `[sink.retry]`: every table file this process reads or writes
    /// (metadata a SQL catalog points at, manifests, data files) goes through a client made
    /// with these.
    store: StoreSettings,
}

enum Kind {
    Sql(sql::SqlCatalog),
    Rest(rest::RestCatalog),
}

impl Catalog {
    /// Connects to the catalog; the tables' files are reached with `store`.
    pub(crate) async fn connect(config: &CatalogConfig, store: StoreSettings) -> Result<Catalog> {
        let kind = match config {
            CatalogConfig::Sql { uri, name } => {
                Kind::Sql(sql::SqlCatalog::connect(uri, name).await?)
            }
            CatalogConfig::Rest {
                uri,
                warehouse,
                token,
            } => Kind::Rest(
                rest::RestCatalog::connect(uri, warehouse.as_deref(), token.clone()).await?,
            ),
        };
        Ok(Catalog { kind, store })
    }

    /// The storage holding `location` (a table's location or one of its files).
    pub(crate) fn io(&self, location: &str) -> Result<TableIo> {
        TableIo::for_location(location, &self.store)
    }

    /// The table, or `None` when the catalog has no such table.
    pub(crate) async fn load(&self, ident: &TableIdent) -> Result<Option<Loaded>> {
        match &self.kind {
            Kind::Sql(c) => c.load(ident, &self.store).await,
            Kind::Rest(c) => c.load(ident).await,
        }
    }

    /// Creates the table from new-table metadata (`None` when another writer created it
    /// first: load it). A SQL catalog writes `metadata` itself at `metadata_location`; a REST
    /// server builds its own from the schema, spec and properties in it.
    pub(crate) async fn create(
        &self,
        ident: &TableIdent,
        metadata: &TableMetadata,
        metadata_location: &str,
        io: &TableIo,
    ) -> Result<Option<Loaded>> {
        match &self.kind {
            Kind::Sql(c) => c.create(ident, metadata, metadata_location, io).await,
            Kind::Rest(c) => c.create(ident, metadata).await,
        }
    }

    /// Appends `snapshot` to `base`: a SQL catalog writes `new` (the base plus the snapshot)
    /// to `new_location` and swaps the pointer; a REST server applies the snapshot itself.
    pub(crate) async fn commit(
        &self,
        ident: &TableIdent,
        base: &Loaded,
        snapshot: &Value,
        new: &TableMetadata,
        new_location: &str,
        io: &TableIo,
    ) -> Result<Outcome> {
        match &self.kind {
            Kind::Sql(c) => {
                let outcome = c.commit(ident, base, new, new_location, io).await?;
                if matches!(outcome, Outcome::Committed) {
                    delete_dropped_metadata(base, new, io).await;
                }
                Ok(outcome)
            }
            Kind::Rest(c) => c.commit(ident, base, snapshot).await,
        }
    }

    /// Removes the snapshots `expired` from `base` (snapshot expiry): a SQL catalog writes
    /// `new` (the base without them) to `new_location` and swaps the pointer; a REST server is
    /// sent the `remove-snapshots` update with the requirement that `main` still points where
    /// it did, and applies it itself.
    pub(crate) async fn remove_snapshots(
        &self,
        ident: &TableIdent,
        base: &Loaded,
        expired: &[i64],
        new: &TableMetadata,
        new_location: &str,
        io: &TableIo,
    ) -> Result<Outcome> {
        match &self.kind {
            Kind::Sql(_) => {
                self.commit(ident, base, &Value::Null, new, new_location, io)
                    .await
            }
            Kind::Rest(c) => c.remove_snapshots(ident, base, expired).await,
        }
    }

    /// Whether this catalog writes the metadata files itself (a SQL catalog) or its server
    /// does (REST).
    pub(crate) fn writes_metadata(&self) -> bool {
        matches!(self.kind, Kind::Sql(_))
    }
}

/// After a commit of `new` over `base`: deletes the metadata files `base`'s `metadata-log`
/// listed and `new`'s dropped, when the table's `write.metadata.delete-after-commit.enabled`
/// says so (Java's `CatalogUtil.deleteRemovedMetadataFiles`). Only for catalogs whose writer
/// writes the metadata (SQL); a REST server does this for the metadata it writes. A failed
/// deletion leaves an orphan for `remove_orphan_files`, as in Java.
async fn delete_dropped_metadata(base: &Loaded, new: &TableMetadata, io: &TableIo) {
    if !new.deletes_dropped_metadata() {
        return;
    }
    for file in base.metadata.dropped_from_log(new) {
        io.delete(&file).await;
    }
}

pub(crate) fn catalog_err(
    catalog: &str,
    op: &'static str,
    message: impl Into<String>,
) -> SinkError {
    SinkError::Catalog {
        catalog: catalog.to_owned(),
        op,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_table_names_need_a_namespace() {
        let t = TableIdent::parse("a.b.events").unwrap();
        assert_eq!(t.namespace, vec!["a", "b"]);
        assert_eq!(t.name, "events");
        assert_eq!(t.to_string(), "a.b.events");
        assert!(TableIdent::parse("events").is_err());
        assert!(TableIdent::parse("a..b").is_err());
        let c = CatalogConfig::Sql {
            uri: "postgresql://u:secret@db:5432/x".into(),
            name: "default".into(),
        };
        assert!(!c.label().contains("secret"), "{}", c.label());
    }
}
