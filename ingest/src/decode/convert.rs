//! Text and number conversions shared by every format: integers, exact decimals, booleans,
//! dates and timestamps from their text, time unit changes, and printing dates and times back
//! to text for string columns.
//!
//! Everything works on byte slices and returns plain values: no allocation, no `f64` round
//! trip for decimals (the digits are accumulated into an `i128` and rescaled exactly).

use arrow_schema::TimeUnit;

/// Largest exponent a decimal's text may carry; beyond it every value overflows or rounds to
/// zero anyway, and clamping keeps the arithmetic in range.
const MAX_EXPONENT: i32 = 100;

/// `10^n` for `n` in `0..=38`.
pub(crate) const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Why a number's text was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number.
    Syntax,
    /// Does not fit the type.
    Range,
    /// Has digits the target cannot keep (a fraction for an integer, or more than 38
    /// significant digits).
    Inexact,
}

/// How [`parse_decimal`] treats digits beyond the requested scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// They must be zeros.
    Exact,
    /// Round half away from zero (as PostgreSQL's numeric does).
    HalfAwayFromZero,
}

/// Parses an integer: plain digits with an optional sign on the fast path, and otherwise any
/// decimal text whose value is integral (`1.0`, `2e3`), as producers that only have doubles
/// write them.
#[inline]
pub(crate) fn parse_i64(text: &[u8]) -> Result<i64, NumError> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for &d in digits {
            v = v * 10 + i64::from(d - b'0');
        }
        return Ok(if neg { -v } else { v });
    }
    let v = parse_decimal(text, 0, Rounding::Exact)?;
    i64::try_from(v).map_err(|_| NumError::Range)
}

/// The fast path of [`parse_i64`]: optional `-`, then 1 to 18 digits; `None` for anything
/// else (which the full parser then reads or rejects).
#[inline(always)]
pub(crate) fn parse_plain_i64(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(if neg { -v } else { v })
}

/// Parses an unsigned integer (see [`parse_i64`]).
pub(crate) fn parse_u64(text: &[u8]) -> Result<u64, NumError> {
    let v = parse_decimal(text, 0, Rounding::Exact)?;
    u64::try_from(v).map_err(|_| NumError::Range)
}

/// Parses a floating-point number (`1.5`, `-2e-3`, `NaN`, `inf`).
pub(crate) fn parse_f64(text: &[u8]) -> Result<f64, NumError> {
    let s = std::str::from_utf8(text).map_err(|_| NumError::Syntax)?;
    // Rust accepts a leading '+', "infinity" and "nan" in any case: all fine for text columns.
    s.trim().parse().map_err(|_| NumError::Syntax)
}

/// Parses decimal text (`-12.345`, `1e-3`, `+7`) exactly into an integer scaled by
/// `10^scale`. Surrounding ASCII whitespace is ignored.
pub(crate) fn parse_decimal(text: &[u8], scale: i8, rounding: Rounding) -> Result<i128, NumError> {
    let text = text.trim_ascii();
    let mut i = 0;
    let neg = match text.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    // Up to 38 significant digits are kept in `mantissa`; `shift` is the power of ten it is
    // to be multiplied by. Digits past 38 must be zeros (integer part: they scale the value;
    // fraction: they are dropped).
    let mut mantissa: i128 = 0;
    let mut significant = 0u32;
    let mut shift: i32 = 0;
    let mut any_digit = false;
    let mut lost_nonzero = false;
    while let Some(&d) = text.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        any_digit = true;
        if significant < 38 {
            if mantissa != 0 || d != b'0' {
                mantissa = mantissa * 10 + i128::from(d - b'0');
                significant += u32::from(mantissa != 0);
            }
        } else {
            shift += 1;
            lost_nonzero |= d != b'0';
        }
        i += 1;
    }
    if text.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&d) = text.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            any_digit = true;
            if significant < 38 {
                mantissa = mantissa * 10 + i128::from(d - b'0');
                significant += u32::from(mantissa != 0);
                shift -= 1;
            } else {
                lost_nonzero |= d != b'0';
            }
            i += 1;
        }
    }
    if !any_digit {
        return Err(NumError::Syntax);
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        let eneg = match text.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i32 = 0;
        while let Some(&d) = text.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            e = (e * 10 + i32::from(d - b'0')).min(10 * MAX_EXPONENT);
            i += 1;
        }
        if i == start {
            return Err(NumError::Syntax);
        }
        shift += if eneg { -e } else { e };
    }
    if i != text.len() {
        return Err(NumError::Syntax);
    }
    if lost_nonzero {
        return Err(NumError::Inexact);
    }
    let shift = shift + i32::from(scale);
    let magnitude = if mantissa == 0 {
        0
    } else if shift >= 0 {
        let p = POW10.get(shift as usize).ok_or(NumError::Range)?;
        mantissa.checked_mul(*p).ok_or(NumError::Range)?
    } else {
        let k = (-shift) as usize;
        let (q, r, half) = match POW10.get(k) {
            Some(&p) => (mantissa / p, mantissa % p, p / 2),
            // mantissa < 10^38 <= 10^k / 10: rounds to zero either way.
            None => (0, mantissa, i128::MAX),
        };
        if r != 0 && rounding == Rounding::Exact {
            return Err(NumError::Inexact);
        }
        if r != 0 && r >= half {
            q + 1
        } else {
            q
        }
    };
    Ok(if neg { -magnitude } else { magnitude })
}

/// Parses a boolean: `true`/`false`, `t`/`f`, `yes`/`no`, `y`/`n`, `on`/`off`, `1`/`0`, in
/// any case.
pub(crate) fn parse_bool(text: &[u8]) -> Option<bool> {
    let t = text.trim_ascii();
    if t.len() > 5 {
        return None;
    }
    let mut buf = [0u8; 5];
    buf[..t.len()].copy_from_slice(t);
    buf.make_ascii_lowercase();
    match &buf[..t.len()] {
        b"true" | b"t" | b"yes" | b"y" | b"on" | b"1" => Some(true),
        b"false" | b"f" | b"no" | b"n" | b"off" | b"0" => Some(false),
        _ => None,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads `n` ASCII digits at `*i`.
fn digits(t: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let s = t.get(*i..*i + n)?;
    let mut v = 0u32;
    for &d in s {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(d - b'0');
    }
    *i += n;
    Some(v)
}

/// Reads `YYYY-MM-DD` at the start of `t`; returns the day number and the bytes used.
fn date_prefix(t: &[u8]) -> Option<(i64, usize)> {
    let mut i = 0;
    let y = digits(t, &mut i, 4)?;
    if t.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let m = digits(t, &mut i, 2)?;
    if t.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let d = digits(t, &mut i, 2)?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((days_from_civil(y, m, d), i))
}

/// Parses a `YYYY-MM-DD` date into days since the epoch.
pub(crate) fn parse_date(text: &[u8]) -> Option<i32> {
    let t = text.trim_ascii();
    match date_prefix(t) {
        Some((days, used)) if used == t.len() => i32::try_from(days).ok(),
        _ => None,
    }
}

/// How text without a UTC offset is placed in time, from the column's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NaiveTz {
    /// A fixed offset east of UTC, in seconds (0 for no zone or UTC).
    Fixed(i32),
    /// A region name (`Europe/Paris`): naive text is rejected.
    Named(String),
}

impl NaiveTz {
    /// The rule for a column time zone: none or `UTC`-like is UTC, `±HH:MM` is that offset.
    pub(crate) fn of(tz: Option<&str>) -> NaiveTz {
        let Some(tz) = tz else {
            return NaiveTz::Fixed(0);
        };
        if ["utc", "z", "etc/utc", "gmt", "etc/gmt"].contains(&tz.to_ascii_lowercase().as_str()) {
            return NaiveTz::Fixed(0);
        }
        match parse_offset(tz.as_bytes()) {
            Some((secs, used)) if used == tz.len() => NaiveTz::Fixed(secs),
            _ => NaiveTz::Named(tz.to_string()),
        }
    }
}

/// Reads `Z`, `±HH`, `±HHMM` or `±HH:MM`; returns seconds east of UTC and the bytes used.
fn parse_offset(t: &[u8]) -> Option<(i32, usize)> {
    match t.first()? {
        b'Z' | b'z' => Some((0, 1)),
        &s @ (b'+' | b'-') => {
            let mut i = 1;
            let h = digits(t, &mut i, 2)?;
            let mut m = 0;
            if i < t.len() {
                if t[i] == b':' {
                    i += 1;
                }
                m = digits(t, &mut i, 2)?;
            }
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some((if s == b'-' { -secs } else { secs }, i))
        }
        _ => None,
    }
}

/// Why timestamp text was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeError {
    /// Not a timestamp.
    Syntax,
    /// Outside the range of the unit's 64-bit count.
    Range,
    /// No offset in the text, and the column's zone is a region name.
    Naive,
}

/// Units per second.
pub(crate) fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Converts a count of `from` units to `to` units; coarser targets round toward negative
/// infinity, so an instant never moves later.
pub(crate) fn convert_unit(v: i64, from: TimeUnit, to: TimeUnit) -> Option<i64> {
    let (f, t) = (per_second(from), per_second(to));
    if t >= f {
        v.checked_mul(t / f)
    } else {
        Some(v.div_euclid(f / t))
    }
}

/// Parses a timestamp into `unit`s since the epoch: RFC 3339 / ISO 8601
/// (`2024-05-01T12:30:00.123456Z`, a space instead of `T`, optional seconds and fraction, an
/// optional `Z` or `±HH:MM` offset, or a date alone for midnight) or an integer count of
/// `unit`s (`1714566600123`).
pub(crate) fn parse_timestamp(text: &[u8], unit: TimeUnit, tz: &NaiveTz) -> Result<i64, TimeError> {
    let t = text.trim_ascii();
    if t.get(4) != Some(&b'-') {
        // Not `YYYY-`: an epoch count in the column's unit, or nothing.
        return parse_i64(t).map_err(|e| match e {
            NumError::Range => TimeError::Range,
            _ => TimeError::Syntax,
        });
    }
    let (days, mut i) = date_prefix(t).ok_or(TimeError::Syntax)?;
    let mut secs: i64 = days * 86_400;
    let mut frac: i64 = 0; // in nanoseconds
    if i < t.len() && matches!(t[i], b'T' | b't' | b' ') && i + 1 < t.len() {
        i += 1;
        let h = digits(t, &mut i, 2).ok_or(TimeError::Syntax)?;
        if t.get(i) != Some(&b':') {
            return Err(TimeError::Syntax);
        }
        i += 1;
        let m = digits(t, &mut i, 2).ok_or(TimeError::Syntax)?;
        let mut s = 0;
        if t.get(i) == Some(&b':') {
            i += 1;
            s = digits(t, &mut i, 2).ok_or(TimeError::Syntax)?;
            if matches!(t.get(i), Some(b'.' | b',')) {
                i += 1;
                let start = i;
                while i < t.len() && t[i].is_ascii_digit() {
                    if i - start < 9 {
                        frac = frac * 10 + i64::from(t[i] - b'0');
                    }
                    i += 1;
                }
                if i == start {
                    return Err(TimeError::Syntax);
                }
                for _ in (i - start)..9 {
                    frac *= 10;
                }
            }
        }
        // 60 is a leap second: it lands on the next minute's first second, as in most systems.
        if h > 23 || m > 59 || s > 60 {
            return Err(TimeError::Syntax);
        }
        secs += i64::from(h * 3600 + m * 60 + s);
    }
    let offset = if i == t.len() {
        match tz {
            NaiveTz::Fixed(o) => *o,
            NaiveTz::Named(_) => return Err(TimeError::Naive),
        }
    } else {
        let (o, used) = parse_offset(&t[i..]).ok_or(TimeError::Syntax)?;
        if i + used != t.len() {
            return Err(TimeError::Syntax);
        }
        o
    };
    secs -= i64::from(offset);
    let per = per_second(unit);
    let total =
        i128::from(secs) * i128::from(per) + i128::from(frac) / i128::from(1_000_000_000 / per);
    i64::try_from(total).map_err(|_| TimeError::Range)
}

/// Appends `YYYY-MM-DD` for a day number.
pub(crate) fn format_date(days: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Appends an RFC 3339 UTC timestamp for a count of `unit`s, with as many fraction digits as
/// the unit has.
pub(crate) fn format_timestamp(v: i64, unit: TimeUnit, out: &mut Vec<u8>) {
    use std::io::Write;
    let per = per_second(unit);
    let secs = v.div_euclid(per);
    let sub = v.rem_euclid(per);
    format_date(secs.div_euclid(86_400), out);
    let s = secs.rem_euclid(86_400);
    let _ = write!(out, "T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    match unit {
        TimeUnit::Second => {}
        TimeUnit::Millisecond => {
            let _ = write!(out, ".{sub:03}");
        }
        TimeUnit::Microsecond => {
            let _ = write!(out, ".{sub:06}");
        }
        TimeUnit::Nanosecond => {
            let _ = write!(out, ".{sub:09}");
        }
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"0"), Ok(0));
        assert_eq!(parse_i64(b"-42"), Ok(-42));
        assert_eq!(parse_i64(b"+7"), Ok(7));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(NumError::Range));
        assert_eq!(parse_i64(b"1.0"), Ok(1));
        assert_eq!(parse_i64(b"2e3"), Ok(2000));
        assert_eq!(parse_i64(b"1.5"), Err(NumError::Inexact));
        assert_eq!(parse_i64(b"abc"), Err(NumError::Syntax));
        assert_eq!(parse_i64(b""), Err(NumError::Syntax));
        assert_eq!(parse_i64(b"-"), Err(NumError::Syntax));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64(b"-1"), Err(NumError::Range));
    }

    #[test]
    fn decimals_are_exact() {
        let d = |t: &str, s| parse_decimal(t.as_bytes(), s, Rounding::HalfAwayFromZero);
        assert_eq!(d("123.45", 2), Ok(12345));
        assert_eq!(d("-0.1", 3), Ok(-100));
        assert_eq!(d("1e-2", 2), Ok(1));
        assert_eq!(d("1.005", 2), Ok(101)); // no binary float on the way: 1.005 is exact
        assert_eq!(d("-1.005", 2), Ok(-101));
        assert_eq!(d("1.004", 2), Ok(100));
        assert_eq!(d("0.000", 2), Ok(0));
        assert_eq!(d(" 7 ", 0), Ok(7));
        assert_eq!(
            d("12345678901234567890.123456789", 9),
            Ok(12345678901234567890123456789)
        );
        assert_eq!(
            d("99999999999999999999999999999999999999", 0),
            Ok(99999999999999999999999999999999999999)
        );
        assert_eq!(d("1e40", 0), Err(NumError::Range));
        assert_eq!(d("1e-200", 2), Ok(0));
        assert_eq!(d("1.", 0), Ok(1));
        assert_eq!(d(".5", 1), Ok(5));
        assert_eq!(d("1.2.3", 0), Err(NumError::Syntax));
        assert_eq!(d("1e", 0), Err(NumError::Syntax));
        // More than 38 significant digits: fine when the rest are zeros, refused otherwise.
        assert_eq!(d(&format!("1{}", "0".repeat(40)), 0), Err(NumError::Range));
        assert_eq!(d(&format!("1{}", "0".repeat(40)), -3), Ok(POW10[37]));
        assert_eq!(
            d(&format!("0.{}1", "1".repeat(40)), 2),
            Err(NumError::Inexact)
        );
        assert_eq!(
            parse_decimal(b"1.25", 1, Rounding::Exact),
            Err(NumError::Inexact)
        );
    }

    #[test]
    fn floats_and_bools() {
        assert_eq!(parse_f64(b"1.5e3"), Ok(1500.0));
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"x"), Err(NumError::Syntax));
        for t in ["true", "T", "Yes", "on", "1", " y "] {
            assert_eq!(parse_bool(t.as_bytes()), Some(true), "{t}");
        }
        for t in ["false", "F", "NO", "off", "0"] {
            assert_eq!(parse_bool(t.as_bytes()), Some(false), "{t}");
        }
        assert_eq!(parse_bool(b"maybe"), None);
        assert_eq!(parse_bool(b"truest"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date(b"1970-01-01"), Some(0));
        assert_eq!(parse_date(b"2024-02-29"), Some(19782));
        assert_eq!(parse_date(b"1969-12-31"), Some(-1));
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"2024-13-01"), None);
        assert_eq!(parse_date(b"2024-1-01"), None);
        for days in [-800_000, -1, 0, 59, 19782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn timestamps() {
        let utc = NaiveTz::Fixed(0);
        let ms = TimeUnit::Millisecond;
        let p = |t: &str, u, tz: &NaiveTz| parse_timestamp(t.as_bytes(), u, tz);
        assert_eq!(p("2022-02-11T13:34:45.807Z", ms, &utc), Ok(1644586485807));
        assert_eq!(p("2022-02-11 13:34:45.807", ms, &utc), Ok(1644586485807));
        assert_eq!(
            p("2022-02-11T14:34:45.807+01:00", ms, &utc),
            Ok(1644586485807)
        );
        assert_eq!(
            p("2022-02-11T08:04:45.807-0530", ms, &utc),
            Ok(1644586485807)
        );
        assert_eq!(
            p("2022-02-11T13:34Z", TimeUnit::Second, &utc),
            Ok(1644586440)
        );
        assert_eq!(p("2022-02-11", TimeUnit::Second, &utc), Ok(1644537600));
        assert_eq!(
            p("1970-01-01T00:00:00.123456789Z", TimeUnit::Nanosecond, &utc),
            Ok(123456789)
        );
        assert_eq!(
            p(
                "1970-01-01T00:00:00.1234567891Z",
                TimeUnit::Microsecond,
                &utc
            ),
            Ok(123456)
        );
        assert_eq!(p("1969-12-31T23:59:59.5Z", ms, &utc), Ok(-500));
        // Naive text takes the column's fixed offset, and a region name refuses it.
        assert_eq!(
            p(
                "1970-01-01T05:30:00",
                TimeUnit::Second,
                &NaiveTz::of(Some("+05:30"))
            ),
            Ok(0)
        );
        let paris = NaiveTz::of(Some("Europe/Paris"));
        assert_eq!(p("1970-01-01T00:00:00", ms, &paris), Err(TimeError::Naive));
        assert_eq!(p("1970-01-01T00:00:00Z", ms, &paris), Ok(0));
        // Epoch counts are in the column's unit.
        assert_eq!(p("1644586485807", ms, &utc), Ok(1644586485807));
        assert_eq!(p("-5", TimeUnit::Second, &utc), Ok(-5));
        assert_eq!(p("1644586485", TimeUnit::Second, &utc), Ok(1644586485));
        assert_eq!(
            p("9999-12-31T23:59:59Z", TimeUnit::Nanosecond, &utc),
            Err(TimeError::Range)
        );
        for bad in [
            "2022-02-11T25:00:00Z",
            "2022-02-11T13:34:45+",
            "2022-02-11X",
            "nope",
            "",
        ] {
            assert_eq!(p(bad, ms, &utc), Err(TimeError::Syntax), "{bad}");
        }
        assert_eq!(NaiveTz::of(Some("UTC")), NaiveTz::Fixed(0));
        assert_eq!(NaiveTz::of(Some("-08:00")), NaiveTz::Fixed(-28800));
    }

    #[test]
    fn units_and_printing() {
        use TimeUnit::*;
        assert_eq!(convert_unit(1500, Millisecond, Second), Some(1));
        assert_eq!(convert_unit(-1500, Millisecond, Second), Some(-2));
        assert_eq!(convert_unit(2, Millisecond, Nanosecond), Some(2_000_000));
        assert_eq!(convert_unit(i64::MAX, Second, Millisecond), None);
        let mut out = Vec::new();
        format_timestamp(1644586485807, Millisecond, &mut out);
        assert_eq!(out, b"2022-02-11T13:34:45.807Z");
        out.clear();
        format_timestamp(-1, Second, &mut out);
        assert_eq!(out, b"1969-12-31T23:59:59Z");
        out.clear();
        format_date(19782, &mut out);
        assert_eq!(out, b"2024-02-29");
    }
}
