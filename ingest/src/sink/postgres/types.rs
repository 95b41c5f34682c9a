//! How Arrow column types map to PostgreSQL types: the type `kingest setup` creates for each
//! column, and which existing column types the binary COPY encoder can write into.
//!
//! | Arrow (`[[columns]]` type) | PostgreSQL |
//! | --- | --- |
//! | `bool` | `boolean` |
//! | `int8`, `int16`, `uint8` | `smallint` |
//! | `int32`, `uint16` | `integer` |
//! | `int64`, `uint32` | `bigint` |
//! | `uint64` | `numeric(20,0)` |
//! | `float32`, `float64` | `real`, `double precision` |
//! | `string` | `text` (also writes into `varchar`, `char`) |
//! | `binary` | `bytea` |
//! | `date` | `date` |
//! | `timestamp(unit)` | `timestamp without time zone` (microseconds: `ns` is truncated) |
//! | `timestamp(unit, TZ)` | `timestamp with time zone` |
//! | `decimal(P, S)` | `numeric(P,S)` (also any other `numeric`) |
//! | `list<T>` of a scalar `T` | `T[]` (one dimension) |
//! | `struct<..>`, lists of lists or structs | `jsonb` (also `json`) |
//!
//! The binary COPY format has no implicit casts: a value must arrive in the exact binary form
//! of the column's type, so a table column is accepted only when its type has the encoding
//! the Arrow type produces (the text-like and numeric types share theirs).

use arrow_schema::{DataType, TimeUnit};

/// PostgreSQL type OIDs (`pg_type.oid`, fixed for built-in types).
pub(crate) mod oid {
    /// `boolean`.
    pub const BOOL: u32 = 16;
    /// `bytea`.
    pub const BYTEA: u32 = 17;
    /// `name`.
    pub const NAME: u32 = 19;
    /// `bigint`.
    pub const INT8: u32 = 20;
    /// `smallint`.
    pub const INT2: u32 = 21;
    /// `integer`.
    pub const INT4: u32 = 23;
    /// `text`.
    pub const TEXT: u32 = 25;
    /// `json`.
    pub const JSON: u32 = 114;
    /// `real`.
    pub const FLOAT4: u32 = 700;
    /// `double precision`.
    pub const FLOAT8: u32 = 701;
    /// `character`.
    pub const BPCHAR: u32 = 1042;
    /// `character varying`.
    pub const VARCHAR: u32 = 1043;
    /// `date`.
    pub const DATE: u32 = 1082;
    /// `timestamp without time zone`.
    pub const TIMESTAMP: u32 = 1114;
    /// `timestamp with time zone`.
    pub const TIMESTAMPTZ: u32 = 1184;
    /// `numeric`.
    pub const NUMERIC: u32 = 1700;
    /// `jsonb`.
    pub const JSONB: u32 = 3802;
}

/// A PostgreSQL type the sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `text`.
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `timestamp without time zone`.
    Timestamp,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `numeric(precision, scale)`.
    Numeric(u8, u8),
    /// `jsonb`.
    Jsonb,
    /// A one-dimensional array of a scalar type.
    Array(Box<PgType>),
}

impl PgType {
    /// The type for an Arrow column, or why there is none.
    pub(crate) fn for_arrow(ty: &DataType) -> Result<PgType, String> {
        Ok(match ty {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::UInt64 => PgType::Numeric(20, 0),
            DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Utf8 => PgType::Text,
            DataType::Binary => PgType::Bytea,
            DataType::Date32 => PgType::Date,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::Decimal128(p, s) if *s >= 0 => PgType::Numeric(*p, *s as u8),
            DataType::List(item) => match PgType::for_arrow(item.data_type())? {
                PgType::Array(_) | PgType::Jsonb => PgType::Jsonb,
                scalar => PgType::Array(Box::new(scalar)),
            },
            DataType::Struct(_) => PgType::Jsonb,
            other => {
                return Err(format!(
                    "{} has no PostgreSQL mapping",
                    crate::schema::format_type(other)
                ))
            }
        })
    }

    /// The type as `CREATE TABLE` takes it and `format_type()` prints it.
    pub(crate) fn sql(&self) -> String {
        match self {
            PgType::Bool => "boolean".into(),
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Text => "text".into(),
            PgType::Bytea => "bytea".into(),
            PgType::Date => "date".into(),
            PgType::Timestamp => "timestamp without time zone".into(),
            PgType::Timestamptz => "timestamp with time zone".into(),
            PgType::Numeric(p, s) => format!("numeric({p},{s})"),
            PgType::Jsonb => "jsonb".into(),
            PgType::Array(item) => format!("{}[]", item.sql()),
        }
    }

    /// The type's OID (for an array, the element's: see [`Target::elem_oid`]).
    pub(crate) fn oid(&self) -> u32 {
        match self {
            PgType::Bool => oid::BOOL,
            PgType::Int2 => oid::INT2,
            PgType::Int4 => oid::INT4,
            PgType::Int8 => oid::INT8,
            PgType::Float4 => oid::FLOAT4,
            PgType::Float8 => oid::FLOAT8,
            PgType::Text => oid::TEXT,
            PgType::Bytea => oid::BYTEA,
            PgType::Date => oid::DATE,
            PgType::Timestamp => oid::TIMESTAMP,
            PgType::Timestamptz => oid::TIMESTAMPTZ,
            PgType::Numeric(..) => oid::NUMERIC,
            PgType::Jsonb => oid::JSONB,
            PgType::Array(item) => item.oid(),
        }
    }

    /// Whether a scalar column of type `table_oid` takes this type's binary encoding.
    fn scalar_accepts(&self, table_oid: u32) -> bool {
        match self {
            PgType::Text => matches!(
                table_oid,
                oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME
            ),
            // The timestamp types share their encoding; a zone-less Arrow timestamp written
            // into `timestamptz` is taken as UTC, as PostgreSQL does on the wire.
            PgType::Timestamp | PgType::Timestamptz => {
                matches!(table_oid, oid::TIMESTAMP | oid::TIMESTAMPTZ)
            }
            PgType::Jsonb => matches!(table_oid, oid::JSON | oid::JSONB),
            other => other.oid() == table_oid,
        }
    }
}

/// Where one Arrow column goes: the table column's type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The PostgreSQL type the Arrow type maps to.
    pub pg: PgType,
    /// The table column's type OID (`json` and `jsonb` are written differently).
    pub oid: u32,
    /// For an array column, its element type's OID, which the array header must carry.
    pub elem_oid: u32,
}

impl Target {
    /// The target for a table created by `kingest setup` (the mapped type itself).
    #[cfg(test)]
    pub(crate) fn mapped(pg: PgType) -> Target {
        let (oid, elem_oid) = match &pg {
            PgType::Array(item) => (0, item.oid()),
            other => (other.oid(), 0),
        };
        Target { pg, oid, elem_oid }
    }

    /// The target for an existing column of type `table_oid` (element type `table_elem` for
    /// an array), or `None` when the Arrow type's encoding does not fit it.
    pub(crate) fn existing(pg: PgType, table_oid: u32, table_elem: u32) -> Option<Target> {
        let fits = match &pg {
            PgType::Array(item) => table_elem != 0 && item.scalar_accepts(table_elem),
            scalar => scalar.scalar_accepts(table_oid),
        };
        fits.then_some(Target {
            pg,
            oid: table_oid,
            elem_oid: table_elem,
        })
    }
}

/// Microseconds per Arrow time unit step, as a multiplier or (for nanoseconds) a divisor.
pub(crate) fn micros(unit: TimeUnit, v: i64) -> Option<i64> {
    match unit {
        TimeUnit::Second => v.checked_mul(1_000_000),
        TimeUnit::Millisecond => v.checked_mul(1_000),
        TimeUnit::Microsecond => Some(v),
        // PostgreSQL keeps microseconds: round towards the past, as a truncating clock would.
        TimeUnit::Nanosecond => Some(v.div_euclid(1_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_type;

    fn mapped(text: &str) -> String {
        PgType::for_arrow(&parse_type(text).unwrap()).unwrap().sql()
    }

    #[test]
    fn arrow_types_map_to_postgres_types() {
        for (arrow, pg) in [
            ("bool", "boolean"),
            ("int8", "smallint"),
            ("uint8", "smallint"),
            ("uint16", "integer"),
            ("int64", "bigint"),
            ("uint32", "bigint"),
            ("uint64", "numeric(20,0)"),
            ("float32", "real"),
            ("float64", "double precision"),
            ("string", "text"),
            ("binary", "bytea"),
            ("date", "date"),
            ("timestamp(ns)", "timestamp without time zone"),
            ("timestamp(ms, UTC)", "timestamp with time zone"),
            ("decimal(12, 3)", "numeric(12,3)"),
            ("list<int32>", "integer[]"),
            ("list<decimal(5, 1)>", "numeric(5,1)[]"),
            ("list<list<int32>>", "jsonb"),
            ("list<struct<a: int32>>", "jsonb"),
            ("struct<a: int32, b: list<string>>", "jsonb"),
        ] {
            assert_eq!(mapped(arrow), pg, "{arrow}");
        }
    }

    #[test]
    fn existing_columns_are_accepted_only_with_the_same_encoding() {
        let text = PgType::Text;
        assert!(Target::existing(text.clone(), oid::VARCHAR, 0).is_some());
        assert!(Target::existing(text, oid::INT4, 0).is_none());
        assert!(Target::existing(PgType::Int8, oid::INT4, 0).is_none());
        assert!(Target::existing(PgType::Numeric(20, 0), oid::NUMERIC, 0).is_some());
        assert!(Target::existing(PgType::Timestamp, oid::TIMESTAMPTZ, 0).is_some());
        let arr = PgType::Array(Box::new(PgType::Text));
        let t = Target::existing(arr.clone(), 1015, oid::VARCHAR).unwrap();
        assert_eq!(t.elem_oid, oid::VARCHAR);
        assert!(Target::existing(arr, oid::TEXT, 0).is_none());
        assert_eq!(Target::mapped(PgType::Jsonb).oid, oid::JSONB);
    }

    #[test]
    fn time_units_become_microseconds() {
        assert_eq!(micros(TimeUnit::Second, 2), Some(2_000_000));
        assert_eq!(micros(TimeUnit::Millisecond, -3), Some(-3_000));
        assert_eq!(micros(TimeUnit::Nanosecond, -1), Some(-1));
        assert_eq!(micros(TimeUnit::Nanosecond, 1_999), Some(1));
        assert_eq!(micros(TimeUnit::Second, i64::MAX), None);
    }
}
