//! Filter expressions: `filter = "..."` in a job keeps only the rows for which a SQL-like
//! condition over the output columns is true.
//!
//! ```toml
//! filter = "country IN ('FR', 'DE') AND amount >= 10.5 AND NOT test AND email IS NOT NULL"
//! ```
//!
//! The language is the `WHERE` clause SQL users know, without functions or arithmetic:
//!
//! | form | meaning |
//! | --- | --- |
//! | `count`, `"order date"` | a column; double quotes for names with other characters or named like a keyword (a `"` inside is written `""`) |
//! | `42`, `-7`, `2.5`, `1e3` | numbers |
//! | `'text'` | a string (a `'` inside is written `''`); also times and dates: `ts > '2024-01-31T12:00:00Z'`, `day = '2024-01-31'` |
//! | `true`, `false`, `null` | |
//! | `=` (`==`), `!=` (`<>`), `<`, `<=`, `>`, `>=` | comparisons |
//! | `x IS NULL`, `x IS NOT NULL` | null tests |
//! | `x IN (1, 2, 3)`, `x NOT IN ('a', 'b')` | membership in a list of values |
//! | `x BETWEEN 1 AND 10`, `x NOT BETWEEN ...` | inclusive range |
//! | `x LIKE 'abc%'`, `x ILIKE '%error%'`, `NOT LIKE` | patterns: `%` any text, `_` one character, `\` escapes; ILIKE ignores case |
//! | `AND`, `OR`, `NOT`, `( )` | logic; NOT binds tighter than AND, AND tighter than OR |
//!
//! Keywords are case-insensitive; so are column names when only one column matches ignoring
//! case. A boolean column is a condition by itself (`active AND NOT deleted`).
//!
//! NULL follows SQL: a comparison with a NULL value is unknown, unknown rows are dropped,
//! `NOT unknown` is unknown, `false AND unknown` is false and `true OR unknown` is true.
//! `x = NULL` is refused with a hint to write `x IS NULL`.
//!
//! A filter is parsed when the job starts ([`Filter::parse`], syntax errors point at the
//! character) and checked against the Arrow schema ([`Filter::bind`]: unknown columns,
//! comparing a string with a number, ... are errors before any record is read). See
//! `bind.rs` for how types are matched. [`BoundFilter::apply`] then evaluates the condition
//! over a whole `RecordBatch` with Arrow's compute kernels and keeps the matching rows.
//!
//! The engine filters after decoding, so a filter sees exactly the columns the sink gets, and
//! filtered-out records still count as read: their offsets are covered by the next write.

mod bind;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{ArrowError, Schema};
use thiserror::Error;

/// A filter that cannot be used. Syntax and type errors quote the filter and point at the
/// offending character.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The text is not a well-formed filter.
    #[error("filter syntax error at character {position}: {message}\n  {text}\n  {caret}")]
    Syntax {
        /// 1-based character position in the filter.
        position: usize,
        /// What is wrong and what would be right.
        message: String,
        /// The filter (on one line).
        text: String,
        /// A `^` under the position.
        caret: String,
    },
    /// The filter is well-formed but does not fit the columns (an unknown column, a string
    /// compared with a number, a number where a condition is needed).
    #[error("filter error at character {position}: {message}\n  {text}\n  {caret}")]
    Type {
        /// 1-based character position in the filter.
        position: usize,
        /// What is wrong and what would be right.
        message: String,
        /// The filter (on one line).
        text: String,
        /// A `^` under the position.
        caret: String,
    },
    /// An Arrow kernel failed on a batch (a cast of a column value that does not fit).
    #[error("evaluating the filter: {0}")]
    Evaluate(#[source] ArrowError),
}

impl FilterError {
    fn located(text: &str, pos: usize) -> (usize, String, String) {
        let position = bind::char_pos(text, pos);
        // Newlines (a TOML multi-line string) would break the caret line: show one line.
        let one_line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        let caret = " ".repeat(position - 1) + "^";
        (position, one_line, caret)
    }

    pub(crate) fn syntax(text: &str, pos: usize, message: impl Into<String>) -> Self {
        let (position, text, caret) = Self::located(text, pos);
        FilterError::Syntax {
            position,
            message: message.into(),
            text,
            caret,
        }
    }

    pub(crate) fn types(text: &str, pos: usize, message: impl Into<String>) -> Self {
        let (position, text, caret) = Self::located(text, pos);
        FilterError::Type {
            position,
            message: message.into(),
            text,
            caret,
        }
    }
}

/// A parsed filter, not yet checked against columns.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    expr: parser::Expr,
}

impl Filter {
    /// Parses a filter expression (see the [module docs](self) for the language).
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        Ok(Filter {
            text: text.to_owned(),
            expr: parser::parse(text)?,
        })
    }

    /// The filter as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Checks the filter against the columns of `schema` and prepares it for evaluation on
    /// batches of that schema.
    pub fn bind(&self, schema: &Schema) -> Result<BoundFilter, FilterError> {
        Ok(BoundFilter {
            node: bind::bind(&self.text, &self.expr, schema)?,
        })
    }
}

/// A filter checked against a schema: evaluates on batches of that schema.
#[derive(Debug, Clone)]
pub struct BoundFilter {
    node: bind::Node,
}

impl BoundFilter {
    /// Parses `text` and binds it to `schema` in one step.
    pub fn new(text: &str, schema: &Schema) -> Result<BoundFilter, FilterError> {
        Filter::parse(text)?.bind(schema)
    }

    /// Per row of `batch`: true where the filter holds; false or NULL (unknown) where not.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, FilterError> {
        eval::mask(&self.node, batch).map_err(FilterError::Evaluate)
    }

    /// The rows of `batch` for which the filter is true (the batch itself when all are).
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, FilterError> {
        if batch.num_rows() == 0 {
            return Ok(batch.clone());
        }
        let mask = self.evaluate(batch)?;
        if mask.null_count() == 0 && mask.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        arrow_select::filter::filter_record_batch(batch, &mask).map_err(FilterError::Evaluate)
    }
}
