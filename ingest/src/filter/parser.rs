//! The filter's syntax tree and its recursive-descent parser (grammar in the
//! [module docs](super)).

use super::lexer::{tokenize, Tok};
use super::FilterError;

/// How deep parentheses and NOTs may nest: deeper input is refused rather than risking the
/// stack on a hostile or generated filter.
const MAX_DEPTH: usize = 64;

/// A literal value as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Lit {
    /// How the literal reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Lit::Null => "NULL".to_owned(),
            Lit::Bool(b) => b.to_string().to_uppercase(),
            Lit::Int(n) => format!("the integer {n}"),
            Lit::Float(f) => format!("the number {f}"),
            Lit::Str(s) => format!("the string '{s}'"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn from_op(op: &str) -> Option<CmpOp> {
        Some(match op {
            "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }
}

/// A parsed filter. `pos` fields are byte offsets into the filter text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Column {
        name: String,
        pos: usize,
    },
    Lit {
        value: Lit,
        pos: usize,
    },
    Cmp {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
        pos: usize,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not {
        expr: Box<Expr>,
        pos: usize,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
        pos: usize,
    },
    In {
        expr: Box<Expr>,
        list: Vec<(Lit, usize)>,
        negated: bool,
        pos: usize,
    },
    Like {
        expr: Box<Expr>,
        pattern: String,
        case_insensitive: bool,
        negated: bool,
        pos: usize,
    },
}

impl Expr {
    /// Where the expression starts in the text.
    pub(super) fn pos(&self) -> usize {
        match self {
            Expr::Column { pos, .. } | Expr::Lit { pos, .. } | Expr::Not { pos, .. } => *pos,
            Expr::Cmp { left, .. }
            | Expr::IsNull { expr: left, .. }
            | Expr::In { expr: left, .. }
            | Expr::Like { expr: left, .. }
            | Expr::And(left, _)
            | Expr::Or(left, _) => left.pos(),
        }
    }
}

/// Parses a whole filter.
pub(super) fn parse(text: &str) -> Result<Expr, FilterError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        text,
        toks,
        at: 0,
        depth: 0,
    };
    if p.peek() == &Tok::End {
        return Err(FilterError::syntax(text, 0, "the filter is empty"));
    }
    let e = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::RParen => Err(p.err("this ')' has no '(' before it")),
        t => {
            let what = t.describe();
            Err(p.err(format!(
                "expected AND, OR or the end of the filter, found {what}"
            )))
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        // `tokenize` always ends with `End`, and `next` never moves past it.
        self.toks.get(self.at).map_or(&Tok::End, |(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks
            .get(self.at)
            .map_or(self.text.len(), |(_, pos)| *pos)
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self
            .toks
            .get(self.at)
            .cloned()
            .unwrap_or((Tok::End, self.text.len()));
        if t.0 != Tok::End {
            self.at += 1;
        }
        t
    }

    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Tok::Keyword(w) if *w == k) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, message: impl Into<String>) -> FilterError {
        FilterError::syntax(self.text, self.pos(), message)
    }

    fn expect(&mut self, tok: Tok, context: &str) -> Result<(), FilterError> {
        if self.peek() == &tok {
            self.at += 1;
            Ok(())
        } else {
            let found = self.peek().describe();
            Err(self.err(format!(
                "expected {} {context}, found {found}",
                tok.describe()
            )))
        }
    }

    fn nest(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("the filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.and()?;
        while self.keyword("OR") {
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.not()?;
        while self.keyword("AND") {
            let r = self.not()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        let pos = self.pos();
        if self.keyword("NOT") {
            self.nest()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not {
                expr: Box::new(e),
                pos,
            });
        }
        self.predicate()
    }

    /// An operand, and what follows it: a comparison, IS [NOT] NULL, [NOT] IN / LIKE / ILIKE /
    /// BETWEEN.
    fn predicate(&mut self) -> Result<Expr, FilterError> {
        let left = self.operand()?;
        let pos = self.pos();
        if let Tok::Op(op) = *self.peek() {
            self.at += 1;
            let op = CmpOp::from_op(op).ok_or_else(|| self.err("unknown operator"))?;
            let right = self.operand()?;
            if let Tok::Op(_) = self.peek() {
                return Err(
                    self.err("comparisons do not chain: write `a < b AND b < c`, or use BETWEEN")
                );
            }
            return Ok(Expr::Cmp {
                op,
                left: Box::new(left),
                right: Box::new(right),
                pos,
            });
        }
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            if !self.keyword("NULL") {
                let found = self.peek().describe();
                return Err(self.err(format!(
                    "expected NULL after IS{}, found {found}",
                    if negated { " NOT" } else { "" }
                )));
            }
            return Ok(Expr::IsNull {
                expr: Box::new(left),
                negated,
                pos,
            });
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            return self.in_list(left, negated, pos);
        }
        let like = self.keyword("LIKE");
        if like || self.keyword("ILIKE") {
            let (tok, _) = self.next();
            let Tok::Str(pattern) = tok else {
                self.at -= 1;
                let found = self.peek().describe();
                return Err(self.err(format!(
                    "expected a 'pattern' string after {}, found {found}",
                    if like { "LIKE" } else { "ILIKE" }
                )));
            };
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                case_insensitive: !like,
                negated,
                pos,
            });
        }
        if self.keyword("BETWEEN") {
            let low = self.operand()?;
            self.expect(Tok::Keyword("AND"), "between the bounds of BETWEEN")?;
            let high = self.operand()?;
            let range = Expr::And(
                Box::new(Expr::Cmp {
                    op: CmpOp::Ge,
                    left: Box::new(left.clone()),
                    right: Box::new(low),
                    pos,
                }),
                Box::new(Expr::Cmp {
                    op: CmpOp::Le,
                    left: Box::new(left),
                    right: Box::new(high),
                    pos,
                }),
            );
            return Ok(if negated {
                Expr::Not {
                    expr: Box::new(range),
                    pos,
                }
            } else {
                range
            });
        }
        if negated {
            // `x NOT` followed by something other than IN / LIKE / ILIKE / BETWEEN.
            self.at -= 1;
            return Err(self.err(
                "NOT here must be followed by IN, LIKE, ILIKE or BETWEEN (or write NOT before the condition)",
            ));
        }
        Ok(left)
    }

    fn in_list(&mut self, left: Expr, negated: bool, pos: usize) -> Result<Expr, FilterError> {
        self.expect(Tok::LParen, "after IN")?;
        let mut list = Vec::new();
        loop {
            let at = self.pos();
            match self.operand()? {
                Expr::Lit { value, .. } => list.push((value, at)),
                _ => {
                    return Err(FilterError::syntax(
                        self.text,
                        at,
                        "IN (...) lists literal values only",
                    ))
                }
            }
            match self.next().0 {
                Tok::Comma => {}
                Tok::RParen => break,
                t => {
                    self.at -= 1;
                    return Err(self.err(format!(
                        "expected ',' or ')' in the IN list, found {}",
                        t.describe()
                    )));
                }
            }
        }
        Ok(Expr::In {
            expr: Box::new(left),
            list,
            negated,
            pos,
        })
    }

    /// A column, a literal, or a parenthesised expression.
    fn operand(&mut self) -> Result<Expr, FilterError> {
        let (tok, pos) = self.next();
        let lit = |value| Ok(Expr::Lit { value, pos });
        match tok {
            Tok::Ident(name) => Ok(Expr::Column { name, pos }),
            Tok::Str(s) => lit(Lit::Str(s)),
            Tok::Int(n) => lit(Lit::Int(n)),
            Tok::Float(f) => lit(Lit::Float(f)),
            Tok::Keyword("TRUE") => lit(Lit::Bool(true)),
            Tok::Keyword("FALSE") => lit(Lit::Bool(false)),
            Tok::Keyword("NULL") => lit(Lit::Null),
            Tok::Minus => match self.next().0 {
                Tok::Int(n) => lit(Lit::Int(-n)),
                Tok::Float(f) => lit(Lit::Float(-f)),
                _ => Err(FilterError::syntax(
                    self.text,
                    pos,
                    "'-' is only allowed before a number (there is no arithmetic)",
                )),
            },
            Tok::LParen => {
                self.nest()?;
                let e = self.or()?;
                self.depth -= 1;
                self.expect(Tok::RParen, "to close the '('")?;
                Ok(e)
            }
            t => {
                self.at -= usize::from(t != Tok::End);
                let what = t.describe();
                Err(self.err(format!(
                    "expected a column name, a value or '(', found {what}"
                )))
            }
        }
    }
}
