//! JSON text of nested Arrow values (structs, lists of lists or structs), for `jsonb` and
//! `json` columns, written into the COPY buffer without intermediate strings.
//!
//! Forms: numbers as JSON numbers (decimals exactly, with their scale; non-finite floats as
//! `null`, which JSON cannot spell otherwise), binary as a lowercase hex string, dates as
//! `YYYY-MM-DD`, timestamps as ISO 8601 with microseconds (`Z` when the type has a zone,
//! since Arrow stores UTC instants).

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};
use bytes::{BufMut, BytesMut};

use super::types::micros;

/// Writes value `i` of `array` as JSON.
pub(crate) fn write_value(array: &dyn Array, i: usize, out: &mut BytesMut) {
    if array.is_null(i) {
        out.put_slice(b"null");
        return;
    }
    // `fmt::Write` on `BytesMut` cannot fail.
    macro_rules! num {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(i));
        }};
    }
    match array.data_type() {
        DataType::Boolean => out.put_slice(if array.as_boolean().value(i) {
            b"true"
        } else {
            b"false"
        }),
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i)), out),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i), out),
        DataType::Utf8 => string(array.as_string::<i32>().value(i), out),
        DataType::Binary => {
            out.put_u8(b'"');
            for b in array.as_binary::<i32>().value(i) {
                let _ = write!(out, "{b:02x}");
            }
            out.put_u8(b'"');
        }
        DataType::Date32 => {
            out.put_u8(b'"');
            date(i64::from(array.as_primitive::<Date32Type>().value(i)), out);
            out.put_u8(b'"');
        }
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i),
            };
            match micros(*unit, v) {
                Some(us) => {
                    out.put_u8(b'"');
                    let (days, in_day) =
                        (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
                    date(days, out);
                    let secs = in_day / 1_000_000;
                    let _ = write!(
                        out,
                        "T{:02}:{:02}:{:02}.{:06}",
                        secs / 3600,
                        secs / 60 % 60,
                        secs % 60,
                        in_day % 1_000_000
                    );
                    if tz.is_some() {
                        out.put_u8(b'Z');
                    }
                    out.put_u8(b'"');
                }
                None => out.put_slice(b"null"),
            }
        }
        DataType::Decimal128(_, scale) => {
            decimal(array.as_primitive::<Decimal128Type>().value(i), *scale, out)
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let offsets = list.value_offsets();
            let values = list.values();
            out.put_u8(b'[');
            for (k, j) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
                if k > 0 {
                    out.put_u8(b',');
                }
                write_value(values.as_ref(), j, out);
            }
            out.put_u8(b']');
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.put_u8(b'{');
            for (k, (field, column)) in fields.iter().zip(s.columns()).enumerate() {
                if k > 0 {
                    out.put_u8(b',');
                }
                string(field.name(), out);
                out.put_u8(b':');
                write_value(column.as_ref(), i, out);
            }
            out.put_u8(b'}');
        }
        // The column types the schema accepts are all above; anything else has no JSON form.
        _ => out.put_slice(b"null"),
    }
}

fn float(v: f64, out: &mut BytesMut) {
    if v.is_finite() {
        // Debug prints the shortest round-trip form, with an exponent for large and small
        // magnitudes (`1e300`), which JSON reads.
        let _ = write!(out, "{v:?}");
    } else {
        out.put_slice(b"null");
    }
}

/// A decimal's exact text: `-12.340` for -12340 at scale 3.
fn decimal(v: i128, scale: i8, out: &mut BytesMut) {
    let mag = v.unsigned_abs();
    if v < 0 {
        out.put_u8(b'-');
    }
    if scale <= 0 {
        let _ = write!(out, "{mag}");
        for _ in 0..scale.unsigned_abs() {
            out.put_u8(b'0');
        }
        return;
    }
    let pow = 10u128.pow(u32::from(scale.unsigned_abs()));
    let _ = write!(
        out,
        "{}.{:0width$}",
        mag / pow,
        mag % pow,
        width = scale as usize
    );
}

/// A JSON string with the escapes RFC 8259 requires.
fn string(s: &str, out: &mut BytesMut) {
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (k, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.put_slice(&bytes[start..k]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.put_slice(esc);
        }
        start = k + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

/// `YYYY-MM-DD` of days since 1970-01-01 (Howard Hinnant's civil-from-days).
fn date(days: i64, out: &mut BytesMut) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, ListBuilder, StringBuilder, StructBuilder};
    use arrow_array::{ArrayRef, Decimal128Array, StructArray, TimestampMillisecondArray};
    use arrow_schema::{Field, Fields};

    use super::*;

    fn json(array: &dyn Array, i: usize) -> String {
        let mut out = BytesMut::new();
        write_value(array, i, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn scalars() {
        let d = Decimal128Array::from(vec![-12340, 5, 0])
            .with_precision_and_scale(10, 3)
            .unwrap();
        assert_eq!(json(&d, 0), "-12.340");
        assert_eq!(json(&d, 1), "0.005");
        let t = TimestampMillisecondArray::from(vec![1_704_164_645_123, -1]).with_timezone("UTC");
        assert_eq!(json(&t, 0), "\"2024-01-02T03:04:05.123000Z\"");
        assert_eq!(json(&t, 1), "\"1969-12-31T23:59:59.999000Z\"");
        let s = arrow_array::StringArray::from(vec!["a\"b\\\n\u{1}é"]);
        assert_eq!(json(&s, 0), r#""a\"b\\\n\u0001é""#);
        let f = arrow_array::Float64Array::from(vec![1e300, f64::NAN, 0.1]);
        assert_eq!(json(&f, 0), "1e300");
        assert_eq!(json(&f, 1), "null");
        assert_eq!(json(&f, 2), "0.1");
    }

    #[test]
    fn nested() {
        let fields = Fields::from(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
        ]);
        let mut b = StructBuilder::new(
            fields.clone(),
            vec![
                Box::new(Int32Builder::new()),
                Box::new(ListBuilder::new(StringBuilder::new())),
            ],
        );
        b.field_builder::<Int32Builder>(0).unwrap().append_value(3);
        let l = b.field_builder::<ListBuilder<StringBuilder>>(1).unwrap();
        l.values().append_value("x");
        l.values().append_null();
        l.append(true);
        b.append(true);
        b.field_builder::<Int32Builder>(0).unwrap().append_null();
        b.field_builder::<ListBuilder<StringBuilder>>(1)
            .unwrap()
            .append(false);
        b.append(true);
        let s: StructArray = b.finish();
        let a: ArrayRef = Arc::new(s);
        assert_eq!(json(a.as_ref(), 0), r#"{"n":3,"tags":["x",null]}"#);
        assert_eq!(json(a.as_ref(), 1), r#"{"n":null,"tags":null}"#);
    }
}
