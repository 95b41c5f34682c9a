//! Turning a [`ColumnBuilder`]'s values into an Arrow array at the end of a batch, kept apart
//! from the appending code in `builder.rs`: one match arm per column kind, each handing its
//! buffers to Arrow without copying, and leaving the builder ready for the next batch with
//! buffers as large as this one's.

use super::*;

impl ColumnBuilder {
    /// Hands the values to an Arrow array and starts the next batch with buffers as large as
    /// this one's.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        let rows = self.len();
        let nulls = self.nulls.finish();
        self.rows = 0;
        fn take<T>(v: &mut Vec<T>) -> ScalarBuffer<T>
        where
            T: arrow_buffer::ArrowNativeType,
        {
            let cap = v.len();
            ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap)))
        }
        fn take_var(var: &mut Var) -> (OffsetBuffer<i32>, Buffer) {
            let fresh = Var::new(var.offsets.len(), var.data.len());
            let Var { offsets, data } = std::mem::replace(var, fresh);
            // Offsets were pushed monotonically from 0.
            (
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from_vec(data),
            )
        }
        macro_rules! prim {
            ($t:ty, $v:expr) => {
                Arc::new(PrimitiveArray::<$t>::new(take($v), nulls))
            };
        }
        match &mut self.kind {
            Kind::Bool(b) => {
                let values = b.finish();
                *b = BooleanBufferBuilder::new(rows);
                Arc::new(BooleanArray::new(values, nulls))
            }
            Kind::I8(v) => prim!(Int8Type, v),
            Kind::I16(v) => prim!(Int16Type, v),
            Kind::I32(v) => prim!(Int32Type, v),
            Kind::I64(v) => prim!(Int64Type, v),
            Kind::U8(v) => prim!(UInt8Type, v),
            Kind::U16(v) => prim!(UInt16Type, v),
            Kind::U32(v) => prim!(UInt32Type, v),
            Kind::U64(v) => prim!(UInt64Type, v),
            Kind::F32(v) => prim!(Float32Type, v),
            Kind::F64(v) => prim!(Float64Type, v),
            Kind::Date(v) => prim!(Date32Type, v),
            Kind::Decimal {
                values,
                precision,
                scale,
            } => Arc::new(
                PrimitiveArray::<Decimal128Type>::new(take(values), nulls)
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision and scale were checked by `supported`"),
            ),
            Kind::Timestamp { values, unit, .. } => {
                let tz = match &self.data_type {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                let values = take(values);
                match unit {
                    TimeUnit::Second => Arc::new(
                        PrimitiveArray::<TimestampSecondType>::new(values, nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Millisecond => Arc::new(
                        PrimitiveArray::<TimestampMillisecondType>::new(values, nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        PrimitiveArray::<TimestampMicrosecondType>::new(values, nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        PrimitiveArray::<TimestampNanosecondType>::new(values, nulls)
                            .with_timezone_opt(tz),
                    ),
                }
            }
            Kind::Utf8(var) => {
                let (offsets, data) = take_var(var);
                // Every value was checked to be UTF-8 when appended; this checks again in one
                // pass over the batch, which is what the safe constructor costs.
                Arc::new(
                    StringArray::try_new(offsets, data, nulls)
                        .expect("string values are checked when appended"),
                )
            }
            Kind::Binary(var) => {
                let (offsets, data) = take_var(var);
                Arc::new(BinaryArray::new(offsets, data, nulls))
            }
            Kind::List {
                offsets,
                item,
                field,
            } => {
                let cap = offsets.len();
                let mut fresh = Vec::with_capacity(cap);
                fresh.push(0);
                let offsets =
                    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, fresh)));
                let values = item.finish();
                Arc::new(
                    ListArray::try_new(field.clone(), offsets, values, nulls)
                        .expect("list offsets and items are built together"),
                )
            }
            Kind::Struct {
                fields,
                children,
                len,
            } => {
                let arrays = children.iter_mut().map(ColumnBuilder::finish).collect();
                *len = 0;
                if fields.is_empty() {
                    Arc::new(StructArray::new_empty_fields(rows, nulls))
                } else {
                    Arc::new(
                        StructArray::try_new(fields.clone(), arrays, nulls)
                            .expect("struct children are built row by row"),
                    )
                }
            }
        }
    }
}
