//! Decode errors: which record, which column, where in the record, and what was wrong.
//!
//! Errors are built only on the failure path, so they may allocate: the hot path passes
//! around a small [`DecodeErrorKind`] and the [`super::RowDecoder`] adds the record's topic,
//! partition and offset and the column's name and source when a row is rejected.

use std::fmt;

use super::registry::RegistryError;
use super::Tombstones;

/// How many bytes of offending input an error quotes.
const SNIPPET_BYTES: usize = 64;

/// Quotes at most [`SNIPPET_BYTES`] of `bytes` (lossily, for invalid UTF-8) for an error.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let cut = bytes.len() > SNIPPET_BYTES;
    let mut end = bytes.len().min(SNIPPET_BYTES);
    // Do not cut a UTF-8 sequence in half; step back to a character boundary.
    while cut && end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let mut s = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if cut {
        s.push('…');
    }
    s
}

/// A failure inside a format decoder: the column being filled (if any) and what went wrong;
/// the row decoder adds the record and the column's name and source.
pub(crate) type Fail = (Option<usize>, DecodeErrorKind);

/// A record that could not be turned into a row. Nothing of it was appended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct DecodeError {
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The column being filled, when the problem belongs to one.
    pub column: Option<String>,
    /// Where the column reads from: `JSON /a/b`, `CSV field 3`, `Avro field a.b`, `header h`.
    pub location: Option<String>,
    /// What was wrong (boxed, so a `Result<(), DecodeError>` stays small on the hot path).
    #[source]
    pub kind: Box<DecodeErrorKind>,
}

impl DecodeError {
    /// Whether retrying the same record later may succeed: true only when a schema could not
    /// be fetched from the registry for a reason other than the registry saying it has none.
    pub fn is_retriable(&self) -> bool {
        matches!(&*self.kind, DecodeErrorKind::Registry { source, .. } if source.is_transient())
    }

    /// Whether this is a tombstone that `tombstones = "skip"` drops: not a bad record, just
    /// no row.
    pub fn is_skipped_tombstone(&self) -> bool {
        matches!(
            &*self.kind,
            DecodeErrorKind::Tombstone {
                policy: Tombstones::Skip,
                ..
            }
        )
    }
}

/// The column, where it reads from and what was wrong: `column "count" (JSON /count): cannot
/// read "abc" as int64`. The record's topic, partition and offset are left out: whoever reports
/// the error names the record once, beside it (`events-0 offset 60: column "ts" ...` from
/// `kingest run`, the offset column of `kingest test`, a dead letter's own fields), so the
/// message does not repeat them. They are in the fields.
impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.column, &self.location) {
            (Some(c), Some(l)) => write!(f, "column {c:?} ({l}): {}", self.kind),
            (Some(c), None) => write!(f, "column {c:?}: {}", self.kind),
            (None, Some(l)) => write!(f, "{l}: {}", self.kind),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

/// What was wrong with a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The bytes are not valid in the format.
    #[error("invalid {format} at byte {position}: {message} (near {near:?})")]
    Syntax {
        /// `JSON`, `CSV` or `Avro`.
        format: &'static str,
        /// Byte offset in the value or key.
        position: usize,
        /// What the parser expected or found.
        message: &'static str,
        /// The input from that point on, truncated.
        near: String,
    },
    /// A value that cannot be converted to the column's type.
    #[error("cannot read {found:?} as {expected}")]
    Convert {
        /// The column (or nested field) type.
        expected: String,
        /// The offending value, truncated.
        found: String,
    },
    /// A value of a kind the column type cannot hold at all (an object for an integer).
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// The column (or nested field) type.
        expected: String,
        /// What was there.
        found: &'static str,
    },
    /// A number or time outside the column type's range.
    #[error("{found:?} is out of range for {expected}")]
    OutOfRange {
        /// The column (or nested field) type.
        expected: String,
        /// The offending value.
        found: String,
    },
    /// A decimal with more digits than the column's precision, or digits that cannot be kept.
    #[error("{found:?} does not fit {expected}: {why}")]
    Precision {
        /// The column type.
        expected: String,
        /// The offending value.
        found: String,
        /// Why it does not fit.
        why: &'static str,
    },
    /// Text without a UTC offset for a column whose time zone is a region name: which offset
    /// applies is not known without a time zone database, so it is not guessed.
    #[error(
        "{found:?} has no UTC offset and the column's time zone {tz:?} is not a fixed offset; \
         write the offset in the text or use a UTC or ±HH:MM column time zone"
    )]
    NaiveTime {
        /// The text.
        found: String,
        /// The column's time zone.
        tz: String,
    },
    /// Null or absent where the column (or nested field) is not nullable.
    #[error("null or missing, but the column is not nullable")]
    NotNullable,
    /// Text that is not valid UTF-8 for a string column.
    #[error("not valid UTF-8: {found:?}")]
    InvalidUtf8 {
        /// The bytes, lossily decoded and truncated.
        found: String,
    },
    /// A value that is not in the Confluent wire format (magic byte 0, 4-byte schema id).
    #[error("not in the schema-registry wire format: {0}")]
    NotConfluentFraming(&'static str),
    /// The writer schema could not be had.
    #[error("schema id {id}: {source}")]
    Registry {
        /// The schema id from the record.
        id: u32,
        /// Why it could not be had.
        source: RegistryError,
    },
    /// The writer schema cannot be decoded into the columns.
    #[error("schema id {id}: {message}")]
    Schema {
        /// The schema id.
        id: u32,
        /// What is wrong.
        message: String,
    },
    /// Avro binary that does not match its writer schema.
    #[error("bad Avro data at byte {position}: {message}")]
    Avro {
        /// Byte offset in the value or key.
        position: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// More input after a complete value.
    #[error("{extra} trailing bytes after the {format} value")]
    Trailing {
        /// `JSON` or `Avro`.
        format: &'static str,
        /// How many.
        extra: usize,
    },
    /// A CSV message holding more than one line.
    #[error("a CSV message must hold one row, found a line break outside quotes at byte {0}")]
    ManyRows(usize),
    /// Input nested deeper than the decoder follows.
    #[error("nested more than {0} levels deep")]
    TooDeep(usize),
    /// A batch grew past what 32-bit Arrow offsets address; finish it sooner.
    #[error("the batch holds over 2 GiB of string or binary data in one column; finish it sooner")]
    BatchFull,
    /// A tombstone (a null value, or an empty one in JSON, CSV or Avro) under
    /// `tombstones = "error"`, or under `"skip"`, where the caller drops it.
    #[error(
        "{} value (a tombstone), {} by format.tombstones = \"{}\"",
        if *empty { "empty" } else { "null" },
        if *policy == Tombstones::Skip { "dropped" } else { "refused" },
        policy.as_str()
    )]
    Tombstone {
        /// Whether the value was empty rather than null.
        empty: bool,
        /// The setting.
        policy: Tombstones,
    },
    /// A problem inside a nested value: the path within the column, then the problem.
    #[error("at {path}: {source}")]
    Nested {
        /// `.field` and `[index]` steps from the column's value to the problem.
        path: String,
        /// The problem.
        source: Box<DecodeErrorKind>,
    },
}

impl DecodeErrorKind {
    /// Prefixes a nested step (`.name` or `[3]`) to the path of this error.
    pub(crate) fn within(self, step: impl fmt::Display) -> DecodeErrorKind {
        match self {
            DecodeErrorKind::Nested { path, source } => DecodeErrorKind::Nested {
                path: format!("{step}{path}"),
                source,
            },
            other => DecodeErrorKind::Nested {
                path: step.to_string(),
                source: Box::new(other),
            },
        }
    }

    pub(crate) fn syntax(
        format: &'static str,
        buf: &[u8],
        position: usize,
        message: &'static str,
    ) -> DecodeErrorKind {
        DecodeErrorKind::Syntax {
            format,
            position,
            message,
            near: snippet(buf.get(position..).unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_truncated_on_char_boundaries() {
        assert_eq!(snippet(b"abc"), "abc");
        let long = "é".repeat(40); // 80 bytes
        let s = snippet(long.as_bytes());
        assert!(s.ends_with('…'));
        assert_eq!(s.chars().filter(|&c| c == 'é').count(), 32);
        assert_eq!(snippet(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn messages_name_column_and_place_not_the_record() {
        let e = DecodeError {
            topic: "events".into(),
            partition: 3,
            offset: 42,
            column: Some("count".into()),
            location: Some("JSON /count".into()),
            kind: Box::new(DecodeErrorKind::Convert {
                expected: "int64".into(),
                found: "abc".into(),
            }),
        };
        // The record's coordinates are the reporter's to show, once.
        assert_eq!(
            e.to_string(),
            "column \"count\" (JSON /count): cannot read \"abc\" as int64"
        );
        assert!(!e.is_retriable());
        let nested = DecodeErrorKind::NotNullable.within(".b").within("[2]");
        assert_eq!(
            nested.to_string(),
            "at [2].b: null or missing, but the column is not nullable"
        );
    }
}
