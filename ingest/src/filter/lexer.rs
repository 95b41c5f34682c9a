//! Splits a filter expression into tokens, each with the byte offset it starts at (errors
//! point there).

use super::FilterError;

/// A token of the filter language.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A column name: bare (`count`, `user_id`) or double-quoted (`"order date"`).
    Ident(String),
    /// A keyword, upper-cased (`AND`, `IS`, `NULL`, ...): keywords are case-insensitive.
    Keyword(&'static str),
    /// `'text'`, with `''` standing for one quote.
    Str(String),
    /// An integer literal (no sign: `-` is its own token).
    Int(i64),
    /// A literal with a fraction or an exponent.
    Float(f64),
    /// `=`, `==`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, normalised to `=`, `!=`, ....
    Op(&'static str),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `-` (before a number).
    Minus,
    /// The end of the text.
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("column name {name:?}"),
            Tok::Keyword(k) => k.to_string(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Int(n) => n.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Op(op) => format!("'{op}'"),
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::Comma => "','".to_owned(),
            Tok::Minus => "'-'".to_owned(),
            Tok::End => "the end of the filter".to_owned(),
        }
    }
}

/// The words that are keywords rather than column names (a column named like one is written
/// in double quotes: `"in"`).
const KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "ILIKE", "BETWEEN", "TRUE", "FALSE",
];

/// The tokens of `text`, each with the byte offset it starts at; the last is [`Tok::End`].
pub(super) fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' | b')' | b',' | b'-' => {
                let tok = match c {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b',' => Tok::Comma,
                    _ => Tok::Minus,
                };
                out.push((tok, start));
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'=', Some(b'=')) => ("=", 2),
                    (b'=', _) => ("=", 1),
                    (b'!', Some(b'=')) => ("!=", 2),
                    (b'<', Some(b'>')) => ("!=", 2),
                    (b'<', Some(b'=')) => ("<=", 2),
                    (b'<', _) => ("<", 1),
                    (b'>', Some(b'=')) => (">=", 2),
                    (b'>', _) => (">", 1),
                    _ => {
                        return Err(FilterError::syntax(
                            text,
                            start,
                            "'!' alone is not an operator: write NOT, or != for 'not equal'",
                        ))
                    }
                };
                out.push((Tok::Op(op), start));
                i += len;
            }
            b'\'' => {
                let (s, end) = quoted(text, start, b'\'')?;
                out.push((Tok::Str(s), start));
                i = end;
            }
            b'"' => {
                let (s, end) = quoted(text, start, b'"')?;
                if s.is_empty() {
                    return Err(FilterError::syntax(text, start, "empty column name \"\""));
                }
                out.push((Tok::Ident(s), start));
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = number(text, start)?;
                out.push((tok, start));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = text[start..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map_or(text.len(), |n| start + n);
                let word = &text[start..end];
                let upper = word.to_ascii_uppercase();
                match KEYWORDS.iter().find(|k| **k == upper) {
                    Some(k) => out.push((Tok::Keyword(k), start)),
                    None => out.push((Tok::Ident(word.to_owned()), start)),
                }
                i = end;
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                let hint = match ch {
                    '&' | '|' => ": write AND / OR",
                    '"' | '\'' => "",
                    _ if !ch.is_ascii() => {
                        ": quote a column name with other characters in double quotes (\"prix €\")"
                    }
                    _ => "",
                };
                return Err(FilterError::syntax(
                    text,
                    start,
                    format!("unexpected character {ch:?}{hint}"),
                ));
            }
        }
    }
    out.push((Tok::End, text.len()));
    Ok(out)
}

/// A `'string'` or `"name"` starting at `start`; a doubled quote stands for one. Returns the
/// text and the offset after the closing quote.
fn quoted(text: &str, start: usize, quote: u8) -> Result<(String, usize), FilterError> {
    let bytes = text.as_bytes();
    let mut s = String::new();
    let mut i = start + 1;
    let mut run = i;
    loop {
        match bytes.get(i) {
            None => {
                let what = if quote == b'\'' {
                    "string"
                } else {
                    "column name"
                };
                return Err(FilterError::syntax(
                    text,
                    start,
                    format!("this {what} is not closed (a quote inside is written twice)"),
                ));
            }
            Some(&b) if b == quote => {
                s.push_str(&text[run..i]);
                if bytes.get(i + 1) == Some(&quote) {
                    s.push(quote as char);
                    i += 2;
                    run = i;
                } else {
                    return Ok((s, i + 1));
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// A number starting at `start`: digits, an optional fraction and exponent.
fn number(text: &str, start: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = text.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    let mut float = false;
    if bytes.get(i) == Some(&b'.') {
        float = true;
        i += 1;
        digits(&mut i);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        float = true;
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        digits(&mut i);
    }
    if bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return Err(FilterError::syntax(
            text,
            start,
            "a name cannot start with a digit: quote it in double quotes (\"1st\")",
        ));
    }
    let t = &text[start..i];
    let bad = || FilterError::syntax(text, start, format!("{t:?} is not a number"));
    let tok = if float {
        let f: f64 = t.parse().map_err(|_| bad())?;
        if !f.is_finite() {
            return Err(bad());
        }
        Tok::Float(f)
    } else {
        Tok::Int(t.parse().map_err(|_| {
            FilterError::syntax(text, start, format!("{t} does not fit a 64-bit integer"))
        })?)
    };
    Ok((tok, i))
}
