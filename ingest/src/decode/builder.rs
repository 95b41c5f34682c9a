//! Column builders: typed Arrow buffers that values are appended to straight from the record
//! bytes, and that can be truncated back to a row boundary.
//!
//! Arrow's own array builders cannot take back a value, and a record that fails half way must
//! leave no trace (row atomicity). So each column here keeps its values in a `Vec` of the
//! Arrow native type (and `i32` offsets plus one data `Vec` for strings, binaries and lists),
//! with Arrow's `NullBufferBuilder`/`BooleanBufferBuilder` for bits, all of which truncate.
//! `finish` hands the vectors to Arrow without copying (`ScalarBuffer::from(Vec)`) and
//! preallocates the next batch's vectors to the size this one reached, so a steady stream
//! allocates once per batch and column, never per record.
//!
//! Every value arrives as a [`Val`] and is converted to the column's type here, so the
//! conversion rules (what text a timestamp column accepts, how a decimal rounds) are the same
//! for JSON, CSV, Avro and metadata.

use std::io::Write;
use std::sync::Arc;

use arrow_array::types::*;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, ListArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, FieldRef, Fields, TimeUnit};

use super::convert::*;
use super::error::{snippet, DecodeErrorKind};
use super::value::write_text;
pub(crate) use super::value::Val;
use crate::schema::format_type;

/// Offsets and bytes of a string or binary column.
#[derive(Debug)]
struct Var {
    offsets: Vec<i32>,
    data: Vec<u8>,
}

impl Var {
    fn new(rows: usize, bytes: usize) -> Var {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Var {
            offsets,
            data: Vec::with_capacity(bytes),
        }
    }

    /// Closes the value written to `data` since the last offset.
    #[inline(always)]
    fn close(&mut self) -> Result<(), DecodeErrorKind> {
        match i32::try_from(self.data.len()) {
            Ok(end) => {
                self.offsets.push(end);
                Ok(())
            }
            Err(_) => {
                let last = *self.offsets.last().unwrap_or(&0) as usize;
                self.data.truncate(last);
                Err(DecodeErrorKind::BatchFull)
            }
        }
    }

    // Inlined: a call costs more than the work for the short strings of most events.
    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) -> Result<(), DecodeErrorKind> {
        self.data.extend_from_slice(bytes);
        self.close()
    }
}

#[derive(Debug)]
enum Kind {
    Bool(BooleanBufferBuilder),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Decimal {
        values: Vec<i128>,
        precision: u8,
        scale: i8,
    },
    Timestamp {
        values: Vec<i64>,
        unit: TimeUnit,
        naive: NaiveTz,
    },
    Date(Vec<i32>),
    Utf8(Var),
    Binary(Var),
    List {
        offsets: Vec<i32>,
        item: Box<ColumnBuilder>,
        field: FieldRef,
    },
    Struct {
        fields: Fields,
        children: Vec<ColumnBuilder>,
        len: usize,
    },
}

/// The shape of a column, which tells a format decoder how to walk a nested value into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Takes scalars.
    Scalar,
    /// String or binary: also takes a nested value's raw text.
    Text,
    /// A list: takes arrays.
    List,
    /// A struct: takes objects / records.
    Struct,
}

/// A column's typed buffers. See the module docs.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    data_type: DataType,
    nullable: bool,
    nulls: NullBufferBuilder,
    kind: Kind,
    /// Rows appended (what `nulls.len()` says, kept here because that call is not inlined
    /// across crates and is asked once per value).
    rows: usize,
    /// What [`Self::takes_i64`] answers, kept as a flag: it is asked for every JSON number.
    takes_i64: bool,
}

/// Whether a type can be built here. Checked when decoders are built.
pub(crate) fn supported(ty: &DataType) -> Result<(), String> {
    match ty {
        DataType::List(f) => supported(f.data_type()),
        DataType::Struct(fields) => fields.iter().try_for_each(|f| supported(f.data_type())),
        DataType::Decimal128(p, s) if (1..=38).contains(p) && *s >= 0 && *s as u8 <= *p => Ok(()),
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Utf8
        | DataType::Binary => Ok(()),
        other => Err(format!("type {other} is not supported by the decoders")),
    }
}

impl ColumnBuilder {
    /// A builder for `data_type` (which [`supported`] accepted), sized for `rows` rows.
    pub(crate) fn new(data_type: &DataType, nullable: bool, rows: usize) -> ColumnBuilder {
        macro_rules! v {
            () => {
                Vec::with_capacity(rows)
            };
        }
        let kind = match data_type {
            DataType::Boolean => Kind::Bool(BooleanBufferBuilder::new(rows)),
            DataType::Int8 => Kind::I8(v!()),
            DataType::Int16 => Kind::I16(v!()),
            DataType::Int32 => Kind::I32(v!()),
            DataType::Int64 => Kind::I64(v!()),
            DataType::UInt8 => Kind::U8(v!()),
            DataType::UInt16 => Kind::U16(v!()),
            DataType::UInt32 => Kind::U32(v!()),
            DataType::UInt64 => Kind::U64(v!()),
            DataType::Float32 => Kind::F32(v!()),
            DataType::Float64 => Kind::F64(v!()),
            DataType::Decimal128(p, s) => Kind::Decimal {
                values: v!(),
                precision: *p,
                scale: *s,
            },
            DataType::Timestamp(unit, tz) => Kind::Timestamp {
                values: v!(),
                unit: *unit,
                naive: NaiveTz::of(tz.as_deref()),
            },
            DataType::Date32 => Kind::Date(v!()),
            DataType::Binary => Kind::Binary(Var::new(rows, rows * 16)),
            DataType::List(f) => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Kind::List {
                    offsets,
                    item: Box::new(ColumnBuilder::new(f.data_type(), f.is_nullable(), rows)),
                    field: f.clone(),
                }
            }
            DataType::Struct(fields) => Kind::Struct {
                children: fields
                    .iter()
                    .map(|f| ColumnBuilder::new(f.data_type(), f.is_nullable(), rows))
                    .collect(),
                fields: fields.clone(),
                len: 0,
            },
            // Utf8, and anything `supported` refused (never built): strings.
            _ => Kind::Utf8(Var::new(rows, rows * 16)),
        };
        ColumnBuilder {
            data_type: data_type.clone(),
            nullable,
            nulls: NullBufferBuilder::new(rows),
            takes_i64: matches!(kind, Kind::I64(_) | Kind::Timestamp { .. }),
            kind,
            rows: 0,
        }
    }

    /// The column's type.
    pub(crate) fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// How the column takes nested values.
    pub(crate) fn shape(&self) -> Shape {
        match self.kind {
            Kind::Utf8(_) | Kind::Binary(_) => Shape::Text,
            Kind::List { .. } => Shape::List,
            Kind::Struct { .. } => Shape::Struct,
            _ => Shape::Scalar,
        }
    }

    /// Rows appended so far.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    fn expected(&self) -> String {
        format_type(&self.data_type)
    }

    fn convert_err(&self, v: &Val<'_>) -> DecodeErrorKind {
        DecodeErrorKind::Convert {
            expected: self.expected(),
            found: v.describe(),
        }
    }

    fn range_err(&self, v: &Val<'_>) -> DecodeErrorKind {
        DecodeErrorKind::OutOfRange {
            expected: self.expected(),
            found: v.describe(),
        }
    }

    fn num_err(&self, e: NumError, v: &Val<'_>) -> DecodeErrorKind {
        match e {
            NumError::Range => self.range_err(v),
            NumError::Syntax => self.convert_err(v),
            NumError::Inexact => DecodeErrorKind::Precision {
                expected: self.expected(),
                found: v.describe(),
                why: "it has digits the type cannot keep",
            },
        }
    }

    /// Appends a value, converting it to the column's type. On error nothing was appended.
    #[inline(always)]
    pub(crate) fn append(&mut self, v: Val<'_>) -> Result<(), DecodeErrorKind> {
        // Fast paths for what JSON and CSV events mostly hold; everything else (and every
        // failure, to build its error) goes through `append_value`.
        match (&mut self.kind, v) {
            // `is_ascii` first: inlined and word-at-a-time, where `from_utf8` is a call.
            (Kind::Utf8(var), Val::Text(t)) if t.is_ascii() || std::str::from_utf8(t).is_ok() => {
                var.push(t)?
            }
            (Kind::I64(values), Val::Num(t) | Val::Text(t)) => match parse_plain_i64(t) {
                Some(x) => values.push(x),
                None => self.append_value(v)?,
            },
            (Kind::Timestamp { values, .. }, Val::Num(t)) => match parse_plain_i64(t) {
                Some(x) => values.push(x),
                None => self.append_value(v)?,
            },
            (_, Val::Null) => return self.append_null(),
            _ => self.append_value(v)?,
        }
        self.nulls.append_non_null();
        self.rows += 1;
        Ok(())
    }

    /// Appends a JSON string the scanner found to be ASCII: a string column stores it without
    /// checking UTF-8 again; any other column converts it as [`Self::append`] does.
    #[inline(always)]
    pub(crate) fn append_ascii(&mut self, t: &[u8]) -> Result<(), DecodeErrorKind> {
        match &mut self.kind {
            Kind::Utf8(var) => var.push(t)?,
            _ => return self.append(Val::Text(t)),
        }
        self.nulls.append_non_null();
        self.rows += 1;
        Ok(())
    }

    /// Whether [`Self::push_i64`] applies: an `int64` or timestamp column, which take a JSON
    /// integer as it is.
    #[inline(always)]
    pub(crate) fn takes_i64(&self) -> bool {
        self.takes_i64
    }

    /// Appends an integer already parsed from a JSON number to a column [`Self::takes_i64`]
    /// accepted; the JSON decoder's fused scan-and-parse path.
    #[inline(always)]
    pub(crate) fn push_i64(&mut self, v: i64) {
        match &mut self.kind {
            Kind::I64(values) | Kind::Timestamp { values, .. } => values.push(v),
            _ => return,
        }
        self.nulls.append_non_null();
        self.rows += 1;
    }

    /// Appends a null, or refuses if the column is not nullable.
    pub(crate) fn append_null(&mut self) -> Result<(), DecodeErrorKind> {
        if !self.nullable {
            return Err(DecodeErrorKind::NotNullable);
        }
        self.push_null();
        Ok(())
    }

    /// Appends a null whatever the nullability: for the children of a null struct, whose
    /// slots the struct's own null masks.
    fn push_null(&mut self) {
        match &mut self.kind {
            Kind::Bool(b) => b.append(false),
            Kind::I8(v) => v.push(0),
            Kind::I16(v) => v.push(0),
            Kind::I32(v) | Kind::Date(v) => v.push(0),
            Kind::I64(v) => v.push(0),
            Kind::U8(v) => v.push(0),
            Kind::U16(v) => v.push(0),
            Kind::U32(v) => v.push(0),
            Kind::U64(v) => v.push(0),
            Kind::F32(v) => v.push(0.0),
            Kind::F64(v) => v.push(0.0),
            Kind::Decimal { values, .. } => values.push(0),
            Kind::Timestamp { values, .. } => values.push(0),
            Kind::Utf8(var) | Kind::Binary(var) => {
                let last = *var.offsets.last().unwrap_or(&0);
                var.offsets.push(last);
            }
            Kind::List { offsets, .. } => {
                let last = *offsets.last().unwrap_or(&0);
                offsets.push(last);
            }
            Kind::Struct { children, len, .. } => {
                children.iter_mut().for_each(ColumnBuilder::push_null);
                *len += 1;
            }
        }
        self.nulls.append_null();
        self.rows += 1;
    }

    /// Converts and appends a non-null value to the typed buffers (not the validity bits).
    fn append_value(&mut self, v: Val<'_>) -> Result<(), DecodeErrorKind> {
        macro_rules! int {
            ($vec:ident, $t:ty) => {{
                let x: i128 = match v {
                    Val::Int(i) => i128::from(i),
                    Val::Num(t) | Val::Text(t) => {
                        if <$t>::MIN == 0 && <$t>::MAX as u128 > i64::MAX as u128 {
                            parse_u64(t).map(i128::from)
                        } else {
                            parse_i64(t).map(i128::from)
                        }
                        .map_err(|e| self.num_err(e, &v))?
                    }
                    Val::Float(f) if f.fract() == 0.0 && f.abs() < 1.9e19 => f as i128,
                    Val::Decimal(d, s) => {
                        let p = POW10[s.clamp(0, 38) as usize];
                        if d % p != 0 {
                            return Err(self.num_err(NumError::Inexact, &v));
                        }
                        d / p
                    }
                    Val::Bool(b) => i128::from(b),
                    Val::Time(t, _) => i128::from(t),
                    Val::Date(d) => i128::from(d),
                    _ => return Err(self.convert_err(&v)),
                };
                let y = <$t>::try_from(x).map_err(|_| self.range_err(&v))?;
                let Kind::$vec(vec) = &mut self.kind else {
                    unreachable!()
                };
                vec.push(y);
                Ok(())
            }};
        }
        macro_rules! float {
            ($vec:ident, $t:ty) => {{
                let x: f64 = match v {
                    Val::Int(i) => i as f64,
                    Val::Float(f) => f,
                    Val::Num(t) | Val::Text(t) => parse_f64(t).map_err(|e| self.num_err(e, &v))?,
                    Val::Decimal(d, s) => d as f64 / 10f64.powi(i32::from(s)),
                    _ => return Err(self.convert_err(&v)),
                };
                let Kind::$vec(vec) = &mut self.kind else {
                    unreachable!()
                };
                vec.push(x as $t);
                Ok(())
            }};
        }
        match &self.kind {
            Kind::I8(_) => int!(I8, i8),
            Kind::I16(_) => int!(I16, i16),
            Kind::I32(_) => int!(I32, i32),
            Kind::I64(_) => int!(I64, i64),
            Kind::U8(_) => int!(U8, u8),
            Kind::U16(_) => int!(U16, u16),
            Kind::U32(_) => int!(U32, u32),
            Kind::U64(_) => int!(U64, u64),
            Kind::F32(_) => float!(F32, f32),
            Kind::F64(_) => float!(F64, f64),
            Kind::Bool(_) => {
                let b = match v {
                    Val::Bool(b) => b,
                    Val::Int(0) => false,
                    Val::Int(1) => true,
                    Val::Num(t) | Val::Text(t) => {
                        parse_bool(t).ok_or_else(|| self.convert_err(&v))?
                    }
                    _ => return Err(self.convert_err(&v)),
                };
                let Kind::Bool(bits) = &mut self.kind else {
                    unreachable!()
                };
                bits.append(b);
                Ok(())
            }
            &Kind::Decimal {
                precision, scale, ..
            } => {
                let x = self.to_decimal(v, scale)?;
                if x.unsigned_abs() >= POW10[precision as usize] as u128 {
                    return Err(DecodeErrorKind::Precision {
                        expected: self.expected(),
                        found: v.describe(),
                        why: "it has more digits than the precision",
                    });
                }
                let Kind::Decimal { values, .. } = &mut self.kind else {
                    unreachable!()
                };
                values.push(x);
                Ok(())
            }
            Kind::Timestamp { unit, naive, .. } => {
                let unit = *unit;
                let x = match v {
                    Val::Int(i) => Some(i),
                    Val::Num(t) => Some(parse_i64(t).map_err(|e| self.num_err(e, &v))?),
                    Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
                    Val::Text(t) => Some(parse_timestamp(t, unit, naive).map_err(|e| match e {
                        TimeError::Syntax => self.convert_err(&v),
                        TimeError::Range => self.range_err(&v),
                        TimeError::Naive => DecodeErrorKind::NaiveTime {
                            found: v.describe(),
                            tz: match naive {
                                NaiveTz::Named(n) => n.clone(),
                                NaiveTz::Fixed(_) => String::new(),
                            },
                        },
                    })?),
                    Val::Time(t, u) => convert_unit(t, u, unit),
                    Val::Date(d) => i64::from(d).checked_mul(86_400 * per_second(unit)),
                    _ => return Err(self.convert_err(&v)),
                };
                let x = x.ok_or_else(|| self.range_err(&v))?;
                let Kind::Timestamp { values, .. } = &mut self.kind else {
                    unreachable!()
                };
                values.push(x);
                Ok(())
            }
            Kind::Date(_) => {
                let days: i64 = match v {
                    Val::Int(i) => i,
                    Val::Num(t) => parse_i64(t).map_err(|e| self.num_err(e, &v))?,
                    Val::Text(t) => match parse_date(t) {
                        Some(d) => i64::from(d),
                        None => parse_timestamp(t, TimeUnit::Second, &NaiveTz::Fixed(0))
                            .map(|s| s.div_euclid(86_400))
                            .map_err(|_| self.convert_err(&v))?,
                    },
                    Val::Time(t, u) => t.div_euclid(86_400 * per_second(u)),
                    Val::Date(d) => i64::from(d),
                    _ => return Err(self.convert_err(&v)),
                };
                let d = i32::try_from(days).map_err(|_| self.range_err(&v))?;
                let Kind::Date(values) = &mut self.kind else {
                    unreachable!()
                };
                values.push(d);
                Ok(())
            }
            Kind::Utf8(_) => {
                if let Val::Text(t) = v {
                    if std::str::from_utf8(t).is_err() {
                        return Err(DecodeErrorKind::InvalidUtf8 { found: snippet(t) });
                    }
                }
                let Kind::Utf8(var) = &mut self.kind else {
                    unreachable!()
                };
                write_text(&mut var.data, v);
                var.close()
            }
            Kind::Binary(_) => match v {
                Val::Text(t) | Val::Num(t) => {
                    let Kind::Binary(var) = &mut self.kind else {
                        unreachable!()
                    };
                    var.push(t)
                }
                _ => Err(self.convert_err(&v)),
            },
            Kind::List { .. } | Kind::Struct { .. } => Err(DecodeErrorKind::Mismatch {
                expected: self.expected(),
                found: "a scalar",
            }),
        }
    }

    fn to_decimal(&self, v: Val<'_>, scale: i8) -> Result<i128, DecodeErrorKind> {
        match v {
            Val::Int(i) => i128::from(i)
                .checked_mul(POW10[scale as usize])
                .ok_or_else(|| self.range_err(&v)),
            Val::Num(t) | Val::Text(t) => {
                parse_decimal(t, scale, Rounding::HalfAwayFromZero).map_err(|e| self.num_err(e, &v))
            }
            Val::Float(f) if f.is_finite() => {
                // Through the float's shortest round-trip text, so 0.1 is 0.1, not
                // 0.1000000000000000055511151231257827.
                let mut buf = [0u8; 400];
                let mut w = &mut buf[..];
                let _ = write!(w, "{f}");
                let n = 400 - w.len();
                parse_decimal(&buf[..n], scale, Rounding::HalfAwayFromZero)
                    .map_err(|e| self.num_err(e, &v))
            }
            Val::Decimal(d, s) => {
                let text_scale = i32::from(scale) - i32::from(s);
                if text_scale >= 0 {
                    POW10
                        .get(text_scale as usize)
                        .and_then(|p| d.checked_mul(*p))
                        .ok_or_else(|| self.range_err(&v))
                } else {
                    let p = POW10[(-text_scale).min(38) as usize];
                    let (q, r) = (d / p, d % p);
                    Ok(if r.unsigned_abs() * 2 >= p as u128 {
                        q + d.signum()
                    } else {
                        q
                    })
                }
            }
            _ => Err(self.convert_err(&v)),
        }
    }

    /// For a list column: the item builder, to append the elements of one list to before
    /// [`Self::list_end`].
    pub(crate) fn list_item(&mut self) -> Option<&mut ColumnBuilder> {
        match &mut self.kind {
            Kind::List { item, .. } => Some(item),
            _ => None,
        }
    }

    /// Closes the list whose elements were appended to [`Self::list_item`].
    pub(crate) fn list_end(&mut self) -> Result<(), DecodeErrorKind> {
        let Kind::List { offsets, item, .. } = &mut self.kind else {
            return Err(DecodeErrorKind::Mismatch {
                expected: self.expected(),
                found: "an array",
            });
        };
        let end = i32::try_from(item.len()).map_err(|_| DecodeErrorKind::BatchFull)?;
        offsets.push(end);
        self.nulls.append_non_null();
        self.rows += 1;
        Ok(())
    }

    /// For a struct column: its fields and their builders, to append one value to each (or
    /// leave some short for [`Self::struct_end`] to fill with nulls).
    pub(crate) fn struct_children(&mut self) -> Option<(&Fields, &mut [ColumnBuilder])> {
        match &mut self.kind {
            Kind::Struct {
                fields, children, ..
            } => Some((fields, children)),
            _ => None,
        }
    }

    /// Closes a struct value: fields that got no value get a null (or an error naming the
    /// field, if it is not nullable).
    pub(crate) fn struct_end(&mut self) -> Result<(), DecodeErrorKind> {
        let row = self.len();
        let Kind::Struct {
            fields,
            children,
            len,
        } = &mut self.kind
        else {
            return Err(DecodeErrorKind::Mismatch {
                expected: format_type(&self.data_type),
                found: "an object",
            });
        };
        for (f, c) in fields.iter().zip(children.iter_mut()) {
            if c.len() == row {
                c.append_null()
                    .map_err(|e| e.within(format_args!(".{}", f.name())))?;
            }
        }
        *len += 1;
        self.nulls.append_non_null();
        self.rows += 1;
        Ok(())
    }

    /// Drops everything past the first `rows` rows (a failed record's partial values).
    pub(crate) fn truncate(&mut self, rows: usize) {
        // Not an early return when this column is no longer than `rows`: a nested column's
        // children (list items, struct fields) may hold values of a row it never closed.
        let rows = rows.min(self.len());
        self.rows = rows;
        self.nulls.truncate(rows);
        match &mut self.kind {
            Kind::Bool(b) => b.truncate(rows),
            Kind::I8(v) => v.truncate(rows),
            Kind::I16(v) => v.truncate(rows),
            Kind::I32(v) | Kind::Date(v) => v.truncate(rows),
            Kind::I64(v) => v.truncate(rows),
            Kind::U8(v) => v.truncate(rows),
            Kind::U16(v) => v.truncate(rows),
            Kind::U32(v) => v.truncate(rows),
            Kind::U64(v) => v.truncate(rows),
            Kind::F32(v) => v.truncate(rows),
            Kind::F64(v) => v.truncate(rows),
            Kind::Decimal { values, .. } => values.truncate(rows),
            Kind::Timestamp { values, .. } => values.truncate(rows),
            Kind::Utf8(var) | Kind::Binary(var) => {
                var.offsets.truncate(rows + 1);
                var.data.truncate(var.offsets[rows] as usize);
            }
            Kind::List { offsets, item, .. } => {
                offsets.truncate(rows + 1);
                item.truncate(offsets[rows] as usize);
            }
            Kind::Struct { children, len, .. } => {
                children.iter_mut().for_each(|c| c.truncate(rows));
                *len = rows;
            }
        }
    }

    /// Bytes held by the values so far (what the batch will weigh in memory).
    pub(crate) fn estimated_bytes(&self) -> usize {
        let rows = self.len();
        let bits = if self.nullable { rows.div_ceil(8) } else { 0 };
        bits + match &self.kind {
            Kind::Bool(_) => rows.div_ceil(8),
            Kind::I8(_) | Kind::U8(_) => rows,
            Kind::I16(_) | Kind::U16(_) => rows * 2,
            Kind::I32(_) | Kind::U32(_) | Kind::F32(_) | Kind::Date(_) => rows * 4,
            Kind::I64(_) | Kind::U64(_) | Kind::F64(_) | Kind::Timestamp { .. } => rows * 8,
            Kind::Decimal { .. } => rows * 16,
            Kind::Utf8(var) | Kind::Binary(var) => rows * 4 + var.data.len(),
            Kind::List { item, .. } => rows * 4 + item.estimated_bytes(),
            Kind::Struct { children, .. } => children.iter().map(Self::estimated_bytes).sum(),
        }
    }
}

#[path = "builder_finish.rs"]
mod finish;

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
