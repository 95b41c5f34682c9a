//! The tables the sink writes: creating them (`kingest setup`) and checking existing ones
//! against the columns, reporting each difference exactly.
//!
//! The target table gets one column per `[[columns]]` entry, typed by the mapping in
//! `types.rs`, `NOT NULL` where the column is not nullable, and for upsert a primary key on the
//! key columns. The offsets table (default `kingest_offsets`, one for any number of jobs) holds
//! one row per consumer group and Kafka partition: the offset to resume from, written in the
//! same transaction as the rows, like dgkafka's offset tables.

use std::collections::BTreeSet;
use std::fmt;

use arrow_schema::Schema;
use tokio_postgres::Client;

use super::types::{PgType, Target};

/// A table name as the configuration gives it (`table` or `schema.table`), quoted for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    /// The name as configured, for messages.
    pub text: String,
    /// The quoted form (`"schema"."table"`), for SQL and for `to_regclass`.
    pub quoted: String,
}

impl TableName {
    pub(crate) fn parse(text: &str) -> Result<TableName, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!("table {text:?}: write it as name or schema.name"));
        }
        Ok(TableName {
            text: text.to_owned(),
            quoted: parts.iter().map(|p| ident(p)).collect::<Vec<_>>().join("."),
        })
    }
}

/// A quoted SQL identifier (`"a""b"` for `a"b`): column names are used as the user wrote them.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One way an existing table differs from what the job writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The column concerned, if one is.
    pub column: Option<String>,
    /// What differs, and what it means.
    pub message: String,
    /// Whether the job cannot run this way (a missing or incompatible column); otherwise the
    /// difference is worth knowing but rows still go in.
    pub blocking: bool,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.blocking { "error" } else { "note" };
        match &self.column {
            Some(c) => write!(f, "{tag}: column {}: {}", ident(c), self.message),
            None => write!(f, "{tag}: {}", self.message),
        }
    }
}

fn diff(column: Option<&str>, blocking: bool, message: String) -> Difference {
    Difference {
        column: column.map(str::to_owned),
        message,
        blocking,
    }
}

/// The PostgreSQL type of each column, or the first column without one.
pub(crate) fn mapped_types(schema: &Schema) -> Result<Vec<PgType>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            PgType::for_arrow(f.data_type()).map_err(|e| format!("column {:?}: {e}", f.name()))
        })
        .collect()
}

/// `CREATE TABLE IF NOT EXISTS` for the target table.
pub(crate) fn create_table_sql(
    table: &TableName,
    schema: &Schema,
    key: &[String],
) -> Result<String, String> {
    let types = mapped_types(schema)?;
    let mut cols: Vec<String> = schema
        .fields()
        .iter()
        .zip(&types)
        .map(|(f, t)| {
            let not_null = if f.is_nullable() && !key.contains(f.name()) {
                ""
            } else {
                " NOT NULL"
            };
            format!("{} {}{not_null}", ident(f.name()), t.sql())
        })
        .collect();
    if !key.is_empty() {
        let k: Vec<String> = key.iter().map(|k| ident(k)).collect();
        cols.push(format!("PRIMARY KEY ({})", k.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n)",
        table.quoted,
        cols.join(",\n  ")
    ))
}

/// The offsets table's columns: name and `format_type()` spelling.
const OFFSET_COLUMNS: [(&str, &str); 5] = [
    ("consumer_group", "text"),
    ("topic", "text"),
    ("partition", "integer"),
    ("next_offset", "bigint"),
    ("updated_at", "timestamp with time zone"),
];

/// `CREATE TABLE IF NOT EXISTS` for the offsets table.
pub(crate) fn create_offsets_sql(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  consumer_group text NOT NULL,\n  topic text NOT NULL,\n  \
         partition integer NOT NULL,\n  next_offset bigint NOT NULL,\n  \
         updated_at timestamp with time zone NOT NULL DEFAULT now(),\n  \
         PRIMARY KEY (consumer_group, topic, partition)\n)",
        table.quoted
    )
}

/// A column as the catalog describes it.
struct TableColumn {
    name: String,
    oid: u32,
    type_name: String,
    not_null: bool,
    has_default: bool,
    elem: u32,
}

/// What the catalog says about a table: `None` when it does not exist.
async fn table_columns(
    client: &Client,
    table: &TableName,
) -> Result<Option<(u32, Vec<TableColumn>)>, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT to_regclass($1)::oid", &[&table.quoted])
        .await?;
    let Some(relid) = row.get::<_, Option<u32>>(0) else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), \
                    CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&relid],
        )
        .await?;
    let cols = rows
        .iter()
        .map(|r| TableColumn {
            name: r.get(0),
            oid: r.get(1),
            type_name: r.get(2),
            not_null: r.get(3),
            has_default: r.get(4),
            elem: r.get(5),
        })
        .collect();
    Ok(Some((relid, cols)))
}

/// The column sets of the table's unique indexes (plain columns, no predicate).
async fn unique_keys(
    client: &Client,
    relid: u32,
) -> Result<Vec<BTreeSet<String>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text) FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
            &[&relid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, Vec<String>>(0).into_iter().collect())
        .collect())
}

/// The result of comparing a table with the job's columns.
pub(crate) struct Inspection {
    /// Whether the table exists.
    pub exists: bool,
    /// Where each column goes, when nothing blocks.
    pub targets: Option<Vec<Target>>,
    /// Every difference found.
    pub differences: Vec<Difference>,
}

/// Compares the target table with `schema` (and, for upsert, `key`).
pub(crate) async fn inspect_table(
    client: &Client,
    table: &TableName,
    schema: &Schema,
    key: &[String],
) -> Result<Inspection, String> {
    let types = mapped_types(schema)?;
    for k in key {
        if schema.field_with_name(k).is_err() {
            return Err(format!("sink.key: {k:?} is not one of the columns"));
        }
    }
    let found = table_columns(client, table).await.map_err(|e| {
        format!(
            "reading the catalog for {}: {}",
            table.text,
            super::conn::describe(&e)
        )
    })?;
    let Some((relid, cols)) = found else {
        return Ok(Inspection {
            exists: false,
            targets: None,
            differences: vec![diff(
                None,
                true,
                format!(
                    "table {} does not exist: `kingest setup` creates it",
                    table.text
                ),
            )],
        });
    };
    let mut differences = Vec::new();
    let mut targets = Vec::new();
    for (field, pg) in schema.fields().iter().zip(types) {
        let name = field.name();
        let Some(col) = cols.iter().find(|c| &c.name == name) else {
            differences.push(diff(
                Some(name),
                true,
                format!(
                    "missing from the table (the job writes {}); add it with ALTER TABLE {} ADD COLUMN {} {}",
                    pg.sql(),
                    table.quoted,
                    ident(name),
                    pg.sql()
                ),
            ));
            continue;
        };
        match Target::existing(pg.clone(), col.oid, col.elem) {
            None => differences.push(diff(
                Some(name),
                true,
                format!(
                    "the table has {}, the job writes {} ({}), which PostgreSQL's binary COPY cannot put into it",
                    col.type_name,
                    pg.sql(),
                    crate::schema::format_type(field.data_type())
                ),
            )),
            Some(t) => {
                if col.type_name != pg.sql() {
                    differences.push(diff(
                        Some(name),
                        false,
                        format!(
                            "the table has {} where setup would create {} (accepted: same encoding; \
                             values the column's limits refuse are rejected rows)",
                            col.type_name,
                            pg.sql()
                        ),
                    ));
                }
                targets.push(t);
            }
        }
        if col.not_null && field.is_nullable() {
            differences.push(diff(
                Some(name),
                false,
                "NOT NULL in the table but nullable in the columns: rows with a null are rejected"
                    .to_owned(),
            ));
        } else if !col.not_null && !field.is_nullable() && !key.contains(name) {
            differences.push(diff(
                Some(name),
                false,
                "nullable in the table, NOT NULL in the columns".to_owned(),
            ));
        }
    }
    for col in &cols {
        if schema.field_with_name(&col.name).is_ok() {
            continue;
        }
        if col.not_null && !col.has_default {
            differences.push(diff(
                Some(&col.name),
                true,
                format!(
                    "in the table ({}, NOT NULL, no default) but not in the columns: every insert would fail",
                    col.type_name
                ),
            ));
        } else {
            differences.push(diff(
                Some(&col.name),
                false,
                format!(
                    "in the table ({}) but not in the columns: it gets its default or NULL",
                    col.type_name
                ),
            ));
        }
    }
    if !key.is_empty() {
        let want: BTreeSet<String> = key.iter().cloned().collect();
        let keys = unique_keys(client, relid).await.map_err(|e| {
            format!(
                "reading the indexes of {}: {}",
                table.text,
                super::conn::describe(&e)
            )
        })?;
        if !keys.contains(&want) {
            let k: Vec<String> = key.iter().map(|k| ident(k)).collect();
            differences.push(diff(
                None,
                true,
                format!(
                    "upsert needs a primary key or unique index on exactly ({}); the table has none",
                    k.join(", ")
                ),
            ));
        }
    }
    let blocked = differences.iter().any(|d| d.blocking);
    Ok(Inspection {
        exists: true,
        targets: (!blocked).then_some(targets),
        differences,
    })
}

/// Compares an existing offsets table with the layout the sink needs; `None` when it does not
/// exist.
pub(crate) async fn inspect_offsets(
    client: &Client,
    table: &TableName,
) -> Result<Option<Vec<Difference>>, String> {
    let found = table_columns(client, table).await.map_err(|e| {
        format!(
            "reading the catalog for {}: {}",
            table.text,
            super::conn::describe(&e)
        )
    })?;
    let Some((relid, cols)) = found else {
        return Ok(None);
    };
    let mut differences = Vec::new();
    for (name, ty) in OFFSET_COLUMNS {
        match cols.iter().find(|c| c.name == name) {
            None => differences.push(diff(
                Some(name),
                true,
                format!("missing from the offsets table {} (needs {ty})", table.text),
            )),
            Some(c) if c.type_name != ty => differences.push(diff(
                Some(name),
                true,
                format!(
                    "the offsets table {} has {}, it needs {ty}",
                    table.text, c.type_name
                ),
            )),
            Some(_) => {}
        }
    }
    let want: BTreeSet<String> = ["consumer_group", "topic", "partition"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let keys = unique_keys(client, relid).await.map_err(|e| {
        format!(
            "reading the indexes of {}: {}",
            table.text,
            super::conn::describe(&e)
        )
    })?;
    if !keys.contains(&want) {
        differences.push(diff(
            None,
            true,
            format!(
                "the offsets table {} needs a primary key on (consumer_group, topic, partition)",
                table.text
            ),
        ));
    }
    Ok(Some(differences))
}

#[cfg(test)]
mod tests {
    use arrow_schema::{DataType, Field, TimeUnit};

    use super::*;

    #[test]
    fn names_are_quoted() {
        let t = TableName::parse("sales.Orders").unwrap();
        assert_eq!(t.quoted, "\"sales\".\"Orders\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse("a.").is_err());
    }

    #[test]
    fn create_table_from_columns() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("näme", DataType::Utf8, true),
        ]);
        let t = TableName::parse("events").unwrap();
        assert_eq!(
            create_table_sql(&t, &schema, &["id".to_owned()]).unwrap(),
            "CREATE TABLE IF NOT EXISTS \"events\" (\n  \"id\" bigint NOT NULL,\n  \
             \"ts\" timestamp with time zone NOT NULL,\n  \"näme\" text,\n  PRIMARY KEY (\"id\")\n)"
        );
        let off = create_offsets_sql(&TableName::parse("kingest_offsets").unwrap());
        for (name, ty) in OFFSET_COLUMNS {
            assert!(off.contains(&format!("{name} {ty}")), "{off}");
        }
    }
}
