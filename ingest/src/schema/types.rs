//! The column type syntax: `int64`, `timestamp(ms, UTC)`, `decimal(10, 2)`, `list<string>`,
//! `struct<a: int32, b: list<float64>>`, parsed into Arrow [`DataType`]s and printed back.
//!
//! The syntax is deliberately small: only the types the decoders can fill are accepted, so a
//! configuration that parses is one the decoders can run. Names are lower-case and a few
//! spellings users bring from other tools (`boolean`, `utf8`, `bytes`, `date32`) are accepted
//! as aliases; [`format_type`] always prints the canonical spelling.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use super::SchemaError;

/// The largest precision a `Decimal128` holds.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// Parses a column type such as `int64`, `timestamp(us, UTC)`, `decimal(12, 3)`,
/// `list<int32>` or `struct<a: string, b: list<float64>>`.
///
/// Nested fields (list items and struct fields) are nullable.
pub fn parse_type(text: &str) -> Result<DataType, SchemaError> {
    let mut p = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    let ty = p.parse()?;
    p.ws();
    if p.pos != text.len() {
        return Err(p.err("unexpected text after the type"));
    }
    Ok(ty)
}

/// Prints a type in the syntax [`parse_type`] reads (the canonical spelling), or the Arrow
/// debug form for a type the syntax has no word for.
pub fn format_type(ty: &DataType) -> String {
    let mut s = String::new();
    write_type(&mut s, ty);
    s
}

fn write_type(s: &mut String, ty: &DataType) {
    use std::fmt::Write;
    let word = match ty {
        DataType::Boolean => "bool",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "string",
        DataType::Binary => "binary",
        DataType::Date32 => "date",
        DataType::Timestamp(unit, tz) => {
            let _ = write!(s, "timestamp({}", unit_name(*unit));
            if let Some(tz) = tz {
                let _ = write!(s, ", {tz}");
            }
            s.push(')');
            return;
        }
        DataType::Decimal128(p, sc) => {
            let _ = write!(s, "decimal({p}, {sc})");
            return;
        }
        DataType::List(f) => {
            s.push_str("list<");
            write_type(s, f.data_type());
            s.push('>');
            return;
        }
        DataType::Struct(fields) => {
            s.push_str("struct<");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                if is_plain_name(f.name()) {
                    s.push_str(f.name());
                } else {
                    let _ = write!(s, "{:?}", f.name());
                }
                s.push_str(": ");
                write_type(s, f.data_type());
            }
            s.push('>');
            return;
        }
        other => {
            let _ = write!(s, "{other:?}");
            return;
        }
    };
    s.push_str(word);
}

/// The short name of a time unit as the syntax spells it.
pub fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-' | b'.'))
}

/// Recursive-descent parser over the type text. `depth` bounds nesting so a hostile
/// configuration cannot overflow the stack.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn err(&self, what: &str) -> SchemaError {
        SchemaError::BadType {
            text: self.text.to_string(),
            position: self.pos,
            message: what.to_string(),
        }
    }

    fn ws(&mut self) {
        while self.pos < self.text.len() && self.text.as_bytes()[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.text.as_bytes().get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), SchemaError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    /// A bare word: ASCII letters, digits, `_` and `$`. (Time zones have their own reader,
    /// [`Self::tz`], since `America/New_York` and `+05:30` are not words.)
    fn word(&mut self) -> &str {
        self.ws();
        let start = self.pos;
        let b = self.text.as_bytes();
        while self.pos < b.len()
            && (b[self.pos].is_ascii_alphanumeric() || matches!(b[self.pos], b'_' | b'$'))
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn number(&mut self) -> Result<i64, SchemaError> {
        self.ws();
        let start = self.pos;
        let b = self.text.as_bytes();
        if self.pos < b.len() && b[self.pos] == b'-' {
            self.pos += 1;
        }
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.text[start..self.pos]
            .parse()
            .map_err(|_| self.err("expected a number"))
    }

    fn parse(&mut self) -> Result<DataType, SchemaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("types nest too deeply"));
        }
        let start = self.pos;
        let word = self.word().to_ascii_lowercase();
        let ty = match word.as_str() {
            "bool" | "boolean" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "string" | "utf8" => DataType::Utf8,
            "binary" | "bytes" => DataType::Binary,
            "date" | "date32" => DataType::Date32,
            "timestamp" => {
                self.expect(b'(')?;
                let unit = match self.word() {
                    "s" => TimeUnit::Second,
                    "ms" => TimeUnit::Millisecond,
                    "us" => TimeUnit::Microsecond,
                    "ns" => TimeUnit::Nanosecond,
                    _ => return Err(self.err("expected a time unit: s, ms, us or ns")),
                };
                let tz = if self.eat(b',') {
                    Some(self.tz()?)
                } else {
                    None
                };
                self.expect(b')')?;
                DataType::Timestamp(unit, tz)
            }
            "decimal" => {
                self.expect(b'(')?;
                let p = self.number()?;
                self.expect(b',')?;
                let s = self.number()?;
                self.expect(b')')?;
                if !(1..=i64::from(MAX_DECIMAL_PRECISION)).contains(&p) {
                    return Err(self.err("decimal precision must be between 1 and 38"));
                }
                if s < 0 || s > p {
                    return Err(self.err("decimal scale must be between 0 and the precision"));
                }
                DataType::Decimal128(p as u8, s as i8)
            }
            "list" => {
                self.expect(b'<')?;
                let item = self.parse()?;
                self.expect(b'>')?;
                DataType::List(Arc::new(Field::new_list_field(item, true)))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields: Vec<Field> = Vec::new();
                if !self.eat(b'>') {
                    loop {
                        let name = self.field_name()?;
                        if fields.iter().any(|f| *f.name() == name) {
                            return Err(self.err(&format!("field {name:?} appears twice")));
                        }
                        self.expect(b':')?;
                        let ty = self.parse()?;
                        fields.push(Field::new(name, ty, true));
                        if self.eat(b'>') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                DataType::Struct(Fields::from(fields))
            }
            "" => return Err(self.err("expected a type")),
            _ => {
                self.pos = start;
                self.ws();
                return Err(self.err(&format!(
                    "unknown type {word:?} (known: bool, int8..int64, uint8..uint64, float32, \
                     float64, string, binary, date, timestamp(unit[, tz]), decimal(p, s), \
                     list<T>, struct<name: T, ...>)"
                )));
            }
        };
        self.depth -= 1;
        Ok(ty)
    }

    /// A struct field name: a bare word or a double-quoted string (with `\"` and `\\`).
    fn field_name(&mut self) -> Result<String, SchemaError> {
        self.ws();
        let b = self.text.as_bytes();
        if b.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            let mut name = String::new();
            let mut chars = self.text[self.pos..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += i + 1;
                        return Ok(name);
                    }
                    '\\' => match chars.next() {
                        Some((_, c)) => name.push(c),
                        None => break,
                    },
                    c => name.push(c),
                }
            }
            return Err(self.err("unterminated quoted field name"));
        }
        let start = self.pos;
        while self.pos < b.len()
            && (b[self.pos].is_ascii_alphanumeric() || matches!(b[self.pos], b'_' | b'$' | b'-'))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a field name"));
        }
        Ok(self.text[start..self.pos].to_string())
    }

    /// A time zone: anything up to the closing parenthesis, trimmed (`UTC`, `+05:30`,
    /// `Europe/Paris`). Whether the decoders can use it is checked when they are built.
    fn tz(&mut self) -> Result<Arc<str>, SchemaError> {
        self.ws();
        let rest = &self.text[self.pos..];
        let end = rest.find(')').unwrap_or(rest.len());
        let tz = rest[..end].trim();
        if tz.is_empty() {
            return Err(self.err("expected a time zone after ','"));
        }
        self.pos += end;
        Ok(tz.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(t: DataType) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(t, true)))
    }

    #[test]
    fn scalars_and_aliases() {
        for (text, ty) in [
            ("int8", DataType::Int8),
            ("int16", DataType::Int16),
            ("int32", DataType::Int32),
            (" INT64 ", DataType::Int64),
            ("uint8", DataType::UInt8),
            ("uint16", DataType::UInt16),
            ("uint32", DataType::UInt32),
            ("uint64", DataType::UInt64),
            ("float32", DataType::Float32),
            ("float64", DataType::Float64),
            ("bool", DataType::Boolean),
            ("boolean", DataType::Boolean),
            ("string", DataType::Utf8),
            ("utf8", DataType::Utf8),
            ("binary", DataType::Binary),
            ("bytes", DataType::Binary),
            ("date", DataType::Date32),
            ("date32", DataType::Date32),
        ] {
            assert_eq!(parse_type(text).unwrap(), ty, "{text}");
        }
    }

    #[test]
    fn timestamps_with_units_and_zones() {
        assert_eq!(
            parse_type("timestamp(ms)").unwrap(),
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            parse_type("timestamp( us , UTC )").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            parse_type("timestamp(ns, +05:30)").unwrap(),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+05:30".into()))
        );
        assert_eq!(
            parse_type("timestamp(s, America/New_York)").unwrap(),
            DataType::Timestamp(TimeUnit::Second, Some("America/New_York".into()))
        );
        assert!(parse_type("timestamp(minutes)").is_err());
        assert!(parse_type("timestamp(ms,)").is_err());
        assert!(parse_type("timestamp").is_err());
    }

    #[test]
    fn decimals_are_checked() {
        assert_eq!(
            parse_type("decimal(10, 2)").unwrap(),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(
            parse_type("decimal(38,38)").unwrap(),
            DataType::Decimal128(38, 38)
        );
        for bad in [
            "decimal(39, 2)",
            "decimal(0, 0)",
            "decimal(5, 6)",
            "decimal(5, -1)",
        ] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nested_lists_and_structs() {
        assert_eq!(parse_type("list<int32>").unwrap(), list(DataType::Int32));
        let s = parse_type("struct<a: int64, \"b c\": list<string>, d: struct<>>").unwrap();
        let DataType::Struct(fields) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name(), "a");
        assert_eq!(fields[1].name(), "b c");
        assert_eq!(fields[1].data_type(), &list(DataType::Utf8));
        assert_eq!(fields[2].data_type(), &DataType::Struct(Fields::empty()));
        assert!(parse_type("struct<a: int8, a: int16>").is_err());
        assert!(parse_type("list<int32").is_err());
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "bool",
            "uint16",
            "timestamp(ms)",
            "timestamp(us, UTC)",
            "decimal(12, 3)",
            "list<list<float64>>",
            "struct<a: int64, \"b c\": list<struct<x: date>>>",
        ] {
            let ty = parse_type(text).unwrap();
            assert_eq!(format_type(&ty), text);
            assert_eq!(parse_type(&format_type(&ty)).unwrap(), ty);
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse_type("list<intt>").unwrap_err().to_string();
        assert!(e.contains("unknown type \"intt\""), "{e}");
        assert!(e.contains("position 5"), "{e}");
        let e = parse_type("int32 x").unwrap_err().to_string();
        assert!(e.contains("unexpected text after the type"), "{e}");
        let deep = "list<".repeat(40) + "int8" + &">".repeat(40);
        assert!(parse_type(&deep)
            .unwrap_err()
            .to_string()
            .contains("too deeply"));
    }
}
