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
use super::swar::{self, load8};

/// How deeply [`Scanner::skip_value`] follows nesting (64 bits × 16 words of bracket kinds).
pub(crate) const MAX_SKIP_DEPTH: usize = 1024;

/// A position in one JSON document.
pub(crate) struct Scanner<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

/// Flags (in each byte's high bit) the bytes of `x` that are `"`, `\` or below 0x20; the
/// lowest flag is exact (see [`swar`]).
#[inline(always)]
fn special_bytes(x: u64) -> u64 {
    swar::equal(x, b'"') | swar::equal(x, b'\\') | swar::below(x, 0x20)
}

/// Finds the first `"`, `\` or control byte at or after `i` (or `b.len()`), eight bytes at a
/// time.
#[inline(always)]
fn find_special(b: &[u8], i: usize) -> usize {
    find_special_ascii(b, i).0
}

/// [`find_special`], also telling whether every byte it passed over is ASCII (`true` is
/// exact; `false` may also come from bytes just after the one found), so that a string column
/// need not check UTF-8 in a second pass.
#[inline(always)]
fn find_special_ascii(b: &[u8], mut i: usize) -> (usize, bool) {
    use swar::HIGH;
    let mut seen = 0u64;
    // Whole words first; `chunks_exact` checks the length once per word, not the range.
    let Some(rest) = b.get(i..) else {
        return (b.len(), false);
    };
    for chunk in rest.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        seen |= x;
        let hits = special_bytes(x);
        if hits != 0 {
            return (i + swar::first(hits), seen & HIGH == 0);
        }
        i += 8;
    }
    // Fewer than eight bytes left: the buffer's last eight, shifted so that byte `i` comes
    // first. The zeros shifted in look like control bytes, which is why the result is capped
    // at the end. (A document's last string is usually this close to its end.)
    if i < b.len() && b.len() >= 8 {
        let base = b.len() - 8;
        if let Some(x) = load8(b, base) {
            let x = x >> ((i - base) * 8);
            let hits = special_bytes(x);
            let at = (i + swar::first(hits)).min(b.len());
            return (at, (seen | x) & HIGH == 0);
        }
    }
    let mut ascii = seen & HIGH == 0;
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20 {
        ascii &= b[i] < 0x80;
        i += 1;
    }
    (i, ascii)
}

/// The value of the leading decimal digits of `x` (first byte lowest) and how many there are
/// (0 to 8).
#[inline(always)]
fn digits8(x: u64) -> (u64, u32) {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let d = x ^ 0x3030_3030_3030_3030;
    // A byte is a digit when its high nibble was 3 and its low nibble is at most 9; adding 6
    // carries into the high nibble exactly for 10..15. A carry out of a byte only reaches
    // later bytes, so the first flagged byte is exact.
    let bad = (d.wrapping_add(0x0606_0606_0606_0606) | d) & HIGH_NIBBLES;
    let n = bad.trailing_zeros() / 8;
    if n == 0 {
        return (0, 0);
    }
    // Keep the `n` digits and move them to the top, so the bytes below read as leading zeros.
    let d = (d & LOW) << (64 - 8 * n);
    // Pairs, then quads, then the eight: each step folds neighbours with one multiply.
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    let d = (d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF;
    (d, n)
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
        // Most tokens follow their predecessor directly: one compare for them.
        // Most tokens follow their predecessor directly or after one space (`": "`, `", "`):
        // one or two compares for them.
        match self.buf.get(self.pos) {
            Some(&c) if c > b' ' => return c,
            Some(b' ') => {
                if let Some(&c) = self.buf.get(self.pos + 1) {
                    if c > b' ' {
                        self.pos += 1;
                        return c;
                    }
                }
            }
            _ => {}
        }
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
        const POW10: [u64; 9] = [
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
        ];
        let b = self.buf;
        let neg = b.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(neg);
        let mut i = start;
        let mut v: u64 = 0;
        // Eight digits per step while eight bytes remain, then byte by byte.
        loop {
            let Some(x) = load8(b, i) else {
                while let Some(&c) = b.get(i) {
                    let d = c.wrapping_sub(b'0');
                    if d > 9 || i - start > 18 {
                        break;
                    }
                    v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                    i += 1;
                }
                break;
            };
            let (d, n) = digits8(x);
            v = v.wrapping_mul(POW10[n as usize]).wrapping_add(d);
            i += n as usize;
            if n < 8 || i - start > 18 {
                break;
            }
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
        // At most 18 digits: below 10^18 < 2^63.
        let v = v as i64;
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
        self.string_ascii(scratch).map(|(text, _)| text)
    }

    /// [`Self::string`], and whether the string is known to be ASCII (`false`: unknown).
    #[inline(always)]
    pub(crate) fn string_ascii<'s>(
        &mut self,
        scratch: &'s mut Vec<u8>,
    ) -> Result<(&'s [u8], bool), DecodeErrorKind>
    where
        'a: 's,
    {
        let b = self.buf;
        let start = self.pos + 1;
        let (i, ascii) = find_special_ascii(b, start);
        match b.get(i) {
            Some(b'"') => {
                self.pos = i + 1;
                Ok((&b[start..i], ascii))
            }
            Some(b'\\') => {
                scratch.clear();
                scratch.extend_from_slice(&b[start..i]);
                self.pos = i;
                self.unescape(scratch)?;
                Ok((&scratch[..], false))
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
    fn plain_integers_agree_with_std_at_every_length_and_alignment() {
        let digits = "9876543210123456789012";
        for len in 1..=digits.len() {
            for sign in ["", "-"] {
                for tail in ["", ",", "}", "  ", ".5", "e3", "x", ",\"k\": 1}"] {
                    let text = format!("{sign}{}{tail}", &digits[..len]);
                    let mut s = Scanner::new(text.as_bytes());
                    let want = (len <= 18 && !tail.starts_with(['.', 'e']))
                        .then(|| format!("{sign}{}", &digits[..len]).parse::<i64>().unwrap());
                    assert_eq!(s.plain_integer(), want, "{text:?}");
                    let moved = if want.is_some() { sign.len() + len } else { 0 };
                    assert_eq!(s.pos, moved, "{text:?}");
                }
            }
        }
        // Zeros inside and at the front, and digits next to bytes just outside '0'..='9'.
        for (text, want) in [
            ("10000000000000000", Some(10_000_000_000_000_000)),
            ("100000001/", Some(100_000_001)),
            ("12345678:", Some(12_345_678)),
            ("0/", Some(0)),
            ("00000000", None),
            ("-0", Some(0)),
        ] {
            let mut s = Scanner::new(text.as_bytes());
            assert_eq!(s.plain_integer(), want, "{text}");
        }
    }

    #[test]
    fn special_byte_search_near_the_end() {
        // Every start position and every special-byte position in buffers shorter and longer
        // than one word, against a byte-by-byte search.
        for len in 0..20usize {
            for special in 0..=len {
                let mut text = vec![b'a'; len];
                if special < len {
                    text[special] = b'"';
                }
                for start in 0..=len {
                    let want = (start..len).find(|&i| text[i] == b'"').unwrap_or(len);
                    assert_eq!(find_special(&text, start), want, "{len} {special} {start}");
                    let mut utf8 = text.clone();
                    utf8.extend_from_slice("é".as_bytes());
                    let (at, ascii) = find_special_ascii(&utf8, start);
                    let found = want < len;
                    assert_eq!(at, if found { want } else { utf8.len() });
                    // Claimed ASCII only when it is.
                    assert!(
                        !ascii || utf8[start..at].is_ascii(),
                        "{len} {special} {start}"
                    );
                    if !found {
                        assert!(!ascii, "{len} {start}");
                    }
                }
            }
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
