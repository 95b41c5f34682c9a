//! Evaluating a bound filter over a whole Arrow batch with Arrow's kernels: comparisons
//! (`arrow-ord`), three-valued AND/OR/NOT and null tests (`arrow-arith`), LIKE
//! (`arrow-string`) and casts (`arrow-cast`). Nothing here loops over rows.

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_array::{Array, ArrayRef, BooleanArray, Datum, RecordBatch, Scalar};
use arrow_buffer::BooleanBuffer;
use arrow_cast::cast;
use arrow_schema::ArrowError;

use super::bind::Node;
use super::parser::CmpOp;

/// What a node evaluates to: one value per row, or one value for all rows (a literal, or an
/// expression of literals only).
enum Value {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Value {
    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Value::Array(a) => Box::new(a),
            Value::Scalar(a) => Box::new(Scalar::new(a)),
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The value as a boolean array of `rows` values (a scalar repeated).
    fn into_mask(self, rows: usize) -> Result<BooleanArray, ArrowError> {
        let (array, scalar) = match self {
            Value::Array(a) => (a, false),
            Value::Scalar(a) => (a, true),
        };
        let b = array
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                ArrowError::InvalidArgumentError(format!(
                    "expected a condition, got {}",
                    array.data_type()
                ))
            })?;
        if !scalar {
            return Ok(b.clone());
        }
        Ok(if b.is_null(0) {
            BooleanArray::new_null(rows)
        } else if b.value(0) {
            BooleanArray::new(BooleanBuffer::new_set(rows), None)
        } else {
            BooleanArray::new(BooleanBuffer::new_unset(rows), None)
        })
    }
}

/// The node's truth value for every row of `batch` (NULL where SQL's three-valued logic says
/// unknown; such rows are dropped like false ones).
pub(super) fn mask(node: &Node, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
    eval(node, batch)?.into_mask(batch.num_rows())
}

fn eval(node: &Node, batch: &RecordBatch) -> Result<Value, ArrowError> {
    let rows = batch.num_rows();
    Ok(match node {
        Node::Column { index, cast: to } => {
            let column = batch.columns().get(*index).ok_or_else(|| {
                ArrowError::SchemaError(format!("the batch has no column {index}"))
            })?;
            Value::Array(match to {
                Some(t) => cast(column, t)?,
                None => column.clone(),
            })
        }
        Node::Scalar(v) => Value::Scalar(v.clone()),
        Node::Cmp { op, left, right } => {
            let (l, r) = (eval(left, batch)?, eval(right, batch)?);
            let both_scalar = l.is_scalar() && r.is_scalar();
            let (l, r) = (l.datum(), r.datum());
            let (l, r) = (l.as_ref(), r.as_ref());
            let out = match op {
                CmpOp::Eq => arrow_ord::cmp::eq(l, r),
                CmpOp::Ne => arrow_ord::cmp::neq(l, r),
                CmpOp::Lt => arrow_ord::cmp::lt(l, r),
                CmpOp::Le => arrow_ord::cmp::lt_eq(l, r),
                CmpOp::Gt => arrow_ord::cmp::gt(l, r),
                CmpOp::Ge => arrow_ord::cmp::gt_eq(l, r),
            }?;
            boolean(out, both_scalar)
        }
        Node::And(l, r) => {
            let l = eval(l, batch)?.into_mask(rows)?;
            let r = eval(r, batch)?.into_mask(rows)?;
            Value::Array(Arc::new(and_kleene(&l, &r)?))
        }
        Node::Or(l, r) => {
            let l = eval(l, batch)?.into_mask(rows)?;
            let r = eval(r, batch)?.into_mask(rows)?;
            Value::Array(Arc::new(or_kleene(&l, &r)?))
        }
        Node::Not(inner) => Value::Array(Arc::new(not(&eval(inner, batch)?.into_mask(rows)?)?)),
        Node::IsNull { node, negated } => {
            let v = eval(node, batch)?;
            let scalar = v.is_scalar();
            let array = match &v {
                Value::Array(a) | Value::Scalar(a) => a.as_ref(),
            };
            let out = if *negated {
                is_not_null(array)?
            } else {
                is_null(array)?
            };
            boolean(out, scalar)
        }
        Node::Like {
            node,
            pattern,
            case_insensitive,
            negated,
        } => {
            let v = eval(node, batch)?;
            let scalar = v.is_scalar();
            let (l, r) = (v.datum(), Scalar::new(pattern));
            let out = match (case_insensitive, negated) {
                (false, false) => arrow_string::like::like(l.as_ref(), &r),
                (false, true) => arrow_string::like::nlike(l.as_ref(), &r),
                (true, false) => arrow_string::like::ilike(l.as_ref(), &r),
                (true, true) => arrow_string::like::nilike(l.as_ref(), &r),
            }?;
            boolean(out, scalar)
        }
    })
}

fn boolean(b: BooleanArray, scalar: bool) -> Value {
    if scalar {
        Value::Scalar(Arc::new(b))
    } else {
        Value::Array(Arc::new(b))
    }
}
