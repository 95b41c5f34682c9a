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

#[cfg(test)]
mod tests {
    use crate::config::{CatalogSection, Config, PartitionItems, SinkConfig};

    fn parse(sink: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(
            &format!(
                "[source]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n\n[[columns]]\nname = \"ts\"\ntype = \"timestamp(ms, UTC)\"\n\n[sink]\ntype = \"iceberg\"\n{sink}\n"
            ),
            "job.toml",
        )
    }

    #[test]
    fn iceberg_sink_settings_parse_and_check() {
        let c = parse(
            "table = \"lake.events\"\nwarehouse = \"s3://b/w\"\npartition_by = \"day(ts)\"\ncatalog = { type = \"rest\", uri = \"http://c:8181\", token_env = \"T\" }",
        )
        .unwrap();
        let SinkConfig::Iceberg {
            catalog,
            partition_by,
            compression,
            ..
        } = &c.sink
        else {
            panic!("not iceberg")
        };
        assert!(
            matches!(catalog, Some(CatalogSection::Rest { token_env: Some(t), .. }) if t == "T")
        );
        assert_eq!(partition_by.as_ref().unwrap().items(), vec!["day(ts)"]);
        assert_eq!(compression, "zstd");
        let c = parse(
            "table = \"a.b.events\"\nwarehouse = \"./w\"\npartition_by = [\"ts\", \"bucket(4, ts)\"]",
        )
        .unwrap();
        let SinkConfig::Iceberg {
            catalog,
            partition_by,
            ..
        } = &c.sink
        else {
            panic!("not iceberg")
        };
        assert!(
            catalog.is_none(),
            "the default SQLite catalog in the warehouse"
        );
        assert!(matches!(partition_by, Some(PartitionItems::Many(v)) if v.len() == 2));
        let sql = parse("table = \"l.e\"\ncatalog = { type = \"sql\", uri = \"sqlite:///c.db\" }")
            .unwrap();
        let SinkConfig::Iceberg { catalog, .. } = &sql.sink else {
            panic!("not iceberg")
        };
        assert!(matches!(catalog, Some(CatalogSection::Sql { name, .. }) if name == "default"));
        // Errors name the field.
        let e = parse("table = \"events\"\nwarehouse = \"./w\"").unwrap_err();
        assert!(e.to_string().starts_with("sink.table"), "{e}");
        let e = parse("table = \"l.e\"\nwarehouse = \"s3://b/w\"").unwrap_err();
        assert!(e.to_string().starts_with("sink.catalog"), "{e}");
        let e =
            parse("table = \"l.e\"\nwarehouse = \"./w\"\ncompression = \"brotli\"").unwrap_err();
        assert!(e.to_string().starts_with("sink.compression"), "{e}");
        assert!(parse("table = \"l.e\"\nwarehouse = \"./w\"\npath = \"x\"").is_err());
    }
}
