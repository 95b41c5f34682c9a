//! The `[sink]` settings of table formats: the Iceberg catalog (`catalog = { type = "sql",
//! uri = "sqlite:///catalog.db" }` or `{ type = "rest", uri = "http://..." }`) and
//! `partition_by` as one item or a list (`"day(ts)"` or `["day(ts)", "bucket(16, id)"]`).

use serde::Deserialize;

/// An Iceberg catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum CatalogSection {
    /// A SQL catalog (pyiceberg's `SqlCatalog`, Java's `JdbcCatalog`): SQLite or PostgreSQL.
    Sql {
        /// `sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user@host/db`.
        uri: String,
        /// The catalog's name in its tables (default `default`, pyiceberg's usual name).
        #[serde(default = "default_catalog_name")]
        name: String,
    },
    /// A REST catalog server.
    Rest {
        /// `http://host:8181` (the path before `/v1`).
        uri: String,
        /// The warehouse to ask the server for.
        warehouse: Option<String>,
        /// A bearer token; `token_env` names an environment variable holding it instead.
        token: Option<String>,
        /// An environment variable holding the bearer token.
        token_env: Option<String>,
    },
}

fn default_catalog_name() -> String {
    "default".to_owned()
}

/// `partition_by`: a single item or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PartitionItems {
    /// `partition_by = "day(ts)"`.
    One(String),
    /// `partition_by = ["day(ts)", "bucket(16, id)"]`.
    Many(Vec<String>),
}

impl PartitionItems {
    /// The items, in order.
    pub fn items(&self) -> Vec<String> {
        match self {
            PartitionItems::One(s) => vec![s.clone()],
            PartitionItems::Many(v) => v.clone(),
        }
    }
}
