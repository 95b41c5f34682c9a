//! Column specifications: what each output column is called, its Arrow type, where its value
//! comes from, and whether it may be null.
//!
//! The configuration layer turns its text into these with [`parse_type`] and
//! [`Source::parse`]; the decoders in [`crate::decode`] compile them into per-format plans.
//! When a JSON or Avro topic is configured without columns, [`infer_json_schema`] and
//! [`avro_columns`] propose them from a sample of records or from the writer schema.

mod infer;
mod source;
mod types;

use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField, Schema};

pub use infer::{avro_columns, infer_json_schema};
pub use source::{Field, FormatKind, Source};
pub use types::{format_type, parse_type, unit_name, MAX_DECIMAL_PRECISION};

/// One output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column's name in the Arrow schema (and the table).
    pub name: String,
    /// Its Arrow type.
    pub data_type: DataType,
    /// Where its value comes from.
    pub source: Source,
    /// Whether a record without a value for it is accepted (the column gets a null). When
    /// false such a record is rejected with an error.
    pub nullable: bool,
}

impl ColumnSpec {
    /// A nullable column.
    pub fn new(name: impl Into<String>, data_type: DataType, source: Source) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            data_type,
            source,
            nullable: true,
        }
    }

    /// The same column, not nullable.
    pub fn not_null(mut self) -> ColumnSpec {
        self.nullable = false;
        self
    }
}

/// The Arrow schema of the batches built for these columns.
pub fn arrow_schema(columns: &[ColumnSpec]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| ArrowField::new(&c.name, c.data_type.clone(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// A column type, source or set of columns that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A type's text does not parse.
    #[error("bad column type {text:?} at position {position}: {message}")]
    BadType {
        /// The type text.
        text: String,
        /// Byte position of the problem.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// A source's text does not parse.
    #[error("bad column source {text:?}: {message}")]
    BadSource {
        /// The source text.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// A column cannot be filled from its source (wrong type for the format, unknown CSV
    /// name, missing key format, ...).
    #[error("column {column:?}: {message}")]
    Column {
        /// The column's name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// Two columns have the same name.
    #[error("two columns are called {0:?}")]
    DuplicateColumn(String),
    /// No schema can be taken from the samples or the Avro schema.
    #[error("cannot infer columns: {0}")]
    Infer(String),
}

impl SchemaError {
    pub(crate) fn column(column: &str, message: impl Into<String>) -> SchemaError {
        SchemaError::Column {
            column: column.to_string(),
            message: message.into(),
        }
    }
}
