//! How a run reports progress: on a terminal a live line on stderr, redrawn about once a
//! second (records/s, MB/s, lag, rows, filtered, errors, files and flushes); otherwise a
//! structured `tracing` event (target `kingest::progress`) every ten seconds, for log
//! collectors.

use std::io::Write as _;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressMode {
    /// A `tracing` info event every ten seconds (target `kingest::progress`).
    #[default]
    Log,
    /// A line on stderr redrawn every second (for a terminal).
    Line,
    /// Nothing.
    Off,
}

/// Running totals, as the engine counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records read.
    pub records: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
    /// Rows handed to the sink.
    pub rows: u64,
    /// Rows the filter dropped.
    pub filtered: u64,
    /// Bad records.
    pub errors: u64,
    /// Files (or transactions) made durable.
    pub files: u64,
    /// Flushes.
    pub flushes: u64,
    /// Records not yet read, over the assigned partitions (None before any is known).
    pub lag: Option<i64>,
}

/// Renders the progress line: totals, and rates over the last `interval` since `previous`.
pub fn render_line(
    now: &Totals,
    previous: &Totals,
    interval: Duration,
    elapsed: Duration,
) -> String {
    let secs = interval.as_secs_f64().max(1e-3);
    let rate = (now.records.saturating_sub(previous.records)) as f64 / secs;
    let mb = (now.bytes.saturating_sub(previous.bytes)) as f64 / secs / 1e6;
    let lag = now
        .lag
        .map_or_else(|| "?".to_owned(), |l| thousands(l.max(0) as u64));
    let t = elapsed.as_secs();
    format!(
        "{} records ({}/s, {mb:.1} MB/s) | lag {lag} | {} rows | {} filtered | {} errors | {} files, {} flushes | {:02}:{:02}:{:02}",
        thousands(now.records),
        thousands(rate.round() as u64),
        thousands(now.rows),
        thousands(now.filtered),
        thousands(now.errors),
        thousands(now.files),
        thousands(now.flushes),
        t / 3600,
        t / 60 % 60,
        t % 60,
    )
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The reporter the run loop calls on every turn; it decides when to show something.
#[derive(Debug)]
pub(super) struct Progress {
    mode: ProgressMode,
    started: Instant,
    last: Instant,
    previous: Totals,
    drawn: bool,
}

impl Progress {
    pub(super) fn new(mode: ProgressMode) -> Progress {
        let now = Instant::now();
        Progress {
            mode,
            started: now,
            last: now,
            previous: Totals::default(),
            drawn: false,
        }
    }

    fn every(&self) -> Duration {
        match self.mode {
            ProgressMode::Line => Duration::from_secs(1),
            _ => Duration::from_secs(10),
        }
    }

    /// Whether a report is due (so the caller gathers the lag only then).
    pub(super) fn due(&self) -> bool {
        self.mode != ProgressMode::Off && self.last.elapsed() >= self.every()
    }

    /// Shows `totals` (call when [`Progress::due`]).
    pub(super) fn report(&mut self, totals: Totals) {
        let interval = self.last.elapsed();
        match self.mode {
            ProgressMode::Line => {
                let line = render_line(&totals, &self.previous, interval, self.started.elapsed());
                // \r and "erase line": redraw in place; stderr is unbuffered.
                let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
                self.drawn = true;
            }
            ProgressMode::Log => {
                let secs = interval.as_secs_f64().max(1e-3);
                tracing::info!(
                    target: "kingest::progress",
                    records = totals.records,
                    records_per_s = (totals.records.saturating_sub(self.previous.records) as f64 / secs).round() as u64,
                    mb_per_s = (totals.bytes.saturating_sub(self.previous.bytes)) as f64 / secs / 1e6,
                    lag = totals.lag,
                    rows = totals.rows,
                    filtered = totals.filtered,
                    errors = totals.errors,
                    files = totals.files,
                    flushes = totals.flushes,
                    "progress"
                );
            }
            ProgressMode::Off => {}
        }
        self.previous = totals;
        self.last = Instant::now();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Leave the last line in place and move on, so what follows starts on its own line.
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_totals_rates_and_time() {
        let previous = Totals {
            records: 1_000_000,
            bytes: 100_000_000,
            ..Totals::default()
        };
        let now = Totals {
            records: 1_250_000,
            bytes: 125_000_000,
            rows: 1_200_000,
            filtered: 40_000,
            errors: 3,
            files: 12,
            flushes: 4,
            lag: Some(1_234_567),
        };
        let line = render_line(
            &now,
            &previous,
            Duration::from_secs(2),
            Duration::from_secs(3723),
        );
        assert_eq!(
            line,
            "1,250,000 records (125,000/s, 12.5 MB/s) | lag 1,234,567 | 1,200,000 rows | 40,000 filtered | 3 errors | 12 files, 4 flushes | 01:02:03"
        );
    }

    #[test]
    fn line_before_anything_is_known() {
        let zero = Totals::default();
        let line = render_line(&zero, &zero, Duration::ZERO, Duration::ZERO);
        assert_eq!(
            line,
            "0 records (0/s, 0.0 MB/s) | lag ? | 0 rows | 0 filtered | 0 errors | 0 files, 0 flushes | 00:00:00"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(123_456_789), "123,456,789");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
