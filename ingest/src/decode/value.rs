//! The values format decoders hand to column builders, and their text forms.
//!
//! A [`Val`] borrows from the record (or a decoder's scratch buffer): building one costs
//! nothing, and the builder converts it to the column's type. Printing (for string columns
//! and error messages) lives here too, so every format prints numbers and times alike.

use std::io::Write;

use arrow_schema::TimeUnit;

use super::convert::{format_date, format_timestamp, POW10};
use super::error::snippet;

/// One value on its way into a column, borrowed from the record (or the decoder's scratch).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// Null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A JSON number's text: a count for time columns, a number otherwise, verbatim for
    /// strings.
    Num(&'a [u8]),
    /// Text or bytes: parsed for typed columns, copied for string and binary ones.
    Text(&'a [u8]),
    /// An exact decimal: the unscaled integer and its scale.
    Decimal(i128, i8),
    /// A point in time: a count of units since the epoch.
    Time(i64, TimeUnit),
    /// Days since the epoch.
    Date(i32),
}

impl Val<'_> {
    pub(crate) fn describe(&self) -> String {
        match *self {
            Val::Null => "null".into(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Num(t) | Val::Text(t) => snippet(t),
            Val::Decimal(v, s) => {
                let mut out = Vec::new();
                write_decimal(v, s, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Val::Time(v, u) => {
                let mut out = Vec::new();
                format_timestamp(v, u, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Val::Date(d) => {
                let mut out = Vec::new();
                format_date(i64::from(d), &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
        }
    }
}

/// Appends a value's text to a string column: copied for text, printed for numbers, times
/// and booleans.
pub(crate) fn write_text(data: &mut Vec<u8>, v: Val<'_>) {
    match v {
        Val::Text(t) | Val::Num(t) => data.extend_from_slice(t),
        Val::Bool(b) => data.extend_from_slice(if b { b"true" } else { b"false" }),
        Val::Int(i) => {
            let _ = write!(data, "{i}");
        }
        Val::Float(f) => {
            let _ = write!(data, "{f}");
        }
        Val::Decimal(d, s) => write_decimal(d, s, data),
        Val::Time(t, u) => format_timestamp(t, u, data),
        Val::Date(d) => format_date(i64::from(d), data),
        Val::Null => {}
    }
}

/// Prints an unscaled decimal with its scale: `12345, 2` is `123.45`.
pub(crate) fn write_decimal(v: i128, scale: i8, out: &mut Vec<u8>) {
    if scale <= 0 {
        let _ = write!(out, "{v}");
        for _ in 0..(-i32::from(scale)) {
            out.push(b'0');
        }
        return;
    }
    let p = POW10[(scale as usize).min(38)];
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let _ = write!(
        out,
        "{sign}{}.{:0width$}",
        a / p as u128,
        a % p as u128,
        width = scale as usize
    );
}
