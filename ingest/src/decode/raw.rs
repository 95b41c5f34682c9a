//! The raw format: the value (or key) bytes as they are, into one column.
//!
//! A string column gets the bytes as text (refused if not UTF-8), a binary column gets them
//! unchanged, and a scalar column parses them as text: a topic whose messages are single
//! numbers (Memgraph's node ids) or timestamps loads into an `int64` or `timestamp` column
//! directly. With `utf8: true` the bytes must be UTF-8 whatever the column type, so a
//! producer sending garbage is caught even into a binary column.
//!
//! The same routine serves `__value` and `__key` sources in every format, and header
//! values.

use arrow_schema::DataType;

use super::builder::{ColumnBuilder, Val};
use super::error::{snippet, DecodeErrorKind};
use crate::schema::{ColumnSpec, Field, Source};

/// Appends whole bytes to a column (see the module docs).
#[inline]
pub(crate) fn append_whole(
    col: &mut ColumnBuilder,
    bytes: &[u8],
    utf8: bool,
) -> Result<(), DecodeErrorKind> {
    if utf8 && std::str::from_utf8(bytes).is_err() {
        return Err(DecodeErrorKind::InvalidUtf8 {
            found: snippet(bytes),
        });
    }
    col.append(Val::Text(bytes))
}

/// The columns of a raw topic when none are configured: `value`, a string when the format
/// says the bytes are UTF-8 and binary otherwise.
pub fn raw_columns(utf8: bool) -> Vec<ColumnSpec> {
    vec![ColumnSpec::new(
        "value",
        if utf8 {
            DataType::Utf8
        } else {
            DataType::Binary
        },
        Source::Value(Field::Whole),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;

    #[test]
    fn bytes_text_and_parsed_scalars() {
        let mut s = ColumnBuilder::new(&DataType::Utf8, true, 2);
        append_whole(&mut s, "héllo".as_bytes(), true).unwrap();
        let e = append_whole(&mut s, b"\xff", false).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        assert_eq!(s.finish().as_string::<i32>().value(0), "héllo");

        let mut b = ColumnBuilder::new(&DataType::Binary, true, 2);
        append_whole(&mut b, b"\x00\xff", false).unwrap();
        assert!(append_whole(&mut b, b"\xff", true).is_err());
        let a = b.finish();
        assert_eq!(a.len(), 1);
        assert_eq!(a.as_binary::<i32>().value(0), b"\x00\xff");

        let mut n = ColumnBuilder::new(&DataType::Int64, true, 2);
        append_whole(&mut n, b"12345", true).unwrap();
        assert!(append_whole(&mut n, b"12x", true).is_err());
        assert_eq!(n.finish().as_primitive::<Int64Type>().values(), &[12345]);
    }

    #[test]
    fn default_columns() {
        assert_eq!(raw_columns(true)[0].data_type, DataType::Utf8);
        assert_eq!(raw_columns(false)[0].data_type, DataType::Binary);
        assert_eq!(raw_columns(false)[0].source, Source::Value(Field::Whole));
    }
}
