//! The CSV decoder: one Kafka message is one CSV row (as gpkafka and dgkafka read them).
//!
//! A byte-level splitter walks the row once. Unquoted fields and quoted fields without
//! doubled quotes are handed to the columns as slices of the message; a quoted field with
//! doubled quotes (`"say ""hi"""`) is unescaped into a reusable scratch buffer. Fields no
//! column reads are stepped over.
//!
//! Rules, as PostgreSQL's `COPY ... CSV` has them where they apply:
//! - The delimiter and quote bytes are configurable (`,` and `"` by default).
//! - One trailing line break (`\n` or `\r\n`) is ignored; any other line break outside quotes
//!   is an error, since it would mean two rows in one message. Inside quotes it is data.
//! - An unquoted field equal to the configured null string is null; a quoted one never is
//!   (`""` is the empty string, not null).
//! - An empty unquoted field is null for every column type except string and binary, where
//!   it is the empty string (unless the null string is empty too): an empty number or time
//!   cannot be anything else.
//! - A quote inside an unquoted field is data; after a closing quote only the delimiter or
//!   the end may follow.
//! - A row with fewer fields leaves the missing columns null; extra fields are ignored.

use super::builder::{ColumnBuilder, Shape, Val};
use super::error::{DecodeErrorKind, Fail};
use super::swar;

/// The position of the first byte at or after `i` equal to one of `set` (or `b.len()`), eight
/// bytes at a time: a field's bytes are stepped over by words, not compared one by one.
#[inline(always)]
fn find_any(b: &[u8], mut i: usize, set: [u8; 3]) -> usize {
    let Some(rest) = b.get(i..) else {
        return b.len();
    };
    for chunk in rest.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let hits = swar::equal(x, set[0]) | swar::equal(x, set[1]) | swar::equal(x, set[2]);
        if hits != 0 {
            return i + swar::first(hits);
        }
        i += 8;
    }
    while i < b.len() && !set.contains(&b[i]) {
        i += 1;
    }
    i
}

/// Decodes CSV rows into the columns whose sources are CSV field positions.
#[derive(Debug)]
pub(crate) struct CsvDecoder {
    delimiter: u8,
    quote: u8,
    null: Option<Box<[u8]>>,
    /// For each field position, the columns it fills.
    by_field: Vec<Vec<usize>>,
    scratch: Vec<u8>,
}

impl CsvDecoder {
    /// A decoder filling `targets`: (column index, 0-based field position).
    pub(crate) fn new(
        delimiter: u8,
        quote: u8,
        null: Option<&str>,
        targets: impl IntoIterator<Item = (usize, usize)>,
    ) -> CsvDecoder {
        let mut by_field: Vec<Vec<usize>> = Vec::new();
        for (column, field) in targets {
            if by_field.len() <= field {
                by_field.resize_with(field + 1, Vec::new);
            }
            by_field[field].push(column);
        }
        CsvDecoder {
            delimiter,
            quote,
            null: null.map(|n| n.as_bytes().into()),
            by_field,
            scratch: Vec::new(),
        }
    }

    /// Decodes one row. Columns whose fields are missing are left short for the caller.
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        cols: &mut [ColumnBuilder],
        _row: usize,
    ) -> Result<(), Fail> {
        let b = match buf {
            [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] => rest,
            _ => buf,
        };
        let (delim, quote) = (self.delimiter, self.quote);
        let syntax = |pos, message| (None, DecodeErrorKind::syntax("CSV", buf, pos, message));
        let mut pos = 0;
        let mut field = 0;
        loop {
            let wanted = self.by_field.get(field).is_some_and(|c| !c.is_empty());
            let (text, quoted): (&[u8], bool) = if b.get(pos) == Some(&quote) {
                let start = pos + 1;
                let mut i = start;
                let mut doubled = false;
                let end = loop {
                    let at = find_any(b, i, [quote; 3]);
                    if at >= b.len() {
                        return Err(syntax(pos, "unterminated quoted field"));
                    }
                    if b.get(at + 1) == Some(&quote) {
                        doubled = true;
                        i = at + 2;
                    } else {
                        break at;
                    }
                };
                pos = end + 1;
                if pos < b.len() && b[pos] != delim {
                    return Err(syntax(pos, "expected the delimiter after a closing quote"));
                }
                let raw = &b[start..end];
                if doubled && wanted {
                    self.scratch.clear();
                    let mut rest = raw;
                    while let Some(k) = rest.iter().position(|&c| c == quote) {
                        // `k + 1` is the second quote of a doubled pair.
                        self.scratch.extend_from_slice(&rest[..=k]);
                        rest = &rest[k + 2..];
                    }
                    self.scratch.extend_from_slice(rest);
                    (&self.scratch[..], true)
                } else {
                    (raw, true)
                }
            } else {
                let start = pos;
                pos = find_any(b, pos, [delim, b'\n', b'\r']);
                if pos < b.len() && b[pos] != delim {
                    return Err((None, DecodeErrorKind::ManyRows(pos)));
                }
                (&b[start..pos], false)
            };
            if wanted {
                for &col in &self.by_field[field] {
                    let c = &mut cols[col];
                    let is_null = !quoted
                        && ((text.is_empty() && c.shape() != Shape::Text)
                            || self.null.as_deref() == Some(text));
                    let v = if is_null { Val::Null } else { Val::Text(text) };
                    c.append(v).map_err(|e| (Some(col), e))?;
                }
            }
            field += 1;
            if pos >= b.len() {
                return Ok(());
            }
            pos += 1; // the delimiter
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{cast::AsArray, types::Int64Type, Array};
    use arrow_schema::DataType;

    #[test]
    fn word_search_agrees_with_a_byte_search_everywhere() {
        for len in 0..20usize {
            for at in 0..=len {
                for wanted in [b',', b'\n', b'\r'] {
                    let mut text = vec![b'a'; len];
                    if at < len {
                        text[at] = wanted;
                    }
                    for start in 0..=len + 1 {
                        let want = (start..len)
                            .find(|&k| matches!(text[k], b',' | b'\n' | b'\r'))
                            .unwrap_or(len);
                        assert_eq!(find_any(&text, start, [b',', b'\n', b'\r']), want);
                    }
                }
            }
        }
    }

    /// Splits `row` with all of its first `n` fields as nullable string columns.
    fn split(row: &str, n: usize, null: Option<&str>) -> Result<Vec<Option<String>>, String> {
        split_with(row, n, null, b',', b'"')
    }

    fn split_with(
        row: &str,
        n: usize,
        null: Option<&str>,
        delim: u8,
        quote: u8,
    ) -> Result<Vec<Option<String>>, String> {
        let mut d = CsvDecoder::new(delim, quote, null, (0..n).map(|i| (i, i)));
        let mut cols: Vec<_> = (0..n)
            .map(|_| ColumnBuilder::new(&DataType::Utf8, true, 4))
            .collect();
        d.decode(row.as_bytes(), &mut cols, 0)
            .map_err(|(_, e)| e.to_string())?;
        for c in &mut cols {
            if c.len() == 0 {
                c.append_null().unwrap();
            }
        }
        Ok(cols
            .iter_mut()
            .map(|c| {
                let a = c.finish();
                let a = a.as_string::<i32>();
                a.is_valid(0).then(|| a.value(0).to_string())
            })
            .collect())
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(split("a,b,c", 3, None).unwrap(), [s("a"), s("b"), s("c")]);
        assert_eq!(
            split("\"a,b\",\"say \"\"hi\"\"\",\"\"", 3, None).unwrap(),
            [s("a,b"), s("say \"hi\""), s("")]
        );
        assert_eq!(
            split("\"line\nbreak\",x\r\n", 2, None).unwrap(),
            [s("line\nbreak"), s("x")]
        );
        assert_eq!(split("\"\"\"\"", 1, None).unwrap(), [s("\"")]);
        assert_eq!(split("a\"b,c", 2, None).unwrap(), [s("a\"b"), s("c")]);
        assert_eq!(split("é,中文", 2, None).unwrap(), [s("é"), s("中文")]);
    }

    #[test]
    fn empty_trailing_and_missing_fields() {
        assert_eq!(split("a,,", 4, None).unwrap(), [s("a"), s(""), s(""), None]);
        assert_eq!(split("", 2, None).unwrap(), [s(""), None]);
        assert_eq!(split("a,b,c,d", 2, None).unwrap(), [s("a"), s("b")]);
    }

    #[test]
    fn null_strings() {
        assert_eq!(
            split("\\N,\"\\N\",x", 3, Some("\\N")).unwrap(),
            [None, s("\\N"), s("x")]
        );
        assert_eq!(split(",\"\"", 2, Some("")).unwrap(), [None, s("")]);
    }

    #[test]
    fn delimiter_and_quote_are_configurable() {
        assert_eq!(
            split_with("a|'b|c'|'it''s'", 3, None, b'|', b'\'').unwrap(),
            [s("a"), s("b|c"), s("it's")]
        );
        assert_eq!(
            split_with("1\t2", 2, None, b'\t', b'"').unwrap(),
            [s("1"), s("2")]
        );
    }

    #[test]
    fn malformed_rows() {
        let e = split("\"open,b", 2, None).unwrap_err();
        assert!(e.contains("unterminated quoted field"), "{e}");
        let e = split("\"a\"b,c", 2, None).unwrap_err();
        assert!(
            e.contains("expected the delimiter after a closing quote"),
            "{e}"
        );
        let e = split("a\nb", 2, None).unwrap_err();
        assert!(e.contains("must hold one row"), "{e}");
    }

    #[test]
    fn empty_unquoted_is_null_for_typed_columns() {
        let mut d = CsvDecoder::new(b',', b'"', None, [(0, 0), (1, 1)]);
        let mut cols = vec![
            ColumnBuilder::new(&DataType::Int64, true, 4),
            ColumnBuilder::new(&DataType::Int64, true, 4),
        ];
        d.decode(b",42", &mut cols, 0).unwrap();
        let a = cols[0].finish();
        assert!(a.is_null(0));
        let b = cols[1].finish();
        assert_eq!(b.as_primitive::<Int64Type>().value(0), 42);
    }
}
