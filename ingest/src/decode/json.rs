//! The JSON decoder: walks each document once and sends the values the columns' pointers
//! name straight into their builders.
//!
//! The columns' pointers are compiled into a trie ([`Node`]): at each level, the member keys
//! (or array indexes) some column needs below. Walking an object, each member's key is looked
//! up among its node's children, trying first the child after the last one matched (documents
//! of one topic usually keep their key order, so this is one comparison per key); members no
//! column needs are skipped by the scanner without being materialized. A value a column wants
//! is converted from its text as it is read: a number from its digits, a string from the input
//! slice or, when it holds escapes, from the decoder's scratch buffer.
//!
//! Nested columns (`list<...>`, `struct<...>`) are filled by walking the array or object into
//! the item or field builders. A string or binary column given an object or array receives
//! its raw JSON text, so a column can keep a sub-document whole.
//!
//! The document must be an object, as the columns' pointers name its members; any other JSON
//! value (an array, a string, a number, `true`, `null`) is refused with an error, unless a
//! column reads the whole document (pointer `""`) or an array index at the top (`/0`).
//!
//! When a key appears twice in an object, the last occurrence wins, as in most JSON readers
//! (JavaScript's `JSON.parse`, Python's `json`, serde_json's `Value`, jq): a repeated key's
//! columns are cut back to the row's start and read again. Every occurrence is still read, so
//! an earlier one that does not fit its column fails the record. A repeated key costs nothing
//! on the usual path: the check that finds it (is the column already filled for this row?) is
//! the one that used to skip it.

use super::builder::{ColumnBuilder, Shape, Val};
use super::error::{DecodeErrorKind, Fail};
use super::json_scan::Scanner;
use super::swar::load8;

/// One level of the pointer trie.
#[derive(Debug, Default)]
struct Node {
    /// Columns whose value is the value here.
    targets: Vec<usize>,
    /// Member keys / array indexes some column reads below here.
    children: Vec<Child>,
    /// The child matched last, to try the next one first.
    hint: usize,
    /// Every column at or below this node, to reset them all when the key leading here
    /// repeats (its last occurrence wins, whatever the first one held).
    subtree: Vec<usize>,
}

#[derive(Debug)]
struct Child {
    key: Box<[u8]>,
    /// The key needs no escaping in JSON, so [`Node::predict`] may match it byte for byte.
    plain: bool,
    /// The key as an array index, when it is one (`0`, `17`: no sign, no leading zero).
    index: Option<usize>,
    /// For a plain key of at most seven bytes: the key and its closing quote as the low bytes
    /// of a little-endian word, and the mask of those bytes, so [`Node::predict`] matches it
    /// with one load and one compare.
    word: Option<(u64, u64)>,
    /// The same with the `:` that follows the key in compact documents (keys of at most six
    /// bytes), so that the usual member needs no separate colon check.
    word_colon: Option<(u64, u64)>,
    node: Node,
}

/// The [`Child::word`] of `key` followed by `tail` (`"` or `":`).
fn key_word(key: &[u8], plain: bool, tail: &[u8]) -> Option<(u64, u64)> {
    let len = key.len() + tail.len();
    if !plain || len > 8 {
        return None;
    }
    let mut bytes = [0u8; 8];
    bytes[..key.len()].copy_from_slice(key);
    bytes[key.len()..len].copy_from_slice(tail);
    let mask = u64::MAX >> (8 * (8 - len));
    Some((u64::from_le_bytes(bytes), mask))
}

impl Node {
    fn insert(&mut self, tokens: &[String], column: usize) {
        self.subtree.push(column);
        let Some((first, rest)) = tokens.split_first() else {
            self.targets.push(column);
            return;
        };
        let pos = match self
            .children
            .iter()
            .position(|c| *c.key == *first.as_bytes())
        {
            Some(p) => p,
            None => {
                let index = (!first.is_empty()
                    && first.bytes().all(|b| b.is_ascii_digit())
                    && (first == "0" || !first.starts_with('0')))
                .then(|| first.parse().ok())
                .flatten();
                let plain = !first.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
                self.children.push(Child {
                    key: first.as_bytes().into(),
                    plain,
                    index,
                    word: key_word(first.as_bytes(), plain, b"\""),
                    word_colon: key_word(first.as_bytes(), plain, b"\":"),
                    node: Node::default(),
                });
                self.children.len() - 1
            }
        };
        self.children[pos].node.insert(rest, column);
    }

    /// At a member key's opening quote: if the key is the child expected next (the one after
    /// the last match), returns it, the position after the closing quote (or after the colon,
    /// when it follows at once) and whether the colon was consumed, without scanning the key as
    /// a string. Only keys with no `"`, `\\` or control byte are predicted, so equal bytes
    /// followed by a quote are that exact key.
    #[inline(always)]
    fn predict(&mut self, buf: &[u8], pos: usize) -> Option<(usize, usize, bool)> {
        let i = if self.hint < self.children.len() {
            self.hint
        } else {
            0
        };
        let child = self.children.get(i)?;
        let start = pos + 1;
        let end = start + child.key.len();
        let hit = match (child.word, load8(buf, start)) {
            (Some((word, mask)), Some(x)) => {
                if let Some((wc, mc)) = child.word_colon {
                    if x & mc == wc {
                        self.hint = i + 1;
                        return Some((i, end + 2, true));
                    }
                }
                x & mask == word
            }
            _ => {
                let k = &child.key;
                child.plain
                    && buf.get(end) == Some(&b'"')
                    && buf
                        .get(start..end)
                        .is_some_and(|got| got.iter().zip(k.iter()).all(|(a, b)| a == b))
            }
        };
        if hit {
            self.hint = i + 1;
            return Some((i, end + 1, false));
        }
        None
    }

    #[inline]
    fn find(&mut self, key: &[u8]) -> Option<usize> {
        let n = self.children.len();
        let mut i = self.hint;
        for _ in 0..n {
            if i >= n {
                i = 0;
            }
            let k = &self.children[i].key;
            // Keys are short: a byte loop beats a call to memcmp.
            if k.len() == key.len() && k.iter().zip(key).all(|(a, b)| a == b) {
                self.hint = i + 1;
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

/// Decodes JSON documents into the columns whose sources are JSON pointers.
#[derive(Debug)]
pub(crate) struct JsonDecoder {
    root: Node,
    /// Whether a document must be an object: no column reads the whole document or an array
    /// index at the top.
    objects_only: bool,
    scratch: Vec<u8>,
    key_scratch: Vec<u8>,
}

impl JsonDecoder {
    /// A decoder filling `targets`: (column index, pointer tokens).
    pub(crate) fn new<'t>(targets: impl IntoIterator<Item = (usize, &'t [String])>) -> Self {
        let mut root = Node::default();
        for (column, tokens) in targets {
            root.insert(tokens, column);
        }
        let objects_only =
            root.targets.is_empty() && root.children.iter().all(|c| c.index.is_none());
        JsonDecoder {
            root,
            objects_only,
            scratch: Vec::new(),
            key_scratch: Vec::new(),
        }
    }

    /// Decodes one document. Columns it names but the document lacks are left short (one row
    /// behind `row`) for the caller to fill with nulls.
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        cols: &mut [ColumnBuilder],
        row: usize,
    ) -> Result<(), Fail> {
        let mut s = Scanner::new(buf);
        if self.objects_only && s.peek() != b'{' {
            return Err((None, not_an_object(&mut s)));
        }
        let mut ctx = Ctx {
            scratch: &mut self.scratch,
            key_scratch: &mut self.key_scratch,
        };
        walk(&mut self.root, &mut s, cols, row, &mut ctx)?;
        if s.peek() != 0 {
            let extra = buf.len() - s.pos;
            return Err((
                None,
                DecodeErrorKind::Trailing {
                    format: "JSON",
                    extra,
                },
            ));
        }
        Ok(())
    }
}

struct Ctx<'x> {
    scratch: &'x mut Vec<u8>,
    key_scratch: &'x mut Vec<u8>,
}

/// The error for a document that is not an object: its syntax error if it is not even JSON,
/// otherwise what kind of value it is.
#[cold]
fn not_an_object(s: &mut Scanner<'_>) -> DecodeErrorKind {
    let found = match s.peek() {
        b'[' => "an array",
        b'"' => "a string",
        b'-' | b'0'..=b'9' => "a number",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => return s.err("expected a value"),
    };
    if let Err(e) = s.skip_value() {
        return e;
    }
    DecodeErrorKind::Mismatch {
        expected: "a JSON object".to_owned(),
        found,
    }
}

/// Cuts every column below `node` back to `row` values: the key leading to `node` repeats, and
/// its last occurrence is the one that counts.
#[cold]
fn forget_earlier(node: &Node, cols: &mut [ColumnBuilder], row: usize) {
    for &col in &node.subtree {
        cols[col].truncate(row);
    }
}

fn walk(
    node: &mut Node,
    s: &mut Scanner<'_>,
    cols: &mut [ColumnBuilder],
    row: usize,
    ctx: &mut Ctx<'_>,
) -> Result<(), Fail> {
    let c = s.peek();
    if c == 0 {
        return Err((None, s.err("expected a value")));
    }
    if !node.targets.is_empty() {
        let start = s.pos;
        for &col in &node.targets {
            s.pos = start;
            value(s, &mut cols[col], ctx).map_err(|e| (Some(col), e))?;
        }
        if node.children.is_empty() {
            return Ok(());
        }
        s.pos = start;
    }
    match c {
        b'{' if !node.children.is_empty() => {
            s.pos += 1;
            if s.peek() == b'}' {
                s.pos += 1;
                return Ok(());
            }
            loop {
                if s.peek() != b'"' {
                    return Err((None, s.err("expected a string key")));
                }
                let found = match node.predict(s.buf, s.pos) {
                    Some((i, end, colon)) => {
                        s.pos = end;
                        if !colon {
                            s.expect(b':', "expected ':'").map_err(|e| (None, e))?;
                        }
                        Some(i)
                    }
                    None => {
                        let key = s.string(ctx.key_scratch).map_err(|e| (None, e))?;
                        let found = node.find(key);
                        s.expect(b':', "expected ':'").map_err(|e| (None, e))?;
                        found
                    }
                };
                match found {
                    Some(i) => {
                        let child = &mut node.children[i].node;
                        // A leaf with one column (the usual case) is read in place.
                        if let ([col], []) = (&child.targets[..], &child.children[..]) {
                            let col = *col;
                            if cols[col].len() > row {
                                // A repeated key: the last occurrence wins.
                                forget_earlier(child, cols, row);
                            }
                            leaf(s, &mut cols[col], ctx).map_err(|e| (Some(col), e))?;
                        } else {
                            if child.subtree.iter().any(|&c| cols[c].len() > row) {
                                forget_earlier(child, cols, row);
                            }
                            walk(child, s, cols, row, ctx)?;
                        }
                    }
                    None => s.skip_value().map_err(|e| (None, e))?,
                }
                match s.peek() {
                    b',' => s.pos += 1,
                    b'}' => {
                        s.pos += 1;
                        return Ok(());
                    }
                    _ => return Err((None, s.err("expected ',' or '}'"))),
                }
            }
        }
        b'[' if node.children.iter().any(|c| c.index.is_some()) => {
            s.pos += 1;
            if s.peek() == b']' {
                s.pos += 1;
                return Ok(());
            }
            let mut index = 0usize;
            loop {
                match node.children.iter().position(|c| c.index == Some(index)) {
                    Some(i) => walk(&mut node.children[i].node, s, cols, row, ctx)?,
                    None => s.skip_value().map_err(|e| (None, e))?,
                }
                index += 1;
                match s.peek() {
                    b',' => s.pos += 1,
                    b']' => {
                        s.pos += 1;
                        return Ok(());
                    }
                    _ => return Err((None, s.err("expected ',' or ']'"))),
                }
            }
        }
        // A scalar (or the wrong container) where the pointers go deeper: the columns below
        // are absent from this document.
        _ => s.skip_value().map_err(|e| (None, e)),
    }
}

/// Reads one value into a column: strings and numbers in line (the hot path), the rest by
/// [`value`].
#[inline(always)]
fn leaf(
    s: &mut Scanner<'_>,
    col: &mut ColumnBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeErrorKind> {
    match s.peek() {
        b'"' => match s.string_ascii(ctx.scratch)? {
            (text, true) => col.append_ascii(text),
            (text, false) => col.append(Val::Text(text)),
        },
        b'-' | b'0'..=b'9' => {
            if col.takes_i64() {
                if let Some(v) = s.plain_integer() {
                    col.push_i64(v);
                    return Ok(());
                }
            }
            let text = s.number()?;
            col.append(Val::Num(text))
        }
        _ => value(s, col, ctx),
    }
}

/// Reads one value into a column.
fn value(
    s: &mut Scanner<'_>,
    col: &mut ColumnBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeErrorKind> {
    match s.peek() {
        b'"' => {
            let text = s.string(ctx.scratch)?;
            col.append(Val::Text(text))
        }
        b'-' | b'0'..=b'9' => {
            let text = s.number()?;
            col.append(Val::Num(text))
        }
        b't' => {
            s.literal(b"true")?;
            col.append(Val::Bool(true))
        }
        b'f' => {
            s.literal(b"false")?;
            col.append(Val::Bool(false))
        }
        b'n' => {
            s.literal(b"null")?;
            col.append_null()
        }
        c @ (b'{' | b'[') => match (col.shape(), c) {
            (Shape::Struct, b'{') => object(s, col, ctx),
            (Shape::List, b'[') => array(s, col, ctx),
            (Shape::Text, _) => {
                let start = s.pos;
                s.skip_value()?;
                let raw = &s.buf[start..s.pos];
                col.append(Val::Text(raw))
            }
            (_, c) => {
                // Check the value is well formed before complaining about its kind.
                s.skip_value()?;
                Err(DecodeErrorKind::Mismatch {
                    expected: crate::schema::format_type(col.data_type()),
                    found: if c == b'{' { "an object" } else { "an array" },
                })
            }
        },
        _ => Err(s.err("expected a value")),
    }
}

/// Reads an object into a struct column: members matched to fields by name.
fn object(
    s: &mut Scanner<'_>,
    col: &mut ColumnBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeErrorKind> {
    let row = col.len();
    s.pos += 1;
    if s.peek() == b'}' {
        s.pos += 1;
        return col.struct_end();
    }
    let mut hint = 0usize;
    loop {
        if s.peek() != b'"' {
            return Err(s.err("expected a string key"));
        }
        let key = s.string(ctx.key_scratch)?;
        s.expect(b':', "expected ':'")?;
        let (fields, children) = col
            .struct_children()
            .ok_or_else(|| s.err("expected a struct"))?;
        let n = fields.len();
        let mut found = None;
        for k in 0..n {
            let i = (hint + k) % n;
            if fields[i].name().as_bytes() == key {
                found = Some(i);
                hint = i + 1;
                break;
            }
        }
        match found {
            Some(i) => {
                // A repeated member: the last occurrence wins.
                if children[i].len() > row {
                    children[i].truncate(row);
                }
                value(s, &mut children[i], ctx)
                    .map_err(|e| e.within(format_args!(".{}", fields[i].name())))?;
            }
            None => s.skip_value()?,
        }
        match s.peek() {
            b',' => s.pos += 1,
            b'}' => {
                s.pos += 1;
                return col.struct_end();
            }
            _ => return Err(s.err("expected ',' or '}'")),
        }
    }
}

/// Reads an array into a list column.
fn array(
    s: &mut Scanner<'_>,
    col: &mut ColumnBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeErrorKind> {
    s.pos += 1;
    let item = col.list_item().ok_or_else(|| s.err("expected a list"))?;
    if s.peek() == b']' {
        s.pos += 1;
        return col.list_end();
    }
    let mut index = 0usize;
    loop {
        value(s, item, ctx).map_err(|e| e.within(format_args!("[{index}]")))?;
        index += 1;
        match s.peek() {
            b',' => s.pos += 1,
            b']' => {
                s.pos += 1;
                return col.list_end();
            }
            _ => return Err(s.err("expected ',' or ']'")),
        }
    }
}
