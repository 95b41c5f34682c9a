//! Plain-text tables for the commands that print them (`check`, `test`, `reset-offsets`):
//! left-aligned columns two spaces apart, headers in capitals, like `kafka-consumer-groups.sh`.

use std::fmt::Write as _;

/// The line above `check`'s and `reset-offsets`' tables: the group, its state and members, and
/// the sink.
pub fn group_line(group: &str, state: &str, members: &[String], sink: &str) -> String {
    let members = match members.len() {
        0 => "no active members".to_owned(),
        1 => format!("1 active member: {}", members[0]),
        n => format!("{n} active members: {}", members.join(", ")),
    };
    format!("group {group:?} ({state}, {members}); sink {sink}\n")
}

/// A table being built.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let _ = write!(line, "{cell:<w$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// An optional offset as a cell: the number, or `-`.
pub fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Cuts a cell to `max` characters, marking the cut with `…`; newlines become spaces.
pub fn clip(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(["TOPIC", "PARTITION", "LAG"]);
        t.row(["events", "0", "12"]);
        t.row(["é", "10"]);
        assert_eq!(
            t.render(),
            "TOPIC   PARTITION  LAG\nevents  0          12\né       10\n"
        );
        assert_eq!(opt(None), "-");
        assert_eq!(opt(Some(3)), "3");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("a\nb", 4), "a b");
    }
}
