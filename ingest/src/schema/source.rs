//! Where a column's value comes from: a field of the record's value or key (a JSON pointer, a
//! CSV column, an Avro field path, or the whole bytes) or the record's metadata.
//!
//! The text forms, as a configuration writes them:
//!
//! | text | meaning |
//! | --- | --- |
//! | `/a/b/0` | JSON pointer (RFC 6901, `~0` is `~`, `~1` is `/`); a numeric token also indexes arrays |
//! | `name` (JSON) | shorthand for the top-level key `name`, taken verbatim |
//! | `` (JSON, empty) | the whole document |
//! | `3` (CSV) | the fourth field (0-based) |
//! | `name` (CSV) | the field at `name`'s position in the format's `names` list |
//! | `a.b` (Avro) | field `b` of record field `a`; the empty path is the whole record |
//! | `__value` | the whole value, as string or binary (or parsed, for scalar columns) |
//! | `__key` | the whole key |
//! | `__key:SRC` | `SRC` read from the key, decoded with the key format |
//! | `__header$NAME` | the last header called `NAME` |
//! | `__topic`, `__partition`, `__offset`, `__timestamp` | record metadata |
//!
//! Pinot's spellings `__metadata$offset`, `__metadata$partition` and
//! `__metadata$recordTimestamp` are accepted too, since that is where many users come from.

use std::fmt;

use super::SchemaError;

/// The kind of a record format, which decides how a field source is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatKind {
    /// JSON documents.
    Json,
    /// One CSV row per message.
    Csv,
    /// Avro binary in the Confluent Schema Registry wire format.
    Avro,
    /// The bytes as they are.
    Raw,
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatKind::Json => "json",
            FormatKind::Csv => "csv",
            FormatKind::Avro => "avro",
            FormatKind::Raw => "raw",
        })
    }
}

/// A place inside a value or key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// The whole bytes.
    Whole,
    /// A JSON pointer, as its unescaped tokens (empty: the whole document).
    Pointer(Vec<String>),
    /// A CSV field by 0-based position.
    CsvIndex(usize),
    /// A CSV field by its name in the format's `names` list.
    CsvName(String),
    /// An Avro field path (empty: the whole record).
    AvroPath(Vec<String>),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Whole => Ok(()),
            Field::Pointer(tokens) => {
                for t in tokens {
                    write!(f, "/{}", t.replace('~', "~0").replace('/', "~1"))?;
                }
                Ok(())
            }
            Field::CsvIndex(i) => write!(f, "{i}"),
            Field::CsvName(n) => f.write_str(n),
            Field::AvroPath(path) => f.write_str(&path.join(".")),
        }
    }
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A field of the record's value (or all of it).
    Value(Field),
    /// A field of the record's key (or all of it).
    Key(Field),
    /// The value of the last header with this name.
    Header(String),
    /// The topic name.
    Topic,
    /// The partition number.
    Partition,
    /// The record's offset.
    Offset,
    /// The record's timestamp (milliseconds since the epoch).
    Timestamp,
}

impl Source {
    /// Parses a source written for records whose value has format `value` (see the module docs
    /// for the syntax). Key fields (`__key:SRC`) need [`Source::parse_with_key`].
    pub fn parse(text: &str, value: FormatKind) -> Result<Source, SchemaError> {
        Source::parse_with_key(text, value, None)
    }

    /// Parses a source for records whose value has format `value` and whose key, when `key` is
    /// given, has that format.
    pub fn parse_with_key(
        text: &str,
        value: FormatKind,
        key: Option<FormatKind>,
    ) -> Result<Source, SchemaError> {
        let bad = |message: String| SchemaError::BadSource {
            text: text.to_string(),
            message,
        };
        if let Some(rest) = text.strip_prefix("__key") {
            if rest.is_empty() {
                return Ok(Source::Key(Field::Whole));
            }
            if let Some(inner) = rest.strip_prefix(':') {
                let Some(key) = key else {
                    return Err(bad("a key field needs a key format".into()));
                };
                return parse_field(inner, key).map(Source::Key).map_err(bad);
            }
        }
        if let Some(name) = text.strip_prefix("__header$") {
            if name.is_empty() {
                return Err(bad("a header source needs a name after '$'".into()));
            }
            return Ok(Source::Header(name.to_string()));
        }
        match text {
            "__value" => return Ok(Source::Value(Field::Whole)),
            "__topic" => return Ok(Source::Topic),
            "__partition" | "__metadata$partition" => return Ok(Source::Partition),
            "__offset" | "__metadata$offset" => return Ok(Source::Offset),
            "__timestamp" | "__metadata$recordTimestamp" => return Ok(Source::Timestamp),
            _ => {}
        }
        if text.starts_with("__") && !text.contains(['/', '.']) && value != FormatKind::Csv {
            // A likely typo of a metadata source; a JSON key or Avro field really named so can
            // still be reached as `/__x` or by a path.
            return Err(bad(
                "unknown metadata source (known: __key, __key:SRC, __value, __header$NAME, \
                 __topic, __partition, __offset, __timestamp)"
                    .into(),
            ));
        }
        parse_field(text, value).map(Source::Value).map_err(bad)
    }

    /// The field of the value this source reads, if it reads one.
    pub fn value_field(&self) -> Option<&Field> {
        match self {
            Source::Value(f) => Some(f),
            _ => None,
        }
    }
}

fn parse_field(text: &str, kind: FormatKind) -> Result<Field, String> {
    match kind {
        FormatKind::Json => {
            if text.is_empty() {
                return Ok(Field::Pointer(Vec::new()));
            }
            let Some(rest) = text.strip_prefix('/') else {
                return Ok(Field::Pointer(vec![text.to_string()]));
            };
            rest.split('/')
                .map(unescape_token)
                .collect::<Result<_, _>>()
                .map(Field::Pointer)
        }
        FormatKind::Csv => {
            if text.is_empty() {
                return Err("a CSV source is a 0-based field number or a name".into());
            }
            if text.bytes().all(|b| b.is_ascii_digit()) {
                return text
                    .parse()
                    .map(Field::CsvIndex)
                    .map_err(|_| "CSV field number too large".to_string());
            }
            Ok(Field::CsvName(text.to_string()))
        }
        FormatKind::Avro => {
            if text.is_empty() {
                return Ok(Field::AvroPath(Vec::new()));
            }
            let path: Vec<String> = text.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err("an Avro path is field names joined by '.', none empty".into());
            }
            Ok(Field::AvroPath(path))
        }
        FormatKind::Raw => {
            Err("the raw format has no fields: use __value (or __key) for the bytes".into())
        }
    }
}

fn unescape_token(token: &str) -> Result<String, String> {
    if !token.contains('~') {
        return Ok(token.to_string());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return Err("in a JSON pointer '~' must be followed by 0 or 1".into()),
        }
    }
    Ok(out)
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Value(Field::Whole) => f.write_str("__value"),
            Source::Value(field) => write!(f, "{field}"),
            Source::Key(Field::Whole) => f.write_str("__key"),
            Source::Key(field) => write!(f, "__key:{field}"),
            Source::Header(name) => write!(f, "__header${name}"),
            Source::Topic => f.write_str("__topic"),
            Source::Partition => f.write_str("__partition"),
            Source::Offset => f.write_str("__offset"),
            Source::Timestamp => f.write_str("__timestamp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptr(tokens: &[&str]) -> Source {
        Source::Value(Field::Pointer(
            tokens.iter().map(|s| s.to_string()).collect(),
        ))
    }

    #[test]
    fn json_pointers() {
        let j = FormatKind::Json;
        assert_eq!(Source::parse("/a/b/0", j).unwrap(), ptr(&["a", "b", "0"]));
        assert_eq!(
            Source::parse("/a~1b/c~0d", j).unwrap(),
            ptr(&["a/b", "c~d"])
        );
        assert_eq!(Source::parse("count", j).unwrap(), ptr(&["count"]));
        assert_eq!(Source::parse("", j).unwrap(), ptr(&[]));
        assert_eq!(Source::parse("/", j).unwrap(), ptr(&[""]));
        let e = Source::parse("/a~2", j).unwrap_err().to_string();
        assert!(e.contains("'~' must be followed by 0 or 1"), "{e}");
        assert_eq!(ptr(&["a/b", "c~d"]).to_string(), "/a~1b/c~0d");
    }

    #[test]
    fn csv_fields() {
        let c = FormatKind::Csv;
        assert_eq!(
            Source::parse("3", c).unwrap(),
            Source::Value(Field::CsvIndex(3))
        );
        assert_eq!(
            Source::parse("price", c).unwrap(),
            Source::Value(Field::CsvName("price".into()))
        );
        assert!(Source::parse("", c).is_err());
        assert!(Source::parse("99999999999999999999999", c).is_err());
    }

    #[test]
    fn avro_paths() {
        let a = FormatKind::Avro;
        assert_eq!(
            Source::parse("a.b", a).unwrap(),
            Source::Value(Field::AvroPath(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            Source::parse("", a).unwrap(),
            Source::Value(Field::AvroPath(vec![]))
        );
        assert!(Source::parse("a..b", a).is_err());
    }

    #[test]
    fn metadata_sources() {
        let j = FormatKind::Json;
        assert_eq!(
            Source::parse("__key", j).unwrap(),
            Source::Key(Field::Whole)
        );
        assert_eq!(
            Source::parse("__value", FormatKind::Raw).unwrap(),
            Source::Value(Field::Whole)
        );
        assert_eq!(
            Source::parse("__header$trace-id", j).unwrap(),
            Source::Header("trace-id".into())
        );
        assert_eq!(Source::parse("__topic", j).unwrap(), Source::Topic);
        assert_eq!(Source::parse("__partition", j).unwrap(), Source::Partition);
        assert_eq!(Source::parse("__offset", j).unwrap(), Source::Offset);
        assert_eq!(Source::parse("__timestamp", j).unwrap(), Source::Timestamp);
        assert_eq!(
            Source::parse("__metadata$recordTimestamp", j).unwrap(),
            Source::Timestamp
        );
        assert!(Source::parse("__header$", j).is_err());
        let e = Source::parse("__offest", j).unwrap_err().to_string();
        assert!(e.contains("unknown metadata source"), "{e}");
        assert!(Source::parse("x", FormatKind::Raw).is_err());
    }

    #[test]
    fn key_fields_need_a_key_format() {
        let e = Source::parse("__key:/id", FormatKind::Json)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a key format"), "{e}");
        let s =
            Source::parse_with_key("__key:/id", FormatKind::Csv, Some(FormatKind::Json)).unwrap();
        assert_eq!(s, Source::Key(Field::Pointer(vec!["id".into()])));
        assert_eq!(s.to_string(), "__key:/id");
        let s = Source::parse_with_key("__key:user.id", FormatKind::Json, Some(FormatKind::Avro))
            .unwrap();
        assert_eq!(
            s,
            Source::Key(Field::AvroPath(vec!["user".into(), "id".into()]))
        );
    }

    #[test]
    fn display_round_trips() {
        for (text, kind) in [
            ("/a/b", FormatKind::Json),
            ("2", FormatKind::Csv),
            ("x.y", FormatKind::Avro),
            ("__key", FormatKind::Json),
            ("__header$h", FormatKind::Avro),
            ("__timestamp", FormatKind::Csv),
        ] {
            let s = Source::parse(text, kind).unwrap();
            assert_eq!(s.to_string(), text);
        }
    }
}
