//! The partition transforms computed per row (the Iceberg spec's definitions): time parts
//! since 1970 in UTC, Murmur3 buckets, truncation; and the values they give, borrowed from
//! the batch's columns so a batch is grouped without an allocation per row.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::partition::{OwnedValue, PartField, Transform};

/// One row's partition value, borrowed from its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PValue<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Str(&'a str),
    Bin(&'a [u8]),
}

impl PValue<'_> {
    pub(crate) fn owned(self) -> OwnedValue {
        match self {
            PValue::Null => OwnedValue::Null,
            PValue::Bool(b) => OwnedValue::Bool(b),
            PValue::Int(v) => OwnedValue::Int(v),
            PValue::Long(v) => OwnedValue::Long(v),
            PValue::Str(s) => OwnedValue::Str(s.to_owned()),
            PValue::Bin(b) => OwnedValue::Bin(b.to_vec()),
        }
    }
}

const US_PER_HOUR: i64 = 3_600_000_000;
pub(crate) const US_PER_DAY: i64 = 24 * US_PER_HOUR;

/// Months since 1970-01 of a day number (proleptic Gregorian, UTC).
fn months_of_day(days: i64) -> i32 {
    let (y, m) = civil(days);
    ((y - 1970) * 12 + (m - 1)) as i32
}

/// Year and month (1-12) of a day number (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month)
}

/// Murmur3 x86 32-bit with seed 0, as Iceberg's bucket transform hashes.
pub(crate) fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

pub(crate) fn bucket_of(hash: u32, n: u32) -> i32 {
    ((hash & 0x7fff_ffff) % n) as i32
}

/// A decimal's unscaled value as Iceberg hashes it: minimal two's-complement big-endian.
pub(crate) fn decimal_bytes(v: i128) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (cur, next) = (b[start], b[start + 1]);
        if (cur == 0 && next & 0x80 == 0) || (cur == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b[start..].to_vec()
}

/// The first `w` characters of `s`.
fn truncate_str(s: &str, w: usize) -> &str {
    match s.char_indices().nth(w) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Each row's value of partition field `f`, from its source column of the file batch.
pub(crate) fn values<'a>(f: &PartField, col: &'a ArrayRef) -> Result<Vec<PValue<'a>>, String> {
    let bad = || {
        format!(
            "partition field {}: column type {} is not what the table says",
            f.name,
            col.data_type()
        )
    };
    let out: Vec<PValue<'a>> = match (f.transform, col.data_type()) {
        (Transform::Identity, DataType::Boolean) => col
            .as_boolean()
            .iter()
            .map(|v| v.map_or(PValue::Null, PValue::Bool))
            .collect(),
        (Transform::Identity, DataType::Int32) | (Transform::Identity, DataType::Date32) => {
            let a = if matches!(col.data_type(), DataType::Int32) {
                col.as_primitive::<Int32Type>().iter().collect::<Vec<_>>()
            } else {
                col.as_primitive::<Date32Type>().iter().collect::<Vec<_>>()
            };
            a.into_iter()
                .map(|v| v.map_or(PValue::Null, PValue::Int))
                .collect()
        }
        (Transform::Identity, DataType::Int64) => col
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map_or(PValue::Null, PValue::Long))
            .collect(),
        (Transform::Identity, DataType::Timestamp(..)) => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map_or(PValue::Null, PValue::Long))
            .collect(),
        (Transform::Identity, DataType::Utf8) => col
            .as_string::<i32>()
            .iter()
            .map(|v| v.map_or(PValue::Null, PValue::Str))
            .collect(),
        (Transform::Identity, DataType::Binary) => col
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map_or(PValue::Null, PValue::Bin))
            .collect(),
        (t @ (Transform::Year | Transform::Month | Transform::Day), DataType::Date32) => col
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map_or(PValue::Null, |d| PValue::Int(date_part(t, i64::from(d)))))
            .collect(),
        (
            t @ (Transform::Year | Transform::Month | Transform::Day | Transform::Hour),
            DataType::Timestamp(..),
        ) => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| {
                v.map_or(PValue::Null, |us| {
                    if t == Transform::Hour {
                        PValue::Int(us.div_euclid(US_PER_HOUR) as i32)
                    } else {
                        PValue::Int(date_part(t, us.div_euclid(US_PER_DAY)))
                    }
                })
            })
            .collect(),
        (Transform::Bucket(n), dt) => bucket_values(n, col, dt).ok_or_else(bad)?,
        (Transform::Truncate(w), DataType::Int32) => col
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| {
                v.map_or(PValue::Null, |v| {
                    let w = w as i64;
                    let v = i64::from(v);
                    PValue::Int((v - v.rem_euclid(w)) as i32)
                })
            })
            .collect(),
        (Transform::Truncate(w), DataType::Int64) => col
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| {
                v.map_or(PValue::Null, |v| {
                    let w = i64::from(w);
                    PValue::Long(v.wrapping_sub(v.rem_euclid(w)))
                })
            })
            .collect(),
        (Transform::Truncate(w), DataType::Utf8) => col
            .as_string::<i32>()
            .iter()
            .map(|v| v.map_or(PValue::Null, |s| PValue::Str(truncate_str(s, w as usize))))
            .collect(),
        _ => return Err(bad()),
    };
    Ok(out)
}

pub(crate) fn date_part(t: Transform, days: i64) -> i32 {
    match t {
        Transform::Year => (civil(days).0 - 1970) as i32,
        Transform::Month => months_of_day(days),
        _ => days as i32,
    }
}

fn bucket_values<'a>(n: u32, col: &'a ArrayRef, dt: &DataType) -> Option<Vec<PValue<'a>>> {
    let long = |v: i64| PValue::Int(bucket_of(murmur3_32(&v.to_le_bytes()), n));
    Some(match dt {
        DataType::Int32 => col
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map_or(PValue::Null, |v| long(v.into())))
            .collect(),
        DataType::Date32 => col
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map_or(PValue::Null, |v| long(v.into())))
            .collect(),
        DataType::Int64 => col
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map_or(PValue::Null, long))
            .collect(),
        DataType::Timestamp(..) => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map_or(PValue::Null, long))
            .collect(),
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|v| {
                v.map_or(PValue::Null, |s| {
                    PValue::Int(bucket_of(murmur3_32(s.as_bytes()), n))
                })
            })
            .collect(),
        DataType::Binary => col
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map_or(PValue::Null, |b| PValue::Int(bucket_of(murmur3_32(b), n))))
            .collect(),
        DataType::Decimal128(..) => col
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| {
                v.map_or(PValue::Null, |d| {
                    PValue::Int(bucket_of(murmur3_32(&decimal_bytes(d)), n))
                })
            })
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_partition_murmur3_matches_the_spec_examples() {
        // The Iceberg spec's appendix B: bucket hashes of sample values.
        let long = |v: i64| murmur3_32(&v.to_le_bytes()) as i32;
        assert_eq!(long(34), 2_017_239_379);
        assert_eq!(murmur3_32("iceberg".as_bytes()) as i32, 1_210_000_089);
        assert_eq!(murmur3_32(&decimal_bytes(1420)) as i32, -500_754_589);
        // 2017-11-16 as a date (17486 days) and 2017-11-16T22:31:08 as a timestamp.
        assert_eq!(long(17_486), -653_330_422);
        assert_eq!(long(1_510_871_468_000_000), -2_047_944_441);
        assert_eq!(
            murmur3_32(&[0, 1, 2, 3]) as i32,
            -188_683_207,
            "binary 00 01 02 03"
        );
        assert_eq!(decimal_bytes(1420), vec![0x05, 0x8c]);
        assert_eq!(decimal_bytes(-1), vec![0xff]);
        assert_eq!(decimal_bytes(128), vec![0x00, 0x80]);
    }

    #[test]
    fn iceberg_partition_time_parts_and_truncation() {
        // 2017-11-16 is day 17486: 47 years and 10 months after 1970-01.
        assert_eq!(date_part(Transform::Year, 17_486), 47);
        assert_eq!(date_part(Transform::Month, 17_486), 574);
        assert_eq!(date_part(Transform::Month, -1), -1);
        assert_eq!(truncate_str("iceberg", 3), "ice");
        assert_eq!(truncate_str("é", 3), "é");
    }
}
