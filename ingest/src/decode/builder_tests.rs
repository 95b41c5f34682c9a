//! Conversion tests: every kind of value into every column type.

use super::*;
use crate::schema::parse_type;
use arrow_array::cast::AsArray;
use arrow_array::Array;

/// Appends `v` to a fresh nullable column of `ty` and returns the one-row array.
fn one(ty: &str, v: Val<'_>) -> Result<ArrayRef, String> {
    let mut b = ColumnBuilder::new(&parse_type(ty).unwrap(), true, 1);
    b.append(v).map_err(|e| e.to_string())?;
    assert_eq!(b.len(), 1);
    Ok(b.finish())
}

fn int(ty: &str, v: Val<'_>) -> Result<i128, String> {
    let a = one(ty, v)?;
    Ok(match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(0).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(0).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(0).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(0).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(0).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(0).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(0).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(0).into(),
        DataType::Decimal128(..) => a.as_primitive::<Decimal128Type>().value(0),
        DataType::Date32 => a.as_primitive::<Date32Type>().value(0).into(),
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().value(0).into()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(0).into()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            a.as_primitive::<TimestampMicrosecondType>().value(0).into()
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            a.as_primitive::<TimestampNanosecondType>().value(0).into()
        }
        other => panic!("not an integer column: {other}"),
    })
}

fn text(ty: &str, v: Val<'_>) -> Result<String, String> {
    let a = one(ty, v)?;
    Ok(a.as_string::<i32>().value(0).to_string())
}

#[test]
fn integers_from_every_kind_of_value() {
    assert_eq!(int("int8", Val::Int(-128)), Ok(-128));
    assert!(int("int8", Val::Int(128))
        .unwrap_err()
        .contains("out of range for int8"));
    assert_eq!(int("int16", Val::Num(b"-32768")), Ok(-32768));
    assert_eq!(int("int32", Val::Text(b" 42 ")), Ok(42));
    assert_eq!(int("int64", Val::Num(b"1e3")), Ok(1000));
    assert_eq!(int("int64", Val::Float(7.0)), Ok(7));
    assert_eq!(int("int64", Val::Decimal(1200, 2)), Ok(12));
    assert_eq!(int("int64", Val::Bool(true)), Ok(1));
    assert_eq!(int("uint8", Val::Num(b"255")), Ok(255));
    assert!(int("uint8", Val::Num(b"-1")).is_err());
    assert_eq!(int("uint16", Val::Int(65535)), Ok(65535));
    assert_eq!(int("uint32", Val::Text(b"4294967295")), Ok(4294967295));
    assert_eq!(
        int("uint64", Val::Num(b"18446744073709551615")),
        Ok(18446744073709551615)
    );
    let e = int("int64", Val::Num(b"1.5")).unwrap_err();
    assert!(e.contains("digits the type cannot keep"), "{e}");
    let e = int("int32", Val::Text(b"twelve")).unwrap_err();
    assert_eq!(e, "cannot read \"twelve\" as int32");
    assert!(int("int64", Val::Float(0.5)).is_err());
}

#[test]
fn floats_and_bools() {
    let f = |ty, v| -> f64 {
        let a = one(ty, v).unwrap();
        match a.data_type() {
            DataType::Float32 => a.as_primitive::<Float32Type>().value(0).into(),
            _ => a.as_primitive::<Float64Type>().value(0),
        }
    };
    assert_eq!(f("float64", Val::Num(b"-2.5e-3")), -0.0025);
    assert_eq!(f("float32", Val::Text(b"1.5")), 1.5);
    assert_eq!(f("float64", Val::Int(3)), 3.0);
    assert_eq!(f("float64", Val::Decimal(12345, 2)), 123.45);
    assert!(one("float64", Val::Text(b"x")).is_err());
    let b = |v| one("bool", v).map(|a| a.as_boolean().value(0));
    assert_eq!(b(Val::Bool(true)), Ok(true));
    assert_eq!(b(Val::Text(b"no")), Ok(false));
    assert_eq!(b(Val::Int(1)), Ok(true));
    assert!(b(Val::Int(2)).is_err());
    assert!(b(Val::Text(b"maybe")).is_err());
}

#[test]
fn decimals_are_exact_and_checked() {
    assert_eq!(int("decimal(10, 2)", Val::Num(b"12.345")), Ok(1235));
    assert_eq!(int("decimal(10, 2)", Val::Text(b"-0.005")), Ok(-1));
    assert_eq!(int("decimal(10, 2)", Val::Int(5)), Ok(500));
    assert_eq!(int("decimal(10, 2)", Val::Float(0.1)), Ok(10));
    assert_eq!(int("decimal(10, 2)", Val::Decimal(123456, 4)), Ok(1235));
    assert_eq!(int("decimal(10, 4)", Val::Decimal(-12, 1)), Ok(-12000));
    assert_eq!(
        int(
            "decimal(38, 0)",
            Val::Num(b"12345678901234567890123456789012345678")
        ),
        Ok(12345678901234567890123456789012345678)
    );
    let e = int("decimal(4, 2)", Val::Num(b"100.00")).unwrap_err();
    assert!(e.contains("more digits than the precision"), "{e}");
    let a = one("decimal(5, 3)", Val::Num(b"1.5")).unwrap();
    assert_eq!(a.data_type(), &DataType::Decimal128(5, 3));
    assert_eq!(
        a.as_primitive::<Decimal128Type>().value_as_string(0),
        "1.500"
    );
}

#[test]
fn timestamps_in_every_unit_and_zone() {
    let t = "2022-02-11T13:34:45.807123Z";
    assert_eq!(int("timestamp(s)", Val::Text(t.as_bytes())), Ok(1644586485));
    assert_eq!(
        int("timestamp(ms)", Val::Text(t.as_bytes())),
        Ok(1644586485807)
    );
    assert_eq!(
        int("timestamp(us, UTC)", Val::Text(t.as_bytes())),
        Ok(1644586485807123)
    );
    assert_eq!(
        int("timestamp(ns, +01:00)", Val::Text(t.as_bytes())),
        Ok(1644586485807123000)
    );
    // Epoch numbers are in the column's unit.
    assert_eq!(
        int("timestamp(ms)", Val::Num(b"1644586485807")),
        Ok(1644586485807)
    );
    assert_eq!(
        int("timestamp(s)", Val::Text(b"1644586485")),
        Ok(1644586485)
    );
    // Record timestamps (ms) into any unit.
    let ts = Val::Time(1644586485807, TimeUnit::Millisecond);
    assert_eq!(int("timestamp(s)", ts), Ok(1644586485));
    assert_eq!(int("timestamp(us)", ts), Ok(1644586485807000));
    assert_eq!(int("timestamp(ns, UTC)", ts), Ok(1644586485807000000));
    assert_eq!(int("timestamp(ms)", Val::Date(1)), Ok(86_400_000));
    // Naive text: the column's fixed offset applies; a region name refuses to guess.
    assert_eq!(
        int("timestamp(s, +05:30)", Val::Text(b"1970-01-01 05:30:00")),
        Ok(0)
    );
    let e = int(
        "timestamp(s, Europe/Paris)",
        Val::Text(b"2024-01-01T00:00:00"),
    )
    .unwrap_err();
    assert!(
        e.contains("no UTC offset") && e.contains("Europe/Paris"),
        "{e}"
    );
    assert_eq!(
        int(
            "timestamp(s, Europe/Paris)",
            Val::Text(b"2024-01-01T00:00:00+01:00")
        ),
        Ok(1704063600)
    );
    let a = one("timestamp(ms, UTC)", Val::Int(5)).unwrap();
    assert_eq!(
        a.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert!(int("timestamp(ns)", Val::Text(b"2300-01-01T00:00:00Z"))
        .unwrap_err()
        .contains("out of range"));
    assert!(int("timestamp(ms)", Val::Text(b"yesterday")).is_err());
}

#[test]
fn dates() {
    assert_eq!(int("date", Val::Text(b"2024-02-29")), Ok(19782));
    assert_eq!(int("date", Val::Text(b"2024-02-29T23:00:00Z")), Ok(19782));
    assert_eq!(int("date", Val::Num(b"3")), Ok(3));
    assert_eq!(int("date", Val::Date(-1)), Ok(-1));
    assert_eq!(int("date", Val::Time(-1, TimeUnit::Millisecond)), Ok(-1));
    assert!(int("date", Val::Text(b"2024-02-30")).is_err());
}

#[test]
fn strings_and_binaries() {
    assert_eq!(
        text("string", Val::Text("naïve 中文 😀".as_bytes())).unwrap(),
        "naïve 中文 😀"
    );
    assert_eq!(text("string", Val::Num(b"1.50")).unwrap(), "1.50");
    assert_eq!(text("string", Val::Int(-7)).unwrap(), "-7");
    assert_eq!(text("string", Val::Bool(false)).unwrap(), "false");
    assert_eq!(text("string", Val::Float(0.1)).unwrap(), "0.1");
    assert_eq!(text("string", Val::Decimal(-5, 3)).unwrap(), "-0.005");
    assert_eq!(text("string", Val::Date(19782)).unwrap(), "2024-02-29");
    assert_eq!(
        text("string", Val::Time(1644586485807, TimeUnit::Millisecond)).unwrap(),
        "2022-02-11T13:34:45.807Z"
    );
    let e = text("string", Val::Text(b"ab\xffcd")).unwrap_err();
    assert!(e.contains("not valid UTF-8"), "{e}");
    let a = one("binary", Val::Text(b"\x00\xff")).unwrap();
    assert_eq!(a.as_binary::<i32>().value(0), b"\x00\xff");
    assert!(one("binary", Val::Int(1)).is_err());
}

#[test]
fn nulls_and_nullability() {
    let a = one("int64", Val::Null).unwrap();
    assert!(a.is_null(0));
    let mut b = ColumnBuilder::new(&DataType::Int64, false, 1);
    assert!(matches!(
        b.append(Val::Null),
        Err(DecodeErrorKind::NotNullable)
    ));
    assert_eq!(b.len(), 0);
    // Scalars do not go into nested columns.
    assert!(one("list<int8>", Val::Int(1)).is_err());
}

#[test]
fn truncation_drops_partial_rows_everywhere() {
    let ty = parse_type("struct<a: list<string>, b: int32>").unwrap();
    let mut b = ColumnBuilder::new(&ty, true, 1);
    let row = |b: &mut ColumnBuilder, items: &[&str], n: i64| {
        let (_, kids) = b.struct_children().unwrap();
        let list = &mut kids[0];
        let item = list.list_item().unwrap();
        for s in items {
            item.append(Val::Text(s.as_bytes())).unwrap();
        }
        list.list_end().unwrap();
        kids[1].append(Val::Int(n)).unwrap();
        b.struct_end().unwrap();
    };
    row(&mut b, &["x", "y"], 1);
    row(&mut b, &["zzz"], 2);
    // A third row half written: list items and the list, but not the int or the struct.
    let (_, kids) = b.struct_children().unwrap();
    kids[0]
        .list_item()
        .unwrap()
        .append(Val::Text(b"partial"))
        .unwrap();
    kids[0].list_end().unwrap();
    b.truncate(2);
    row(&mut b, &[], 3);
    let before = b.estimated_bytes();
    assert!(before > 0);
    let a = b.finish();
    let s = a.as_struct();
    assert_eq!(s.len(), 3);
    let lists = s.column(0).as_list::<i32>();
    assert_eq!(lists.value_offsets(), &[0, 2, 3, 3]);
    let items = lists.values().as_string::<i32>();
    assert_eq!(
        items.iter().flatten().collect::<Vec<_>>(),
        ["x", "y", "zzz"]
    );
    assert_eq!(s.column(1).as_primitive::<Int32Type>().values(), &[1, 2, 3]);
    // The builder starts over empty after finish.
    assert_eq!(b.len(), 0);
    assert_eq!(b.estimated_bytes(), 0);
}

#[test]
fn missing_struct_fields_are_null_or_refused() {
    let ty = DataType::Struct(Fields::from(vec![
        arrow_schema::Field::new("opt", DataType::Int8, true),
        arrow_schema::Field::new("req", DataType::Int8, false),
    ]));
    let mut b = ColumnBuilder::new(&ty, true, 1);
    let (_, kids) = b.struct_children().unwrap();
    kids[1].append(Val::Int(1)).unwrap();
    b.struct_end().unwrap();
    let (_, kids) = b.struct_children().unwrap();
    kids[0].append(Val::Int(1)).unwrap();
    let e = b.struct_end().unwrap_err();
    assert_eq!(
        e.to_string(),
        "at .req: null or missing, but the column is not nullable"
    );
    b.truncate(1);
    // A null struct masks its non-nullable child.
    b.append_null().unwrap();
    let a = b.finish();
    assert_eq!(a.len(), 2);
    assert!(a.as_struct().column(0).is_null(0));
    assert!(a.is_null(1));
}
