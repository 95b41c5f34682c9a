//! JSON type inference over sample documents, with the decoder's own scanner (so inference
//! accepts exactly the JSON the decoder does). Not on the hot path: it builds a small type
//! tree per sample. [`crate::schema::infer_json_schema`] turns the merged tree into columns.

use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField, Fields};

use super::error::DecodeErrorKind;
use super::json_scan::Scanner;

/// Nesting followed when inferring; deeper values are kept as raw JSON text.
const MAX_INFER_DEPTH: usize = 32;

/// The inferred type of a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inferred {
    /// Only nulls seen.
    Null,
    /// Booleans.
    Bool,
    /// Integers that fit an `i64`.
    Int,
    /// Other numbers.
    Float,
    /// Strings.
    Str,
    /// Arrays of the merged item type.
    List(Box<Inferred>),
    /// Objects with these keys, in first-seen order.
    Struct(Vec<(String, Inferred)>),
    /// Disagreeing kinds: kept as text.
    Mixed,
}

impl Inferred {
    /// The type that holds values of both.
    fn merge(self, other: Inferred) -> Inferred {
        use Inferred::*;
        match (self, other) {
            (Null, x) | (x, Null) => x,
            (Int, Float) | (Float, Int) => Float,
            (List(a), List(b)) => List(Box::new(a.merge(*b))),
            (Struct(mut a), Struct(b)) => {
                Inferred::merge_fields(&mut a, b);
                Struct(a)
            }
            (a, b) if a == b => a,
            _ => Mixed,
        }
    }

    /// Merges `from`'s keys into `into`, keeping `into`'s order and appending new keys.
    pub(crate) fn merge_fields(into: &mut Vec<(String, Inferred)>, from: Vec<(String, Inferred)>) {
        for (name, t) in from {
            match into.iter_mut().find(|(n, _)| *n == name) {
                Some((_, old)) => *old = std::mem::replace(old, Inferred::Null).merge(t),
                None => into.push((name, t)),
            }
        }
    }

    /// The Arrow type for this inferred type.
    pub(crate) fn to_arrow(&self) -> DataType {
        match self {
            Inferred::Bool => DataType::Boolean,
            Inferred::Int => DataType::Int64,
            Inferred::Float => DataType::Float64,
            Inferred::Null | Inferred::Str | Inferred::Mixed => DataType::Utf8,
            Inferred::List(item) => {
                DataType::List(Arc::new(ArrowField::new_list_field(item.to_arrow(), true)))
            }
            Inferred::Struct(fields) => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|(n, t)| ArrowField::new(n, t.to_arrow(), true))
                    .collect::<Vec<_>>(),
            )),
        }
    }
}

/// Infers the type of one whole document.
pub(crate) fn scan_sample(buf: &[u8]) -> Result<Inferred, DecodeErrorKind> {
    let mut s = Scanner::new(buf);
    let mut scratch = Vec::new();
    let t = value(&mut s, &mut scratch, 0)?;
    if s.peek() != 0 {
        return Err(s.err("trailing characters after the document"));
    }
    Ok(t)
}

fn value(
    s: &mut Scanner<'_>,
    scratch: &mut Vec<u8>,
    depth: usize,
) -> Result<Inferred, DecodeErrorKind> {
    if depth > MAX_INFER_DEPTH {
        s.skip_value()?;
        return Ok(Inferred::Mixed);
    }
    Ok(match s.peek() {
        b'"' => {
            s.string(scratch)?;
            Inferred::Str
        }
        b'-' | b'0'..=b'9' => {
            let n = s.number()?;
            if n.iter().all(|&b| b.is_ascii_digit() || b == b'-')
                && super::convert::parse_i64(n).is_ok()
            {
                Inferred::Int
            } else {
                Inferred::Float
            }
        }
        b't' => {
            s.literal(b"true")?;
            Inferred::Bool
        }
        b'f' => {
            s.literal(b"false")?;
            Inferred::Bool
        }
        b'n' => {
            s.literal(b"null")?;
            Inferred::Null
        }
        b'[' => {
            s.pos += 1;
            let mut item = Inferred::Null;
            if s.peek() == b']' {
                s.pos += 1;
            } else {
                loop {
                    item = item.merge(value(s, scratch, depth + 1)?);
                    match s.peek() {
                        b',' => s.pos += 1,
                        b']' => {
                            s.pos += 1;
                            break;
                        }
                        _ => return Err(s.err("expected ',' or ']'")),
                    }
                }
            }
            Inferred::List(Box::new(item))
        }
        b'{' => {
            s.pos += 1;
            let mut fields = Vec::new();
            if s.peek() == b'}' {
                s.pos += 1;
            } else {
                loop {
                    if s.peek() != b'"' {
                        return Err(s.err("expected a string key"));
                    }
                    let key = s.string(scratch)?;
                    let key = String::from_utf8(key.to_vec())
                        .map_err(|_| s.err("key is not valid UTF-8"))?;
                    s.expect(b':', "expected ':'")?;
                    let t = value(s, scratch, depth + 1)?;
                    Inferred::merge_fields(&mut fields, vec![(key, t)]);
                    match s.peek() {
                        b',' => s.pos += 1,
                        b'}' => {
                            s.pos += 1;
                            break;
                        }
                        _ => return Err(s.err("expected ',' or '}'")),
                    }
                }
            }
            Inferred::Struct(fields)
        }
        _ => return Err(s.err("expected a value")),
    })
}
