//! Filter tests: every form of the language evaluated on a batch with NULLs, coercions between
//! column and literal types, and the errors (syntax and type) with their positions.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int32Array, Int64Array, Int8Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::{BoundFilter, Filter, FilterError};

/// Six rows; row 5 is NULL in every nullable column.
fn batch() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "count",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(5),
                Some(10),
                Some(-3),
                Some(10),
                None,
            ])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![
                Some("alpha"),
                Some("Beta"),
                Some("gamma"),
                Some("it's"),
                Some("ALPHABET"),
                None,
            ])),
        ),
        (
            "price",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                Some(2.5),
                Some(10.0),
                Some(-1.0),
                Some(3.0),
                None,
            ])),
        ),
        (
            "active",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                Some(true),
                Some(false),
                Some(true),
                None,
            ])),
        ),
        (
            "small",
            Arc::new(Int8Array::from(vec![
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                None,
            ])),
        ),
        (
            "ratio",
            Arc::new(Float32Array::from(vec![
                Some(0.1),
                Some(0.2),
                Some(0.3),
                Some(0.4),
                Some(0.5),
                None,
            ])),
        ),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from(vec![
                    Some(1_704_067_200_000), // 2024-01-01T00:00:00Z
                    Some(1_706_745_600_000), // 2024-02-01
                    Some(1_709_251_200_000), // 2024-03-01
                    Some(1_711_929_600_000), // 2024-04-01
                    Some(1_714_521_600_000), // 2024-05-01
                    None,
                ])
                .with_timezone("UTC"),
            ),
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![
                Some(19723),
                Some(19754),
                Some(19783),
                Some(19814),
                Some(19844),
                None,
            ])),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(999),
                    Some(1000),
                    Some(1050),
                    Some(-5),
                    Some(0),
                    None,
                ])
                .with_precision_and_scale(10, 2)
                .unwrap(),
            ),
        ),
        (
            "big",
            Arc::new(UInt64Array::from(vec![
                Some(1),
                Some(u64::MAX),
                Some(7),
                Some(0),
                Some(7),
                None,
            ])),
        ),
        (
            "n32",
            Arc::new(Int32Array::from(vec![
                Some(1),
                Some(4),
                Some(10),
                Some(-3),
                Some(9),
                None,
            ])),
        ),
        (
            "order date",
            Arc::new(Int32Array::from(vec![
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                None,
            ])),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// The indexes of the rows `filter` keeps, checked against both `evaluate` and `apply`.
fn rows(filter: &str) -> Vec<usize> {
    let b = batch();
    let f = BoundFilter::new(filter, &b.schema()).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let mask = f.evaluate(&b).unwrap();
    let kept: Vec<usize> = (0..b.num_rows())
        .filter(|&i| mask.is_valid(i) && mask.value(i))
        .collect();
    let applied = f.apply(&b).unwrap();
    assert_eq!(applied.num_rows(), kept.len(), "{filter}");
    assert_eq!(applied.schema(), b.schema());
    kept
}

fn error(filter: &str) -> FilterError {
    let b = batch();
    match Filter::parse(filter).and_then(|f| f.bind(&b.schema())) {
        Ok(_) => panic!("{filter}: accepted"),
        Err(e) => e,
    }
}

fn syntax(filter: &str) -> (usize, String) {
    match error(filter) {
        FilterError::Syntax {
            position, message, ..
        } => (position, message),
        e => panic!("{filter}: not a syntax error: {e}"),
    }
}

fn type_error(filter: &str) -> (usize, String) {
    match error(filter) {
        FilterError::Type {
            position, message, ..
        } => (position, message),
        e => panic!("{filter}: not a type error: {e}"),
    }
}

#[test]
fn comparisons() {
    assert_eq!(rows("count > 4"), [1, 2, 4]);
    assert_eq!(rows("count >= 5"), [1, 2, 4]);
    assert_eq!(rows("count < 5"), [0, 3]);
    assert_eq!(rows("count <= 5"), [0, 1, 3]);
    assert_eq!(rows("count = 10"), [2, 4]);
    assert_eq!(rows("count == 10"), [2, 4]);
    assert_eq!(rows("count != 10"), [0, 1, 3]);
    assert_eq!(rows("count <> 10"), [0, 1, 3]);
    assert_eq!(rows("4 < count"), [1, 2, 4]);
    assert_eq!(rows("count > -1"), [0, 1, 2, 4]);
    assert_eq!(rows("name = 'gamma'"), [2]);
    assert_eq!(rows("name = 'it''s'"), [3]);
    assert_eq!(rows("name > 'b'"), [2, 3]);
    assert_eq!(rows("active"), [0, 2, 4]);
    assert_eq!(rows("active = false"), [1, 3]);
    assert_eq!(rows("\"order date\" >= 4"), [3, 4]);
    // Column against column, of different integer types.
    assert_eq!(rows("count = n32"), [0, 2, 3]);
    assert_eq!(rows("n32 < count"), [1, 4]);
}

#[test]
fn logic_and_nulls() {
    assert_eq!(rows("count > 4 AND active"), [2, 4]);
    assert_eq!(rows("count > 4 and not active"), [1]);
    assert_eq!(rows("count < 0 OR name = 'alpha'"), [0, 3]);
    assert_eq!(rows("NOT (count > 4)"), [0, 3]);
    // AND binds tighter than OR.
    assert_eq!(rows("count = 1 OR count = 10 AND active"), [0, 2, 4]);
    assert_eq!(rows("(count = 1 OR count = 10) AND name LIKE 'g%'"), [2]);
    // Row 5 (NULLs): unknown, never kept, also under NOT; but `true OR unknown` is true.
    assert_eq!(rows("NOT (count = 3)"), [0, 1, 2, 3, 4]);
    assert_eq!(rows("count = 3 OR true"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(rows("count IS NULL"), [5]);
    assert_eq!(
        rows("count is not null AND name IS NOT NULL"),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(rows("true"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(rows("false"), Vec::<usize>::new());
    assert_eq!(rows("1 = 1"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(rows("null IS NULL"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(rows("(count > 4) = active"), [2, 3, 4]);
}

#[test]
fn in_between_like() {
    assert_eq!(rows("count IN (1, 10)"), [0, 2, 4]);
    assert_eq!(rows("count NOT IN (1, 10)"), [1, 3]);
    assert_eq!(rows("name in ('alpha', 'Beta', 'zeta')"), [0, 1]);
    assert_eq!(rows("count BETWEEN 1 AND 5"), [0, 1]);
    assert_eq!(rows("count NOT BETWEEN 1 AND 5"), [2, 3, 4]);
    assert_eq!(rows("count BETWEEN 1 AND 5 AND active"), [0]);
    assert_eq!(rows("name LIKE 'alpha%'"), [0]);
    assert_eq!(rows("name ILIKE 'alpha%'"), [0, 4]);
    assert_eq!(rows("name LIKE '_eta'"), [1]);
    assert_eq!(rows("name NOT LIKE '%a%'"), [3, 4]);
    assert_eq!(rows("name not ilike '%A%'"), [3]);
}

#[test]
fn literal_coercions() {
    // Float literal against an integer column: compared as float64, not truncated.
    assert_eq!(rows("count > 4.5"), [1, 2, 4]);
    assert_eq!(rows("count = 5.0"), [1]);
    assert_eq!(rows("count = 5.5"), Vec::<usize>::new());
    // Out of the column type's range: still right.
    assert_eq!(rows("small < 1000"), [0, 1, 2, 3, 4]);
    assert_eq!(rows("small > -1000 AND small >= 3"), [2, 3, 4]);
    // float32: the literal becomes a float32, so 0.1 matches the stored 0.1f32.
    assert_eq!(rows("ratio = 0.1"), [0]);
    assert_eq!(rows("price >= 3"), [2, 4]);
    // Decimal(10, 2): exact, and a literal with more digits than the scale compares as float.
    assert_eq!(rows("amount = 10"), [1]);
    assert_eq!(rows("amount >= 9.99"), [0, 1, 2]);
    assert_eq!(rows("amount > 10.001"), [2]);
    // u64 beyond i64.
    assert_eq!(rows("big > 5"), [1, 2, 4]);
    assert_eq!(rows("big = 7 AND count = 10"), [2, 4]);
    // Times and dates from strings.
    assert_eq!(rows("ts >= '2024-03-01T00:00:00Z'"), [2, 3, 4]);
    assert_eq!(rows("ts < '2024-02-01'"), [0]);
    assert_eq!(
        rows("ts BETWEEN '2024-02-01' AND '2024-03-01T00:00:00+00:00'"),
        [1, 2]
    );
    assert_eq!(rows("day = '2024-03-01'"), [2]);
    assert_eq!(rows("day >= '2024-04-01'"), [3, 4]);
    assert_eq!(rows("day > '2024-04-01'"), [4]);
}

#[test]
fn case_and_quoting_of_names() {
    assert_eq!(rows("COUNT > 4"), [1, 2, 4]);
    assert_eq!(rows("\"count\" > 4"), [1, 2, 4]);
    assert_eq!(rows("Name = 'gamma'"), [2]);
}

/// An expected error: the filter, the character the error points at (where checked), and
/// phrases of its message.
type ErrorCase<'a> = (&'a str, Option<usize>, &'a [&'a str]);

/// Checks errors of one kind (`syntax` or `type_error`).
fn check_errors(kind: fn(&str) -> (usize, String), cases: &[ErrorCase<'_>]) {
    for (filter, position, phrases) in cases {
        let (at, msg) = kind(filter);
        if let Some(position) = position {
            assert_eq!(at, *position, "{filter:?}: {msg}");
        }
        for phrase in *phrases {
            assert!(msg.contains(phrase), "{filter:?}: {msg}");
        }
    }
}

#[test]
fn syntax_errors_point_at_the_character() {
    let deep = "(".repeat(100) + "true" + &")".repeat(100);
    check_errors(
        syntax,
        &[
            (
                "count > ",
                Some(9),
                &["expected a column name, a value or '('"],
            ),
            ("count > 1 and", Some(14), &["the end of the filter"]),
            ("name = 'abc", Some(8), &["not closed"]),
            ("(count > 1", Some(11), &["expected ')'"]),
            ("count > 1)", Some(10), &["no '('"]),
            ("count > 1 && active", Some(11), &["AND / OR"]),
            ("1 < count < 5", None, &["BETWEEN"]),
            ("count IS 5", None, &["expected NULL after IS"]),
            ("name LIKE other", None, &["'pattern'"]),
            ("count IN (1, count)", None, &["literal values only"]),
            ("99999999999999999999 > count", None, &["64-bit"]),
            ("", None, &["empty"]),
            ("count - 1 > 0", None, &["expected AND, OR"]),
            (&deep, None, &["nests deeper"]),
            // Positions count characters, not bytes.
            ("name = 'é' and", Some(15), &[]),
        ],
    );
}

#[test]
fn type_errors_name_columns_and_types() {
    check_errors(
        type_error,
        &[
            (
                "cnt > 4",
                Some(1),
                &["unknown column \"cnt\"", "count, name, price"],
            ),
            (
                "count > 1 AND name = 5",
                Some(22),
                &["cannot compare column \"name\" (string) with the integer 5"],
            ),
            ("count = '5'", None, &["without quotes"]),
            (
                "count = name",
                None,
                &["cannot compare column \"count\" (int64) with column \"name\" (string)"],
            ),
            ("count", Some(1), &["must be a condition", "int64"]),
            ("count > 1 AND price", None, &["each side of AND"]),
            ("count = NULL", None, &["IS NULL"]),
            ("count IN (1, NULL)", None, &["IS NULL"]),
            ("count LIKE 'a%'", None, &["LIKE applies to strings"]),
            ("ts > 'yesterday'", None, &["not a valid timestamp"]),
            ("ts > 1704067200000", None, &["as a string"]),
            (
                "active = 'yes'",
                None,
                &["cannot compare column \"active\" (bool)"],
            ),
        ],
    );
    // The message quotes the filter with a caret under the position.
    let e = error("count > 1 AND nme = 'x'").to_string();
    assert!(
        e.contains("count > 1 AND nme = 'x'\n                ^"),
        "{e}"
    );
}

#[test]
fn lists_and_structs_only_take_null_tests() {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
    let schema = Schema::new(vec![
        Field::new("tags", list, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]);
    let e = BoundFilter::new("tags = 1", &schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be compared"), "{e}");
    BoundFilter::new("tags IS NOT NULL", &schema).unwrap();
    BoundFilter::new("t > '2024-01-01 10:00:00'", &schema).unwrap();
}

#[test]
fn empty_batches_and_all_kept_batches_pass_through() {
    let b = batch();
    let f = BoundFilter::new("count > -100 OR count IS NULL", &b.schema()).unwrap();
    assert_eq!(f.apply(&b).unwrap().num_rows(), 6);
    let empty = b.slice(0, 0);
    assert_eq!(f.apply(&empty).unwrap().num_rows(), 0);
    let kept = BoundFilter::new("count = 10", &b.schema())
        .unwrap()
        .apply(&b)
        .unwrap();
    let names = kept
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        names.iter().collect::<Vec<_>>(),
        [Some("gamma"), Some("ALPHABET")]
    );
}
