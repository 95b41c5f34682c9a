//! A byte-level JSON scanner: the primitives the JSON decoder walks a document with.
//!
//! It never builds a tree. Strings come back as slices of the input when they hold no escape
//! (the common case) and are unescaped into a caller's reusable scratch buffer otherwise;
//! numbers come back as their text, for the column type to parse exactly; values nobody asked
//! for are skipped by [`Scanner::skip_value`], which still checks their grammar fully (with an
//! explicit stack, so hostile nesting cannot overflow ours).
//!
//! Not checked in skipped strings: that they are valid UTF-8. String columns check what they
//! keep; bytes nobody reads are not worth a pass.

use super::error::DecodeErrorKind;

/// How deeply [`Scanner::skip_value`] follows nesting (64 bits × 16 words of bracket kinds).
pub(crate) const MAX_SKIP_DEPTH: usize = 1024;

/// A position in one JSON document.
pub(crate) struct Scanner<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

/// Finds the first `"`, `\` or control byte at or after `i`, eight bytes at a time.
#[inline(always)]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // Zero-byte tests for `"` and `\` and a below-0x20 test; the lowest flagged byte of
        // each is exact, so the lowest of their union is the first special byte.
        let q = x ^ (ONES * u64::from(b'"'));
        let s = x ^ (ONES * u64::from(b'\\'));
        let hits = (q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hits = hits & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20 {
        i += 1;
    }
    i
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Scanner<'a> {
        Scanner { buf, pos: 0 }
    }

    /// An error at the current position.
    #[cold]
    #[inline(never)]
    pub(crate) fn err(&self, message: &'static str) -> DecodeErrorKind {
        DecodeErrorKind::syntax("JSON", self.buf, self.pos, message)
    }

    /// Skips whitespace and returns the next byte (0 at the end).
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> u8 {
        while let Some(&c) = self.buf.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return c;
            }
            self.pos += 1;
        }
        0
    }

    /// Consumes `c` after whitespace, or fails with `message`.
    #[inline(always)]
    pub(crate) fn expect(&mut self, c: u8, message: &'static str) -> Result<(), DecodeErrorKind> {
        if self.peek() == c {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    /// Consumes the literal `word` (`true`, `false`, `null`) at the current position.
    pub(crate) fn literal(&mut self, word: &'static [u8]) -> Result<(), DecodeErrorKind> {
        if self.buf.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    /// Reads a number at the current position and returns its text, checked against the JSON
    /// grammar (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
    #[inline(always)]
    pub(crate) fn number(&mut self) -> Result<&'a [u8], DecodeErrorKind> {
        let b = self.buf;
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_len = i - int_start;
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            self.pos = int_start;
            return Err(self.err("malformed number"));
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == s {
                self.pos = i;
                return Err(self.err("malformed number: no digits after '.'"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == s {
                self.pos = i;
                return Err(self.err("malformed number: no exponent digits"));
            }
        }
        self.pos = i;
        Ok(&b[start..i])
    }

    /// Reads and parses an integer of at most 18 digits at the current position in one pass,
    /// or returns `None` (moving nothing) for any other number, which [`Self::number`] then
    /// reads.
    #[inline(always)]
    pub(crate) fn plain_integer(&mut self) -> Option<i64> {
        let b = self.buf;
        let mut i = self.pos;
        let neg = b.get(i) == Some(&b'-');
        i += usize::from(neg);
        let start = i;
        let mut v: i64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(i64::from(d));
            i += 1;
        }
        let n = i - start;
        let plain = n > 0
            && n <= 18
            && (n == 1 || b[start] != b'0')
            && !matches!(b.get(i), Some(b'.' | b'e' | b'E'));
        if !plain {
            return None;
        }
        self.pos = i;
        Some(if neg { -v } else { v })
    }

    /// Reads a string at the current position (which holds `"`): the raw slice when it has no
    /// escapes, else its unescaped bytes in `scratch`.
    #[inline(always)]
    pub(crate) fn string<'s>(
        &mut self,
        scratch: &'s mut Vec<u8>,
    ) -> Result<&'s [u8], DecodeErrorKind>
    where
        'a: 's,
    {
        let b = self.buf;
        let start = self.pos + 1;
        let i = find_special(b, start);
        match b.get(i) {
            Some(b'"') => {
                self.pos = i + 1;
                Ok(&b[start..i])
            }
            Some(b'\\') => {
                scratch.clear();
                scratch.extend_from_slice(&b[start..i]);
                self.pos = i;
                self.unescape(scratch)?;
                Ok(&scratch[..])
            }
            Some(_) => {
                self.pos = i;
                Err(self.err("control character in a string"))
            }
            None => {
                self.pos = b.len();
                Err(self.err("unterminated string"))
            }
        }
    }

    /// Unescapes from the current position (at a `\`) to the closing quote into `out`.
    #[inline(never)]
    fn unescape(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeErrorKind> {
        let b = self.buf;
        loop {
            let i = find_special(b, self.pos);
            out.extend_from_slice(&b[self.pos..i.min(b.len())]);
            self.pos = i;
            match b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => {}
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
            let c = match b.get(i + 1) {
                Some(b'"') => b'"',
                Some(b'\\') => b'\\',
                Some(b'/') => b'/',
                Some(b'b') => 0x08,
                Some(b'f') => 0x0c,
                Some(b'n') => b'\n',
                Some(b'r') => b'\r',
                Some(b't') => b'\t',
                Some(b'u') => {
                    let mut cp = hex4(&b[i + 2..]).ok_or_else(|| self.err("bad \\u escape"))?;
                    self.pos = i + 6;
                    if (0xDC00..0xE000).contains(&cp) {
                        return Err(self.err("unpaired low surrogate"));
                    }
                    if (0xD800..0xDC00).contains(&cp) {
                        // A high surrogate: the low half must follow as another \u escape.
                        let low = match b.get(self.pos..self.pos + 2) {
                            Some(b"\\u") => hex4(&b[self.pos + 2..]),
                            _ => None,
                        };
                        match low {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                self.pos += 6;
                            }
                            _ => return Err(self.err("unpaired high surrogate")),
                        }
                    }
                    let ch = char::from_u32(cp).ok_or_else(|| self.err("bad \\u escape"))?;
                    let mut enc = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut enc).as_bytes());
                    continue;
                }
                None => {
                    self.pos = b.len();
                    return Err(self.err("unterminated string"));
                }
                _ => {
                    self.pos = i + 1;
                    return Err(self.err("bad escape"));
                }
            };
            out.push(c);
            self.pos = i + 2;
        }
    }

    /// Skips a string at the current position (which holds `"`).
    #[inline]
    fn skip_string(&mut self) -> Result<(), DecodeErrorKind> {
        let b = self.buf;
        let mut i = self.pos + 1;
        loop {
            i = find_special(b, i);
            match b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                // Any escaped byte is skipped here; its validity only matters when read.
                Some(b'\\') => i += 2,
                Some(_) => {
                    self.pos = i;
                    return Err(self.err("control character in a string"));
                }
                None => {
                    self.pos = b.len();
                    return Err(self.err("unterminated string"));
                }
            }
        }
    }

    /// Skips one value of any kind, checking its grammar, without recursion. Kept out of
    /// line: its bracket stack would otherwise weigh on every caller's frame.
    #[inline(never)]
    pub(crate) fn skip_value(&mut self) -> Result<(), DecodeErrorKind> {
        // One bit per open bracket: 1 for an object, 0 for an array.
        let mut stack = [0u64; MAX_SKIP_DEPTH / 64];
        let mut depth = 0usize;
        'value: loop {
            match self.peek() {
                b'{' => {
                    self.pos += 1;
                    if depth == MAX_SKIP_DEPTH {
                        return Err(DecodeErrorKind::TooDeep(MAX_SKIP_DEPTH));
                    }
                    stack[depth / 64] |= 1 << (depth % 64);
                    depth += 1;
                    if self.peek() == b'}' {
                        self.pos += 1;
                        depth -= 1;
                    } else {
                        self.member_key()?;
                        continue 'value;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    if depth == MAX_SKIP_DEPTH {
                        return Err(DecodeErrorKind::TooDeep(MAX_SKIP_DEPTH));
                    }
                    stack[depth / 64] &= !(1 << (depth % 64));
                    depth += 1;
                    if self.peek() == b']' {
                        self.pos += 1;
                        depth -= 1;
                    } else {
                        continue 'value;
                    }
                }
                b'"' => self.skip_string()?,
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(self.err("expected a value")),
            }
            // After a value: close brackets until a ',' leads to the next value.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = stack[(depth - 1) / 64] & (1 << ((depth - 1) % 64)) != 0;
                match (self.peek(), in_object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.peek();
                        self.member_key()?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    (_, true) => return Err(self.err("expected ',' or '}'")),
                    (_, false) => return Err(self.err("expected ',' or ']'")),
                }
            }
        }
    }

    /// Skips `"key" :` inside an object.
    fn member_key(&mut self) -> Result<(), DecodeErrorKind> {
        if self.peek() != b'"' {
            return Err(self.err("expected a string key"));
        }
        self.skip_string()?;
        self.expect(b':', "expected ':'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(json: &str) -> Result<Vec<u8>, String> {
        let mut s = Scanner::new(json.as_bytes());
        let mut scratch = Vec::new();
        s.string(&mut scratch)
            .map(<[u8]>::to_vec)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(string(r#""plain""#).unwrap(), b"plain");
        assert_eq!(
            string(r#""a\"b\\c\/d\n\t\r\b\f""#).unwrap(),
            b"a\"b\\c/d\n\t\r\x08\x0c"
        );
        assert_eq!(string(r#""\u00e9\u4e2d""#).unwrap(), "é中".as_bytes());
        assert_eq!(string(r#""\ud83d\ude00!""#).unwrap(), "😀!".as_bytes());
        assert_eq!(
            string("\"naïve 😀 text\"").unwrap(),
            "naïve 😀 text".as_bytes()
        );
        assert_eq!(
            string(r#""0123456789abcdef\"x""#).unwrap(),
            b"0123456789abcdef\"x"
        );
        for (bad, why) in [
            (r#""\ud83d""#, "unpaired high surrogate"),
            (r#""\ud83dx""#, "unpaired high surrogate"),
            (r#""\ude00""#, "unpaired low surrogate"),
            (r#""\u12""#, "bad \\u escape"),
            (r#""\x""#, "bad escape"),
            ("\"a\nb\"", "control character"),
            (r#""open"#, "unterminated string"),
            (r#""ab\"#, "unterminated string"),
        ] {
            let e = string(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn plain_integers_are_parsed_in_one_pass() {
        for (text, want) in [
            ("0", Some(0)),
            ("-12,", Some(-12)),
            ("123456789012345678", Some(123456789012345678)),
        ] {
            let mut s = Scanner::new(text.as_bytes());
            assert_eq!(s.plain_integer(), want, "{text}");
        }
        for text in ["01", "1.5", "2e3", "-", "1234567890123456789", "-x"] {
            let mut s = Scanner::new(text.as_bytes());
            assert_eq!(s.plain_integer(), None, "{text}");
            assert_eq!(s.pos, 0);
        }
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for ok in ["0", "-0", "12", "-3.25", "1e5", "1E+5", "2.5e-3"] {
            let mut s = Scanner::new(ok.as_bytes());
            assert_eq!(s.number().unwrap(), ok.as_bytes());
        }
        for bad in ["01", "-", "1.", "1e", ".5", "-a"] {
            let mut s = Scanner::new(bad.as_bytes());
            assert!(s.number().is_err(), "{bad}");
        }
    }

    #[test]
    fn skipping_checks_grammar() {
        for ok in [
            r#"{"a": [1, 2, {"b": null}], "c": "x\"y", "d": {}}"#,
            "[]",
            " [ [ ] , { } ] ",
            "true",
            "-1.5e3",
        ] {
            let mut s = Scanner::new(ok.as_bytes());
            s.skip_value().unwrap();
            assert_eq!(s.peek(), 0, "{ok}");
        }
        for bad in [
            r#"{"a": [1, 2}"#,
            r#"{"a" 1}"#,
            r#"{1: 2}"#,
            "[1,,2]",
            "[1 2]",
            "[tru]",
            "{\"a\":1,}",
            "[",
            "",
        ] {
            let mut s = Scanner::new(bad.as_bytes());
            assert!(s.skip_value().is_err(), "{bad}");
        }
        let deep = "[".repeat(MAX_SKIP_DEPTH + 1);
        let mut s = Scanner::new(deep.as_bytes());
        assert!(matches!(s.skip_value(), Err(DecodeErrorKind::TooDeep(_))));
        let ok_deep = "[".repeat(MAX_SKIP_DEPTH) + &"]".repeat(MAX_SKIP_DEPTH);
        let mut s = Scanner::new(ok_deep.as_bytes());
        s.skip_value().unwrap();
    }

    #[test]
    fn special_byte_search_is_exact() {
        let text = b"abcdefgh\x01ijklmnop\"qrst\\";
        assert_eq!(find_special(text, 0), 8);
        assert_eq!(find_special(text, 9), 17);
        assert_eq!(find_special(text, 18), 22);
        // Bytes >= 0x80 (UTF-8) are not special.
        let text = "ééééé\"".as_bytes();
        assert_eq!(find_special(text, 0), 10);
    }
}
