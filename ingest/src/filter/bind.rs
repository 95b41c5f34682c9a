//! Type-checking a parsed filter against the Arrow schema, once at startup, into a [`Node`]
//! tree that evaluation runs per batch with no further checks: column names become indexes,
//! literals become one-value arrays of exactly the type they are compared with, and operands
//! of different types get the cast that makes them comparable.
//!
//! Coercion rules (what a SQL user expects, without surprises):
//! - a literal takes the type of what it is compared with when it fits exactly (`int8_col = 3`,
//!   `ts > '2024-01-01T00:00:00Z'`, `day = '2024-01-31'`, `price_decimal > 9.99`); a number
//!   that does not fit exactly (`int_col > 2.5`, `int8_col < 1000`) compares as float64 on
//!   both sides instead, so the answer is still right;
//! - two columns of different numeric types compare as int64 (both integers) or float64;
//!   strings with strings, binaries with binaries, dates with timestamps;
//! - anything else (a string with a number, a bool with a string, a list with anything) is a
//!   type error naming both sides and their types.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, StringArray,
};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Schema};

use super::parser::{CmpOp, Expr, Lit};
use super::FilterError;
use crate::schema::format_type;

/// A type-checked filter, ready to evaluate (see [`super::eval`]).
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// A column of the batch, cast to `cast` first when set.
    Column {
        index: usize,
        cast: Option<DataType>,
    },
    /// One value (a one-element array), of the type of what it is compared with.
    Scalar(ArrayRef),
    Cmp {
        op: CmpOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    IsNull {
        node: Box<Node>,
        negated: bool,
    },
    Like {
        node: Box<Node>,
        /// The pattern, as a one-element array of the operand's string type.
        pattern: ArrayRef,
        case_insensitive: bool,
        negated: bool,
    },
}

/// An operand before it is placed in a comparison: literals stay untyped until they meet the
/// other side.
enum Operand {
    Typed {
        node: Node,
        ty: DataType,
        /// `column "count"` or `the condition at character 7`, for errors.
        what: String,
        pos: usize,
    },
    Lit {
        value: Lit,
        pos: usize,
    },
}

/// Checks `expr` against `schema` and compiles it; the whole filter must be a condition.
pub(super) fn bind(text: &str, expr: &Expr, schema: &Schema) -> Result<Node, FilterError> {
    let b = Binder { text, schema };
    b.condition(expr, "the filter")
}

struct Binder<'a> {
    text: &'a str,
    schema: &'a Schema,
}

impl Binder<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> FilterError {
        FilterError::types(self.text, pos, message)
    }

    /// An expression that must be true/false (an operand of AND, OR, NOT, or the whole filter).
    fn condition(&self, expr: &Expr, role: &str) -> Result<Node, FilterError> {
        match self.operand(expr)? {
            Operand::Typed {
                node,
                ty: DataType::Boolean,
                ..
            } => Ok(node),
            Operand::Typed { what, ty, pos, .. } => {
                let hint = if matches!(expr, Expr::Column { .. }) {
                    format!(
                        " (compare it, e.g. `{} > 0` or `... IS NOT NULL`)",
                        self.snippet(expr)
                    )
                } else {
                    String::new()
                };
                Err(self.err(
                    pos,
                    format!(
                        "{role} must be a condition (true or false), but {what} is {}{hint}",
                        format_type(&ty)
                    ),
                ))
            }
            Operand::Lit {
                value: Lit::Bool(b),
                ..
            } => Ok(Node::Scalar(Arc::new(BooleanArray::from(vec![b])))),
            Operand::Lit { value, pos } => Err(self.err(
                pos,
                format!(
                    "{role} must be a condition (true or false), not {}",
                    value.describe()
                ),
            )),
        }
    }

    /// The source text of a column reference, for hints.
    fn snippet(&self, expr: &Expr) -> String {
        match expr {
            Expr::Column { name, .. } if is_bare(name) => name.clone(),
            Expr::Column { name, .. } => format!("\"{}\"", name.replace('"', "\"\"")),
            _ => "x".to_owned(),
        }
    }

    fn operand(&self, expr: &Expr) -> Result<Operand, FilterError> {
        let boolean = |node, pos| Operand::Typed {
            node,
            ty: DataType::Boolean,
            what: format!("the condition at character {}", char_pos(self.text, pos)),
            pos,
        };
        Ok(match expr {
            Expr::Column { name, pos } => {
                let index = self.column(name, *pos)?;
                let field = self.schema.field(index);
                let (ty, cast) = match field.data_type() {
                    // Compare a dictionary's values; Arrow's kernels want matching types.
                    DataType::Dictionary(_, v) => ((**v).clone(), Some((**v).clone())),
                    t => (t.clone(), None),
                };
                Operand::Typed {
                    node: Node::Column { index, cast },
                    ty,
                    what: format!("column {:?}", field.name()),
                    pos: *pos,
                }
            }
            Expr::Lit { value, pos } => Operand::Lit {
                value: value.clone(),
                pos: *pos,
            },
            Expr::Cmp {
                op,
                left,
                right,
                pos,
            } => {
                let node = self.compare(*op, self.operand(left)?, self.operand(right)?, *pos)?;
                boolean(node, left.pos())
            }
            Expr::And(l, r) => boolean(
                Node::And(
                    Box::new(self.condition(l, "each side of AND")?),
                    Box::new(self.condition(r, "each side of AND")?),
                ),
                l.pos(),
            ),
            Expr::Or(l, r) => boolean(
                Node::Or(
                    Box::new(self.condition(l, "each side of OR")?),
                    Box::new(self.condition(r, "each side of OR")?),
                ),
                l.pos(),
            ),
            Expr::Not { expr, pos } => boolean(
                Node::Not(Box::new(self.condition(expr, "what follows NOT")?)),
                *pos,
            ),
            Expr::IsNull { expr, negated, .. } => {
                let node = match self.operand(expr)? {
                    Operand::Typed { node, .. } => Node::IsNull {
                        node: Box::new(node),
                        negated: *negated,
                    },
                    Operand::Lit { value, .. } => {
                        let null = value == Lit::Null;
                        Node::Scalar(Arc::new(BooleanArray::from(vec![null != *negated])))
                    }
                };
                boolean(node, expr.pos())
            }
            Expr::In {
                expr,
                list,
                negated,
                pos,
            } => {
                let mut any: Option<Node> = None;
                for (value, at) in list {
                    if *value == Lit::Null {
                        return Err(self.err(
                            *at,
                            "NULL in IN (...) never matches: add `OR ... IS NULL` instead",
                        ));
                    }
                    let lit = Operand::Lit {
                        value: value.clone(),
                        pos: *at,
                    };
                    let eq = self.compare(CmpOp::Eq, self.operand(expr)?, lit, *pos)?;
                    any = Some(match any {
                        None => eq,
                        Some(prev) => Node::Or(Box::new(prev), Box::new(eq)),
                    });
                }
                let Some(any) = any else {
                    return Err(self.err(*pos, "IN () needs at least one value"));
                };
                let node = if *negated {
                    Node::Not(Box::new(any))
                } else {
                    any
                };
                boolean(node, expr.pos())
            }
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
                negated,
                pos,
            } => {
                let word = if *case_insensitive { "ILIKE" } else { "LIKE" };
                let (node, ty) = match self.operand(expr)? {
                    Operand::Typed { node, ty, .. } if is_string(&ty) => (node, ty),
                    Operand::Typed { ty, what, .. } => {
                        return Err(self.err(
                            *pos,
                            format!(
                                "{word} applies to strings, but {what} is {}",
                                format_type(&ty)
                            ),
                        ))
                    }
                    Operand::Lit { value, pos } => {
                        return Err(self.err(
                            pos,
                            format!(
                                "{word} needs a string column on its left, not {}",
                                value.describe()
                            ),
                        ))
                    }
                };
                let pattern = exact_cast(&lit_array(&Lit::Str(pattern.clone())), &ty)
                    .ok_or_else(|| self.err(*pos, "the pattern cannot be used with this column"))?;
                boolean(
                    Node::Like {
                        node: Box::new(node),
                        pattern,
                        case_insensitive: *case_insensitive,
                        negated: *negated,
                    },
                    expr.pos(),
                )
            }
        })
    }

    /// The index of column `name`: an exact match, else the one column whose name matches
    /// ignoring case (as SQL folds unquoted names).
    fn column(&self, name: &str, pos: usize) -> Result<usize, FilterError> {
        let fields = self.schema.fields();
        if let Some(i) = fields.iter().position(|f| f.name() == name) {
            return Ok(i);
        }
        let folded: Vec<usize> = (0..fields.len())
            .filter(|&i| fields[i].name().eq_ignore_ascii_case(name))
            .collect();
        if let [i] = folded[..] {
            return Ok(i);
        }
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        Err(self.err(
            pos,
            format!(
                "unknown column {name:?}; the columns are: {}",
                names.join(", ")
            ),
        ))
    }

    /// `left op right`, with the casts that make both sides one type.
    fn compare(
        &self,
        op: CmpOp,
        left: Operand,
        right: Operand,
        pos: usize,
    ) -> Result<Node, FilterError> {
        let cmp = |l, r| Node::Cmp {
            op,
            left: Box::new(l),
            right: Box::new(r),
        };
        for side in [&left, &right] {
            if let Operand::Lit {
                value: Lit::Null,
                pos,
            } = side
            {
                let with = if op == CmpOp::Eq {
                    "IS NULL"
                } else {
                    "IS NOT NULL"
                };
                return Err(self.err(
                    *pos,
                    format!("a comparison with NULL is never true: write {with}"),
                ));
            }
        }
        for side in [&left, &right] {
            if let Operand::Typed { ty, what, pos, .. } = side {
                if !comparable(ty) {
                    return Err(self.err(
                        *pos,
                        format!(
                            "{what} is {}, which cannot be compared (only IS [NOT] NULL applies)",
                            format_type(ty)
                        ),
                    ));
                }
            }
        }
        match (left, right) {
            (Operand::Lit { value: l, .. }, Operand::Lit { value: r, .. }) => {
                let (l, r) = (lit_array(&l), lit_array(&r));
                let ty = common_type(l.data_type(), r.data_type()).ok_or_else(|| {
                    self.err(pos, "these two values have types that cannot be compared")
                })?;
                let conv = |a: &ArrayRef| exact_cast(a, &ty).unwrap_or_else(|| a.clone());
                Ok(cmp(Node::Scalar(conv(&l)), Node::Scalar(conv(&r))))
            }
            (Operand::Typed { node, ty, what, .. }, Operand::Lit { value, pos }) => {
                let (node, lit) = self.coerce_literal(node, &ty, &what, &value, pos)?;
                Ok(cmp(node, lit))
            }
            (Operand::Lit { value, pos }, Operand::Typed { node, ty, what, .. }) => {
                let (node, lit) = self.coerce_literal(node, &ty, &what, &value, pos)?;
                Ok(cmp(lit, node))
            }
            (
                Operand::Typed {
                    node: ln,
                    ty: lt,
                    what: lw,
                    ..
                },
                Operand::Typed {
                    node: rn,
                    ty: rt,
                    what: rw,
                    ..
                },
            ) => {
                let ty = common_type(&lt, &rt).ok_or_else(|| {
                    self.err(
                        pos,
                        format!(
                            "cannot compare {lw} ({}) with {rw} ({})",
                            format_type(&lt),
                            format_type(&rt)
                        ),
                    )
                })?;
                Ok(cmp(with_cast(ln, &lt, &ty), with_cast(rn, &rt, &ty)))
            }
        }
    }

    /// The literal as a value of `ty`; or, for a number that does not fit `ty` exactly, both
    /// sides as float64.
    fn coerce_literal(
        &self,
        node: Node,
        ty: &DataType,
        what: &str,
        value: &Lit,
        pos: usize,
    ) -> Result<(Node, Node), FilterError> {
        let lit = lit_array(value);
        let mismatch = |hint: &str| {
            self.err(
                pos,
                format!(
                    "cannot compare {what} ({}) with {}{hint}",
                    format_type(ty),
                    value.describe()
                ),
            )
        };
        match (value, ty) {
            (Lit::Int(_) | Lit::Float(_), t) if t.is_integer() || t.is_decimal() => {
                Ok(match exact_cast(&lit, ty) {
                    Some(v) => (node, Node::Scalar(v)),
                    None => {
                        let f = exact_cast(&lit, &DataType::Float64).unwrap_or(lit);
                        (with_cast(node, ty, &DataType::Float64), Node::Scalar(f))
                    }
                })
            }
            (Lit::Int(_) | Lit::Float(_), t) if t.is_floating() => {
                // Into the column's own float type: `f32_col = 0.1` must compare 0.1f32.
                let v = cast_with_options(&lit, ty, &STRICT).map_err(|_| mismatch(""))?;
                Ok((node, Node::Scalar(v)))
            }
            (Lit::Str(_), t) if is_string(t) || is_binary(t) => {
                let v = cast_with_options(&lit, ty, &STRICT).map_err(|_| mismatch(""))?;
                Ok((node, Node::Scalar(v)))
            }
            (Lit::Str(s), t) if t.is_temporal() => {
                let v = cast_with_options(&lit, ty, &STRICT).map_err(|e| {
                    self.err(
                        pos,
                        format!(
                            "'{s}' is not a valid {} to compare with {what}: {e} (write e.g. '2024-01-31' or '2024-01-31T12:00:00Z')",
                            format_type(ty)
                        ),
                    )
                })?;
                Ok((node, Node::Scalar(v)))
            }
            (Lit::Bool(_), DataType::Boolean) => Ok((node, Node::Scalar(lit))),
            (Lit::Int(_) | Lit::Float(_), t) if t.is_temporal() => Err(mismatch(
                ": write the time as a string, e.g. '2024-01-31T12:00:00Z'",
            )),
            (Lit::Str(_), t) if t.is_numeric() => {
                Err(mismatch(": write the number without quotes"))
            }
            _ => Err(mismatch("")),
        }
    }
}

/// Casts that fail instead of producing NULL.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow_cast::display::FormatOptions::new(),
};

/// The literal as a one-element array of its natural type.
fn lit_array(value: &Lit) -> ArrayRef {
    match value {
        Lit::Null => Arc::new(NullArray::new(1)),
        Lit::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Lit::Int(n) => Arc::new(Int64Array::from(vec![*n])),
        Lit::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Lit::Str(s) => Arc::new(StringArray::from(vec![s.as_str()])),
    }
}

/// `value` cast to `ty` when that loses nothing (casting back gives the same value).
fn exact_cast(value: &ArrayRef, ty: &DataType) -> Option<ArrayRef> {
    if value.data_type() == ty {
        return Some(value.clone());
    }
    let cast = cast_with_options(value, ty, &STRICT).ok()?;
    if cast.null_count() > 0 {
        return None;
    }
    let back = cast_with_options(&cast, value.data_type(), &STRICT).ok()?;
    (back.as_ref() == value.as_ref()).then_some(cast)
}

fn with_cast(node: Node, from: &DataType, to: &DataType) -> Node {
    if from == to {
        return node;
    }
    match node {
        Node::Column { index, .. } => Node::Column {
            index,
            cast: Some(to.clone()),
        },
        Node::Scalar(v) => Node::Scalar(cast_with_options(&v, to, &STRICT).unwrap_or(v)),
        // Conditions are boolean on both sides already (`(a > 1) = (b > 2)`).
        other => other,
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// Whether values of `t` can be compared with `<`, `=`, ... at all.
fn comparable(t: &DataType) -> bool {
    let interval = matches!(t, DataType::Interval(_));
    t.is_numeric()
        || t.is_decimal()
        || is_string(t)
        || is_binary(t)
        || (t.is_temporal() && !interval)
        || *t == DataType::Boolean
}

/// The type two sides of a comparison are both cast to, if there is one.
fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let signed = |t: &DataType| t.is_signed_integer();
    let small_unsigned = |t: &DataType| matches!(t, UInt8 | UInt16 | UInt32);
    Some(match (a, b) {
        _ if signed(a) && signed(b) => Int64,
        _ if a.is_unsigned_integer() && b.is_unsigned_integer() => UInt64,
        _ if (signed(a) && small_unsigned(b)) || (small_unsigned(a) && signed(b)) => Int64,
        _ if (a.is_numeric() || a.is_decimal()) && (b.is_numeric() || b.is_decimal()) => Float64,
        _ if is_string(a) && is_string(b) => Utf8,
        _ if is_binary(a) && is_binary(b) => Binary,
        (Date32 | Date64, Timestamp(..)) => b.clone(),
        (Timestamp(..), Date32 | Date64) | (Timestamp(..), Timestamp(..)) => a.clone(),
        (Date32, Date64) | (Date64, Date32) => Date64,
        _ => return None,
    })
}

/// Whether `name` can be written without quotes.
fn is_bare(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The 1-based character position of byte offset `pos` in `text`.
pub(super) fn char_pos(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(pos, |s| s.chars().count()) + 1
}
