//! The Avro decoder: Confluent wire format (magic byte 0, big-endian 4-byte schema id, Avro
//! binary), decoded by our own code straight into the column builders.
//!
//! `apache-avro` only parses the writer schema. For each schema id the decoder compiles a
//! reader plan: the writer schema flattened into an arena of nodes, and a tree that follows
//! the writer's fields in their order, saying for each whether it feeds columns, holds fields
//! that do, or is skipped. A column whose path the writer schema lacks is left null, so
//! schema evolution needs nothing more than a plan per id.
//!
//! What maps to what:
//! - `null`, `boolean`, `int`, `long`, `float`, `double`, `bytes`, `string` to the matching
//!   values, converted to the column type like any other format's (a `string` into a
//!   timestamp column is parsed as text, a `long` into one is a count of its unit).
//! - Logical types: `date` is a date, `timestamp-*` / `local-timestamp-*` are times in their
//!   unit, `decimal` (bytes or fixed) is an exact decimal rescaled to the column's scale,
//!   `uuid` is its string, `time-*` and `duration` are their underlying int, long or fixed.
//! - `enum` is its symbol's text; `fixed` is its bytes.
//! - Unions: the branch's value; the `null` branch is null.
//! - `record` into a `struct` column (fields matched by name, missing ones null), `array`
//!   into a `list` column, `map` into `list<struct<key: string, value: T>>` (entries in
//!   their written order; a map nobody reads is skipped).

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::Schema;
use arrow_schema::TimeUnit;

use super::builder::{ColumnBuilder, Shape, Val};
use super::error::{DecodeErrorKind, Fail};
use super::registry::RegistryClient;

/// How deeply nested values (recursive schemas) are followed.
const MAX_DEPTH: usize = 128;

/// A writer-schema node.
#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Date,
    Timestamp(TimeUnit),
    Decimal { scale: i8, fixed: Option<usize> },
    Fixed(usize),
    Enum(Vec<Box<[u8]>>),
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
    Record(Vec<(String, usize)>),
}

/// The writer schema as an arena, so recursive types are plain indexes.
#[derive(Debug, Default)]
struct Arena {
    nodes: Vec<Node>,
    /// Whether a value of each node can take zero bytes (then block counts are not bounded by
    /// the bytes left, and need a limit of their own).
    zero_size: Vec<bool>,
    names: HashMap<String, usize>,
}

impl Arena {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.zero_size.push(false);
        self.nodes.len() - 1
    }

    fn add(&mut self, schema: &Schema, ns: Option<&str>) -> Result<usize, String> {
        let named = |arena: &mut Arena, name: &apache_avro::schema::Name, node| {
            let full = name.fullname(ns.map(str::to_string));
            let i = arena.push(node);
            arena.names.insert(full, i);
            arena.names.entry(name.name.clone()).or_insert(i);
            i
        };
        Ok(match schema {
            Schema::Null => {
                let i = self.push(Node::Null);
                self.zero_size[i] = true;
                i
            }
            Schema::Boolean => self.push(Node::Boolean),
            Schema::Int | Schema::TimeMillis => self.push(Node::Int),
            Schema::Long | Schema::TimeMicros => self.push(Node::Long),
            Schema::Float => self.push(Node::Float),
            Schema::Double => self.push(Node::Double),
            Schema::Bytes | Schema::BigDecimal => self.push(Node::Bytes),
            Schema::String | Schema::Uuid => self.push(Node::String),
            Schema::Date => self.push(Node::Date),
            Schema::TimestampMillis | Schema::LocalTimestampMillis => {
                self.push(Node::Timestamp(TimeUnit::Millisecond))
            }
            Schema::TimestampMicros | Schema::LocalTimestampMicros => {
                self.push(Node::Timestamp(TimeUnit::Microsecond))
            }
            Schema::TimestampNanos | Schema::LocalTimestampNanos => {
                self.push(Node::Timestamp(TimeUnit::Nanosecond))
            }
            Schema::Duration => self.push(Node::Fixed(12)),
            Schema::Decimal(d) => {
                let fixed = match &*d.inner {
                    Schema::Fixed(f) => Some(f.size),
                    _ => None,
                };
                let scale = i8::try_from(d.scale).map_err(|_| "decimal scale over 127")?;
                self.push(Node::Decimal { scale, fixed })
            }
            Schema::Fixed(f) => {
                let i = named(self, &f.name, Node::Fixed(f.size));
                self.zero_size[i] = f.size == 0;
                i
            }
            Schema::Enum(e) => {
                let symbols = e.symbols.iter().map(|s| s.as_bytes().into()).collect();
                named(self, &e.name, Node::Enum(symbols))
            }
            Schema::Array(a) => {
                let item = self.add(&a.items, ns)?;
                self.push(Node::Array(item))
            }
            Schema::Map(m) => {
                let value = self.add(&m.types, ns)?;
                self.push(Node::Map(value))
            }
            Schema::Union(u) => {
                let branches = u
                    .variants()
                    .iter()
                    .map(|b| self.add(b, ns))
                    .collect::<Result<_, _>>()?;
                self.push(Node::Union(branches))
            }
            Schema::Record(r) => {
                // Registered before its fields, so a field may refer back to it.
                let i = named(self, &r.name, Node::Record(Vec::new()));
                let inner_ns = r.name.namespace.clone().or(ns.map(str::to_string));
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    fields.push((f.name.clone(), self.add(&f.schema, inner_ns.as_deref())?));
                }
                self.zero_size[i] = fields.iter().all(|&(_, c)| self.zero_size[c]);
                self.nodes[i] = Node::Record(fields);
                i
            }
            Schema::Ref { name } => {
                let full = name.fullname(ns.map(str::to_string));
                *self
                    .names
                    .get(&full)
                    .or_else(|| self.names.get(&name.name))
                    .ok_or_else(|| format!("unknown named type {full}"))?
            }
        })
    }
}

/// What to do with one value of the writer's data.
#[derive(Debug, Default)]
struct FieldPlan {
    /// Columns that take this value.
    columns: Vec<usize>,
    /// Columns further in.
    descend: Option<Descend>,
}

#[derive(Debug)]
enum Descend {
    /// One plan per writer field, in the writer's order.
    Record(Vec<FieldPlan>),
    /// One plan per union branch.
    Union(Vec<FieldPlan>),
}

impl FieldPlan {
    /// Routes column `col` at `path` below `node`; false if the writer has no such path.
    fn insert(&mut self, arena: &Arena, node: usize, path: &[String], col: usize) -> bool {
        let Some((first, rest)) = path.split_first() else {
            self.columns.push(col);
            return true;
        };
        match &arena.nodes[node] {
            Node::Record(fields) => {
                let Some(i) = fields.iter().position(|(n, _)| n == first) else {
                    return false;
                };
                let d = self.descend.get_or_insert_with(|| {
                    Descend::Record(fields.iter().map(|_| FieldPlan::default()).collect())
                });
                let Descend::Record(plans) = d else {
                    return false;
                };
                plans[i].insert(arena, fields[i].1, rest, col)
            }
            Node::Union(branches) => {
                let d = self.descend.get_or_insert_with(|| {
                    Descend::Union(branches.iter().map(|_| FieldPlan::default()).collect())
                });
                let Descend::Union(plans) = d else {
                    return false;
                };
                let mut any = false;
                for (p, &b) in plans.iter_mut().zip(branches) {
                    any |= p.insert(arena, b, path, col);
                }
                any
            }
            _ => false,
        }
    }
}

/// The reader plan for one writer schema.
#[derive(Debug)]
struct Plan {
    arena: Arena,
    root: usize,
    top: FieldPlan,
}

/// Decodes Confluent-framed Avro into the columns whose sources are Avro paths.
#[derive(Debug)]
pub(crate) struct AvroDecoder {
    registry: RegistryClient,
    targets: Vec<(usize, Vec<String>)>,
    plans: Vec<(u32, Arc<Plan>)>,
    last: usize,
}

/// Reads the schema id of a Confluent-framed value.
pub(crate) fn schema_id(buf: &[u8]) -> Result<u32, DecodeErrorKind> {
    match buf {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [0, ..] => Err(DecodeErrorKind::NotConfluentFraming(
            "shorter than the 5-byte header",
        )),
        _ => Err(DecodeErrorKind::NotConfluentFraming("first byte is not 0")),
    }
}

impl AvroDecoder {
    /// A decoder filling `targets` (column index, Avro path), with schemas from `registry`.
    pub(crate) fn new(registry: RegistryClient, targets: Vec<(usize, Vec<String>)>) -> Self {
        AvroDecoder {
            registry,
            targets,
            plans: Vec::new(),
            last: 0,
        }
    }

    /// The schema id decoding `buf` would have to fetch from the registry first, if any.
    pub(crate) fn to_fetch(&self, buf: &[u8]) -> Option<u32> {
        let id = schema_id(buf).ok()?;
        (self.find(id).is_none() && self.registry.must_fetch(id)).then_some(id)
    }

    /// The registry its schemas come from.
    pub(crate) fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    fn find(&self, id: u32) -> Option<usize> {
        if self.plans.get(self.last).is_some_and(|(i, _)| *i == id) {
            return Some(self.last);
        }
        self.plans.iter().position(|(i, _)| *i == id)
    }

    /// Makes sure the plan for `buf`'s schema id exists (fetching the schema if need be) and
    /// returns its index.
    pub(crate) fn prepare(&mut self, buf: &[u8]) -> Result<usize, DecodeErrorKind> {
        let id = schema_id(buf)?;
        if let Some(i) = self.find(id) {
            self.last = i;
            return Ok(i);
        }
        let schema = self
            .registry
            .known(id)
            .map_err(|source| DecodeErrorKind::Registry { id, source })?;
        let mut arena = Arena::default();
        let root = arena
            .add(&schema, None)
            .map_err(|message| DecodeErrorKind::Schema { id, message })?;
        let mut top = FieldPlan::default();
        for (col, path) in &self.targets {
            top.insert(&arena, root, path, *col);
        }
        self.plans.push((id, Arc::new(Plan { arena, root, top })));
        self.last = self.plans.len() - 1;
        Ok(self.last)
    }

    /// Decodes one framed value. Columns the writer schema lacks are left short.
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        cols: &mut [ColumnBuilder],
        row: usize,
    ) -> Result<(), Fail> {
        let i = self.prepare(buf).map_err(|e| (None, e))?;
        let plan = &self.plans[i].1;
        let mut r = Reader { buf, pos: 5 };
        let mut w = Walk {
            arena: &plan.arena,
            cols,
            row,
        };
        w.run(&plan.top, plan.root, &mut r, 0)?;
        if r.pos != buf.len() {
            let extra = buf.len() - r.pos;
            return Err((
                None,
                DecodeErrorKind::Trailing {
                    format: "Avro",
                    extra,
                },
            ));
        }
        Ok(())
    }
}

/// A position in Avro binary data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, message: &'static str) -> DecodeErrorKind {
        DecodeErrorKind::Avro {
            position: self.pos,
            message,
        }
    }

    /// A zig-zag varint long.
    #[inline]
    fn long(&mut self) -> Result<i64, DecodeErrorKind> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeErrorKind> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("length runs past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeErrorKind> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.err("negative length"))?;
        self.take(n)
    }

    /// The item count of the next array or map block (0 ends the value).
    fn block(&mut self, zero_size: bool) -> Result<usize, DecodeErrorKind> {
        let n = self.long()?;
        if n < 0 {
            self.long()?; // the block's byte size, for skipping; not needed here
        }
        self.count(n.unsigned_abs(), zero_size)
    }

    /// Checks a block's item count against the data left.
    fn count(&self, n: u64, zero_size: bool) -> Result<usize, DecodeErrorKind> {
        // Items of at least one byte cannot outnumber the bytes left; items of zero bytes
        // (nulls) get a fixed bound, so a few bytes cannot ask for billions of them.
        let limit = if zero_size {
            1 << 20
        } else {
            (self.buf.len() - self.pos) as u64
        };
        if n > limit {
            return Err(self.err("block count exceeds the data"));
        }
        Ok(n as usize)
    }

    fn branch(&mut self, n: usize) -> Result<usize, DecodeErrorKind> {
        let b = self.long()?;
        usize::try_from(b)
            .ok()
            .filter(|&b| b < n)
            .ok_or_else(|| self.err("union branch out of range"))
    }
}

/// Decoding state for one record.
struct Walk<'p, 'c> {
    arena: &'p Arena,
    cols: &'c mut [ColumnBuilder],
    row: usize,
}

impl Walk<'_, '_> {
    fn run(
        &mut self,
        plan: &FieldPlan,
        node: usize,
        r: &mut Reader<'_>,
        depth: usize,
    ) -> Result<(), Fail> {
        let start = r.pos;
        let mut end = None;
        for &c in &plan.columns {
            if self.cols[c].len() > self.row {
                continue;
            }
            r.pos = start;
            value(self.arena, node, &mut self.cols[c], r, depth).map_err(|e| (Some(c), e))?;
            end = Some(r.pos);
        }
        let Some(descend) = &plan.descend else {
            match end {
                Some(e) => r.pos = e,
                None => skip(self.arena, node, r, depth).map_err(|e| (None, e))?,
            }
            return Ok(());
        };
        r.pos = start;
        match (descend, &self.arena.nodes[node]) {
            (Descend::Record(plans), Node::Record(fields)) => {
                for (p, (_, child)) in plans.iter().zip(fields) {
                    self.run(p, *child, r, depth + 1)?;
                }
                Ok(())
            }
            (Descend::Union(plans), Node::Union(branches)) => {
                let b = r.branch(branches.len()).map_err(|e| (None, e))?;
                self.run(&plans[b], branches[b], r, depth + 1)
            }
            _ => Err((None, r.err("plan does not match the schema"))),
        }
    }
}

/// Skips one value of `node`.
fn skip(
    arena: &Arena,
    node: usize,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<(), DecodeErrorKind> {
    if depth > MAX_DEPTH {
        return Err(DecodeErrorKind::TooDeep(MAX_DEPTH));
    }
    match &arena.nodes[node] {
        Node::Null => {}
        Node::Boolean => {
            r.take(1)?;
        }
        Node::Int | Node::Long | Node::Date | Node::Timestamp(_) | Node::Enum(_) => {
            r.long()?;
        }
        Node::Float => {
            r.take(4)?;
        }
        Node::Double => {
            r.take(8)?;
        }
        Node::Bytes | Node::String | Node::Decimal { fixed: None, .. } => {
            r.bytes()?;
        }
        Node::Decimal { fixed: Some(n), .. } | Node::Fixed(n) => {
            r.take(*n)?;
        }
        Node::Array(item) | Node::Map(item) => {
            let is_map = matches!(arena.nodes[node], Node::Map(_));
            loop {
                let n = r.long()?;
                if n == 0 {
                    break;
                }
                if n < 0 {
                    // A sized block: jump over it.
                    let size = r.long()?;
                    let size = usize::try_from(size).map_err(|_| r.err("negative block size"))?;
                    r.take(size)?;
                    continue;
                }
                let n = r.count(n as u64, arena.zero_size[*item] && !is_map)?;
                for _ in 0..n {
                    if is_map {
                        r.bytes()?;
                    }
                    skip(arena, *item, r, depth + 1)?;
                }
            }
        }
        Node::Union(branches) => {
            let b = r.branch(branches.len())?;
            skip(arena, branches[b], r, depth + 1)?;
        }
        Node::Record(fields) => {
            for (_, f) in fields {
                skip(arena, *f, r, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Decodes one value of `node` into `col`.
fn value(
    arena: &Arena,
    node: usize,
    col: &mut ColumnBuilder,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<(), DecodeErrorKind> {
    if depth > MAX_DEPTH {
        return Err(DecodeErrorKind::TooDeep(MAX_DEPTH));
    }
    let mismatch = |col: &ColumnBuilder, found| DecodeErrorKind::Mismatch {
        expected: crate::schema::format_type(col.data_type()),
        found,
    };
    let v = match &arena.nodes[node] {
        Node::Null => return col.append_null(),
        Node::Boolean => match r.take(1)?[0] {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            _ => return Err(r.err("boolean byte is not 0 or 1")),
        },
        Node::Int | Node::Long => Val::Int(r.long()?),
        Node::Float => {
            let b = r.take(4)?;
            Val::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        Node::Double => {
            let b = r.take(8)?;
            Val::Float(f64::from_le_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ]))
        }
        Node::Bytes | Node::String | Node::Fixed(_) => {
            let b = match &arena.nodes[node] {
                Node::Fixed(n) => r.take(*n)?,
                _ => r.bytes()?,
            };
            Val::Text(b)
        }
        Node::Date => {
            let d = r.long()?;
            Val::Date(i32::try_from(d).map_err(|_| r.err("date out of range"))?)
        }
        Node::Timestamp(unit) => Val::Time(r.long()?, *unit),
        Node::Decimal { scale, fixed } => {
            let b = match fixed {
                Some(n) => r.take(*n)?,
                None => r.bytes()?,
            };
            Val::Decimal(
                twos_complement(b).ok_or_else(|| r.err("decimal over 16 bytes"))?,
                *scale,
            )
        }
        Node::Enum(symbols) => {
            let i = r.branch(symbols.len())?;
            Val::Text(&symbols[i])
        }
        Node::Union(branches) => {
            let b = r.branch(branches.len())?;
            return value(arena, branches[b], col, r, depth + 1);
        }
        Node::Array(item) => {
            let zero = arena.zero_size[*item];
            let Some(items) = col.list_item() else {
                return Err(mismatch(col, "an array"));
            };
            let mut index = 0usize;
            loop {
                let n = r.block(zero)?;
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    value(arena, *item, items, r, depth + 1)
                        .map_err(|e| e.within(format_args!("[{index}]")))?;
                    index += 1;
                }
            }
            return col.list_end();
        }
        Node::Map(val) => {
            let Some(entries) = col.list_item() else {
                return Err(mismatch(col, "a map"));
            };
            if !matches!(entries.struct_children(), Some((f, _)) if f.len() == 2) {
                return Err(mismatch(col, "a map (read into list<struct<key, value>>)"));
            }
            loop {
                let n = r.block(false)?;
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    let key = r.bytes()?;
                    let Some((_, kv)) = entries.struct_children() else {
                        return Err(r.err("map entry is not a struct"));
                    };
                    kv[0].append(Val::Text(key)).map_err(|e| e.within(".key"))?;
                    value(arena, *val, &mut kv[1], r, depth + 1).map_err(|e| {
                        e.within(format_args!("[{:?}]", String::from_utf8_lossy(key)))
                    })?;
                    entries.struct_end()?;
                }
            }
            return col.list_end();
        }
        Node::Record(fields) => {
            if col.shape() != Shape::Struct {
                return Err(mismatch(col, "a record"));
            }
            let row = col.len();
            for (name, f) in fields {
                let Some((names, children)) = col.struct_children() else {
                    return Err(mismatch(col, "a record"));
                };
                match names.iter().position(|n| n.name() == name) {
                    Some(i) if children[i].len() == row => {
                        value(arena, *f, &mut children[i], r, depth + 1)
                            .map_err(|e| e.within(format_args!(".{name}")))?;
                    }
                    _ => skip(arena, *f, r, depth + 1)?,
                }
            }
            return col.struct_end();
        }
    };
    col.append(v)
}

/// A big-endian two's-complement integer of at most 16 bytes.
fn twos_complement(b: &[u8]) -> Option<i128> {
    if b.len() > 16 {
        return None;
    }
    if b.is_empty() {
        return Some(0);
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(full))
}

#[cfg(test)]
#[path = "avro_tests.rs"]
mod tests;
