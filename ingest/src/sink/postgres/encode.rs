//! PostgreSQL's binary COPY format, written straight from Arrow arrays.
//!
//! A COPY stream is a header, one tuple per row (a 16-bit field count, then per field a 32-bit
//! length, -1 for NULL, and the value in the type's binary "send" form), and a trailer. Each
//! Arrow column is downcast once per batch into a [`Col`] holding borrowed slices of its
//! buffers; a row is then a loop of plain copies into one reused buffer, with no allocation
//! and no per-value dispatch through `ToSql` trait objects (which is what
//! `tokio_postgres::binary_copy` would cost per field).
//!
//! Value forms (PostgreSQL's `*send` functions): integers and floats big-endian; `date` as days
//! and `timestamp[tz]` as microseconds since 2000-01-01; `numeric` as base-10000 digit groups
//! with weight, sign and display scale; `jsonb` as a version byte (1) and JSON text; arrays as
//! dimensions, a has-nulls flag, the element type's OID, and the elements as fields.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, TimeUnit};
use bytes::{BufMut, BytesMut};

use super::types::{micros, oid, PgType, Target};

/// The COPY header: signature, flags (no OIDs), no header extension.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The COPY trailer: a field count of -1.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One column of a batch, downcast and ready to write.
pub(crate) struct Col<'a> {
    nulls: Option<&'a NullBuffer>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Bool(&'a BooleanBuffer),
    I8(&'a [i8]),
    U8(&'a [u8]),
    I16(&'a [i16]),
    U16(&'a [u16]),
    I32(&'a [i32]),
    U32(&'a [u32]),
    I64(&'a [i64]),
    U64(&'a [u64]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// UTF-8 text or bytes: offsets into one data buffer.
    Bytes {
        offsets: &'a [i32],
        data: &'a [u8],
    },
    Date(&'a [i32]),
    Timestamp(&'a [i64], TimeUnit),
    Decimal(&'a [i128], u8),
    Array {
        offsets: &'a [i32],
        item: Box<Col<'a>>,
        elem_oid: u32,
    },
    Json {
        array: &'a ArrayRef,
        jsonb: bool,
    },
}

/// Writes the rows of batches whose columns go to `targets`, in order.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    targets: Vec<Target>,
    ordinal: bool,
}

impl Encoder {
    /// An encoder for columns going to `targets`; with `ordinal`, every row gets one more
    /// field, its index in the batch as `bigint` (the upsert staging table orders by it).
    pub(crate) fn new(targets: Vec<Target>, ordinal: bool) -> Encoder {
        Encoder { targets, ordinal }
    }

    /// The batch's columns, downcast; an error names a column whose Arrow type does not match
    /// the one the encoder was made for.
    pub(crate) fn columns<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<Col<'a>>, String> {
        if batch.num_columns() != self.targets.len() {
            return Err(format!(
                "batch has {} columns, the table plan {}",
                batch.num_columns(),
                self.targets.len()
            ));
        }
        batch
            .columns()
            .iter()
            .zip(&self.targets)
            .enumerate()
            .map(|(i, (array, target))| {
                col(array, target).ok_or_else(|| {
                    format!(
                        "column {i} ({}) cannot be written as {}",
                        crate::schema::format_type(array.data_type()),
                        target.pg.sql()
                    )
                })
            })
            .collect()
    }

    /// Appends row `row` as one COPY tuple.
    #[inline]
    pub(crate) fn row(&self, cols: &[Col<'_>], row: usize, out: &mut BytesMut) {
        out.put_i16((cols.len() + usize::from(self.ordinal)) as i16);
        for c in cols {
            c.write(row, out);
        }
        if self.ordinal {
            out.put_i32(8);
            out.put_i64(row as i64);
        }
    }
}

fn col<'a>(array: &'a ArrayRef, target: &Target) -> Option<Col<'a>> {
    let kind = match (&target.pg, array.data_type()) {
        (PgType::Jsonb, _) => Kind::Json {
            array,
            jsonb: target.oid != oid::JSON,
        },
        (PgType::Array(item), DataType::List(_)) => {
            let list = array.as_list::<i32>();
            let item_target = Target {
                pg: (**item).clone(),
                oid: target.elem_oid,
                elem_oid: 0,
            };
            Kind::Array {
                offsets: list.value_offsets(),
                item: Box::new(col(list.values(), &item_target)?),
                elem_oid: target.elem_oid,
            }
        }
        (_, DataType::Boolean) => Kind::Bool(array.as_boolean().values()),
        (_, DataType::Int8) => Kind::I8(array.as_primitive::<Int8Type>().values()),
        (_, DataType::UInt8) => Kind::U8(array.as_primitive::<UInt8Type>().values()),
        (_, DataType::Int16) => Kind::I16(array.as_primitive::<Int16Type>().values()),
        (_, DataType::UInt16) => Kind::U16(array.as_primitive::<UInt16Type>().values()),
        (_, DataType::Int32) => Kind::I32(array.as_primitive::<Int32Type>().values()),
        (_, DataType::UInt32) => Kind::U32(array.as_primitive::<UInt32Type>().values()),
        (_, DataType::Int64) => Kind::I64(array.as_primitive::<Int64Type>().values()),
        (_, DataType::UInt64) => Kind::U64(array.as_primitive::<UInt64Type>().values()),
        (_, DataType::Float32) => Kind::F32(array.as_primitive::<Float32Type>().values()),
        (_, DataType::Float64) => Kind::F64(array.as_primitive::<Float64Type>().values()),
        (_, DataType::Utf8) => {
            let a = array.as_string::<i32>();
            Kind::Bytes {
                offsets: a.value_offsets(),
                data: a.values(),
            }
        }
        (_, DataType::Binary) => {
            let a = array.as_binary::<i32>();
            Kind::Bytes {
                offsets: a.value_offsets(),
                data: a.values(),
            }
        }
        (_, DataType::Date32) => Kind::Date(array.as_primitive::<Date32Type>().values()),
        (_, DataType::Timestamp(unit, _)) => Kind::Timestamp(
            match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
            },
            *unit,
        ),
        (_, DataType::Decimal128(_, s)) if *s >= 0 => {
            Kind::Decimal(array.as_primitive::<Decimal128Type>().values(), *s as u8)
        }
        _ => return None,
    };
    Some(Col {
        nulls: array.nulls(),
        kind,
    })
}

impl Col<'_> {
    /// Writes field `i` (length and value, or -1 for NULL).
    #[inline]
    fn write(&self, i: usize, out: &mut BytesMut) {
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            out.put_i32(-1);
            return;
        }
        match &self.kind {
            Kind::Bool(v) => {
                out.put_i32(1);
                out.put_u8(u8::from(v.value(i)));
            }
            Kind::I8(v) => {
                out.put_i32(2);
                out.put_i16(i16::from(v[i]));
            }
            Kind::U8(v) => {
                out.put_i32(2);
                out.put_i16(i16::from(v[i]));
            }
            Kind::I16(v) => {
                out.put_i32(2);
                out.put_i16(v[i]);
            }
            Kind::U16(v) => {
                out.put_i32(4);
                out.put_i32(i32::from(v[i]));
            }
            Kind::I32(v) => {
                out.put_i32(4);
                out.put_i32(v[i]);
            }
            Kind::U32(v) => {
                out.put_i32(8);
                out.put_i64(i64::from(v[i]));
            }
            Kind::I64(v) => {
                out.put_i32(8);
                out.put_i64(v[i]);
            }
            Kind::U64(v) => write_numeric(out, false, u128::from(v[i]), 0),
            Kind::F32(v) => {
                out.put_i32(4);
                out.put_f32(v[i]);
            }
            Kind::F64(v) => {
                out.put_i32(8);
                out.put_f64(v[i]);
            }
            Kind::Bytes { offsets, data } => {
                let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                out.put_i32((e - s) as i32);
                out.put_slice(&data[s..e]);
            }
            Kind::Date(v) => {
                out.put_i32(4);
                // Out of PostgreSQL's range: the server rejects the row (22008).
                out.put_i32(v[i].saturating_sub(PG_EPOCH_DAYS));
            }
            Kind::Timestamp(v, unit) => {
                out.put_i32(8);
                out.put_i64(pg_timestamp(v[i], *unit));
            }
            Kind::Decimal(v, scale) => write_numeric(out, v[i] < 0, v[i].unsigned_abs(), *scale),
            Kind::Array {
                offsets,
                item,
                elem_oid,
            } => {
                let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                let at = reserve_len(out);
                if s == e {
                    // An empty array has no dimensions.
                    out.put_i32(0);
                    out.put_i32(0);
                    out.put_u32(*elem_oid);
                } else {
                    let has_null = item.nulls.is_some_and(|n| (s..e).any(|j| n.is_null(j)));
                    out.put_i32(1);
                    out.put_i32(i32::from(has_null));
                    out.put_u32(*elem_oid);
                    out.put_i32((e - s) as i32);
                    out.put_i32(1);
                    for j in s..e {
                        item.write(j, out);
                    }
                }
                patch_len(out, at);
            }
            Kind::Json { array, jsonb } => {
                let at = reserve_len(out);
                if *jsonb {
                    out.put_u8(1);
                }
                super::json::write_value(array.as_ref(), i, out);
                patch_len(out, at);
            }
        }
    }
}

/// An Arrow timestamp as PostgreSQL's microseconds since 2000-01-01. A value beyond `i64`
/// microseconds becomes one PostgreSQL rejects as out of range (not its `infinity`, which is
/// `i64::MAX`/`MIN`), so the row goes through the error policy instead of being changed.
fn pg_timestamp(v: i64, unit: TimeUnit) -> i64 {
    micros(unit, v)
        .and_then(|us| us.checked_sub(PG_EPOCH_MICROS))
        .unwrap_or(if v < 0 { i64::MIN + 1 } else { i64::MAX - 1 })
}

fn reserve_len(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_i32(0);
    at
}

fn patch_len(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes `±mag × 10^-scale` as a `numeric` field: digit groups of base 10,000, most
/// significant first, with the weight (power of 10,000) of the first group.
pub(crate) fn write_numeric(out: &mut BytesMut, negative: bool, mag: u128, scale: u8) {
    // u128 holds 39 decimal digits: at most 10 integer groups and 10 fraction groups.
    let mut digits = [0i16; 24];
    let pow = 10u128.pow(u32::from(scale));
    let (mut int, mut frac) = (mag / pow, mag % pow);
    let frac_groups = usize::from(scale).div_ceil(4);
    let mut n_int = 0;
    let mut int_rev = [0i16; 12];
    while int > 0 {
        int_rev[n_int] = (int % 10_000) as i16;
        int /= 10_000;
        n_int += 1;
    }
    for k in 0..n_int {
        digits[k] = int_rev[n_int - 1 - k];
    }
    // The last fraction group holds the scale's remaining digits, padded on the right.
    let pad = (frac_groups * 4 - usize::from(scale)) as u32;
    for g in (0..frac_groups).rev() {
        let group = if g == frac_groups - 1 {
            let width = 10u128.pow(4 - pad);
            let v = (frac % width) * 10u128.pow(pad);
            frac /= width;
            v
        } else {
            let v = frac % 10_000;
            frac /= 10_000;
            v
        };
        digits[n_int + g] = group as i16;
    }
    let mut first = 0;
    let mut last = n_int + frac_groups;
    let mut weight = n_int as i16 - 1;
    while first < last && digits[first] == 0 {
        first += 1;
        weight -= 1;
    }
    while last > first && digits[last - 1] == 0 {
        last -= 1;
    }
    let n = last - first;
    if n == 0 {
        weight = 0;
    }
    out.put_i32(8 + 2 * n as i32);
    out.put_i16(n as i16);
    out.put_i16(weight);
    out.put_u16(if negative && n > 0 { 0x4000 } else { 0 });
    out.put_i16(i16::from(scale));
    for d in &digits[first..last] {
        out.put_i16(*d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(negative: bool, mag: u128, scale: u8) -> Vec<i16> {
        let mut out = BytesMut::new();
        write_numeric(&mut out, negative, mag, scale);
        let len = i32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        out[4..]
            .chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_groups() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric(false, 12345, 3), [2, 0, 0, 3, 12, 3450]);
        assert_eq!(numeric(true, 12345, 3), [2, 0, 0x4000, 3, 12, 3450]);
        assert_eq!(numeric(false, 0, 2), [0, 0, 0, 2]);
        assert_eq!(numeric(true, 0, 2), [0, 0, 0, 2]);
        assert_eq!(numeric(false, 1, 5), [1, -2, 0, 5, 1000]);
        assert_eq!(numeric(false, 100_000_000, 0), [1, 2, 0, 0, 1]);
        assert_eq!(numeric(false, u128::from(u64::MAX), 0).len(), 4 + 5);
        let max = 10u128.pow(38) - 1;
        let v = numeric(false, max, 38);
        assert_eq!(&v[..4], &[10, -1, 0, 38]);
        assert_eq!(v[4], 9999);
        assert_eq!(v[13], 9900);
    }

    #[test]
    fn timestamps_and_dates_use_the_2000_epoch() {
        assert_eq!(pg_timestamp(946_684_800_000, TimeUnit::Millisecond), 0);
        assert_eq!(pg_timestamp(0, TimeUnit::Second), -PG_EPOCH_MICROS);
        assert_eq!(pg_timestamp(i64::MAX, TimeUnit::Second), i64::MAX - 1);
        assert_eq!(pg_timestamp(i64::MIN, TimeUnit::Millisecond), i64::MIN + 1);
    }

    #[test]
    fn rows_are_field_counts_then_fields() {
        use arrow_array::{Int32Array, ListArray, StringArray};
        use std::sync::Arc;
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(7), None]),
            Some(vec![]),
            None,
        ]);
        let batch = RecordBatch::try_from_iter([
            (
                "a",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-1)])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(StringArray::from(vec!["é", "", "x"])) as ArrayRef,
            ),
            ("c", Arc::new(list) as ArrayRef),
        ])
        .unwrap();
        let enc = Encoder::new(
            vec![
                Target::mapped(PgType::Int4),
                Target::mapped(PgType::Text),
                Target::mapped(PgType::Array(Box::new(PgType::Int4))),
            ],
            true,
        );
        let cols = enc.columns(&batch).unwrap();
        let mut out = BytesMut::new();
        enc.row(&cols, 0, &mut out);
        let mut want: Vec<u8> = vec![0, 4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0xc3, 0xa9];
        // int4[] {7,NULL}: 1 dim, has nulls, int4, 2 elements from 1.
        want.extend([0, 0, 0, 32]);
        for w in [1i32, 1, 23, 2, 1, 4, 7, -1] {
            want.extend(w.to_be_bytes());
        }
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[..], &want[..]);
        out.clear();
        enc.row(&cols, 1, &mut out);
        assert_eq!(&out[2..6], &(-1i32).to_be_bytes());
        // Empty array: no dimensions.
        assert_eq!(&out[10..14], &12i32.to_be_bytes());
        assert_eq!(&out[14..18], &0i32.to_be_bytes());
        out.clear();
        enc.row(&cols, 2, &mut out);
        assert_eq!(&out[out.len() - 16..out.len() - 12], &(-1i32).to_be_bytes());
    }
}
