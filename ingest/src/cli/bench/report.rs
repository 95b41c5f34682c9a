//! What `kingest bench` prints: a progress line while it runs and a final report, as text for
//! people or as one JSON object (`--json`) for scripts.

use std::time::Duration;

use serde::Serialize;

use super::histogram::Histogram;

/// Megabytes (10^6 bytes, as Kafka's perf-test tools count them) per second.
pub fn mb_per_sec(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}

/// Per second.
pub fn per_sec(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Produce latencies in milliseconds, from `send` to the delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Records whose latency was measured.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// The summary of a histogram of microseconds.
    pub fn of(h: &Histogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.count(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.quantile(0.5)),
            p99_ms: ms(h.quantile(0.99)),
            p999_ms: ms(h.quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The final report of `kingest bench produce`.
#[derive(Debug, Clone, Serialize)]
pub struct ProduceReport {
    /// Always "produce".
    pub mode: &'static str,
    /// The topic written.
    pub topic: String,
    /// Records acknowledged (or, with acks=0, sent).
    pub records: u64,
    /// Records that failed.
    pub failed: u64,
    /// Key and value bytes of the acknowledged records.
    pub bytes: u64,
    /// Value size.
    pub record_size: usize,
    /// The codec.
    pub compression: String,
    /// acks setting: 0, 1 or all.
    pub acks: String,
    /// Key distribution.
    pub keys: String,
    /// From the first send to the last acknowledgement.
    pub seconds: f64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Megabytes (10^6) of keys and values per second.
    pub mb_per_sec: f64,
    /// Produce latency; absent with acks=0 (the broker never answers).
    pub latency: Option<Latency>,
}

impl ProduceReport {
    /// The text report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} records sent to {}, {:.1} records/s ({:.2} MB/s), {:.3} s; record size {} B, compression {}, acks {}, keys {}",
            self.records,
            self.topic,
            self.records_per_sec,
            self.mb_per_sec,
            self.seconds,
            self.record_size,
            self.compression,
            self.acks,
            self.keys
        );
        if self.failed > 0 {
            s.push_str(&format!("; {} records FAILED", self.failed));
        }
        if let Some(l) = &self.latency {
            s.push_str(&format!(
                "\nlatency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, mean {:.2} ms",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
            ));
        }
        s
    }
}

/// The final report of `kingest bench consume`.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumeReport {
    /// Always "consume".
    pub mode: &'static str,
    /// The topic read.
    pub topic: String,
    /// Records consumed.
    pub records: u64,
    /// Key and value bytes consumed.
    pub bytes: u64,
    /// From the poll that brought the first records (from when it was issued, or when the group
    /// assigned the partitions during it) to the last record: connecting, looking up offsets
    /// and joining the group are not counted.
    pub seconds: f64,
    /// From the start (before connecting) to the first records.
    pub first_record_seconds: f64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Megabytes (10^6) of keys and values per second.
    pub mb_per_sec: f64,
    /// Fetched batches' record counts: records per poll, on average.
    pub records_per_poll: f64,
    /// Why it stopped: "records" (the requested count), "end" (caught up with the end
    /// offsets at start), "idle" (nothing came for the idle timeout), "duration".
    pub stopped_by: &'static str,
}

impl ConsumeReport {
    /// The text report.
    pub fn text(&self) -> String {
        format!(
            "{} records consumed from {}, {:.1} records/s ({:.2} MB/s), {:.3} s (first record after {:.3} s), {:.0} records per poll; stopped by {}",
            self.records,
            self.topic,
            self.records_per_sec,
            self.mb_per_sec,
            self.seconds,
            self.first_record_seconds,
            self.records_per_poll,
            self.stopped_by
        )
    }
}

/// Prints progress lines at an interval: what happened since the previous line.
#[derive(Debug)]
pub struct Progress {
    interval: Duration,
    last_at: Duration,
    last_records: u64,
    last_bytes: u64,
    enabled: bool,
}

impl Progress {
    /// A progress printer every `interval` (none when zero).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_at: Duration::ZERO,
            last_records: 0,
            last_bytes: 0,
            enabled: !interval.is_zero(),
        }
    }

    /// Whether a line is due at `elapsed`.
    #[inline]
    pub fn due(&self, elapsed: Duration) -> bool {
        self.enabled && elapsed >= self.last_at + self.interval
    }

    /// The line for the window ending at `elapsed` with these totals, and starts a new window.
    pub fn line(&mut self, elapsed: Duration, records: u64, bytes: u64, extra: &str) -> String {
        let window = (elapsed - self.last_at).as_secs_f64();
        let line = format!(
            "{:>7.1} s  {:>12} records  {:>12.1} records/s  {:>9.2} MB/s{}",
            elapsed.as_secs_f64(),
            records,
            per_sec(records - self.last_records, window),
            mb_per_sec(bytes - self.last_bytes, window),
            extra
        );
        self.last_at = elapsed;
        self.last_records = records;
        self.last_bytes = bytes;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_handle_zero_time() {
        assert_eq!(per_sec(10, 0.0), 0.0);
        assert_eq!(mb_per_sec(2_000_000, 2.0), 1.0);
        assert_eq!(per_sec(10, 2.0), 5.0);
    }

    #[test]
    fn produce_report_as_json_and_text() {
        let mut h = Histogram::new();
        // Below 128 µs the histogram is exact.
        for v in [64, 100, 127] {
            h.record(v);
        }
        let r = ProduceReport {
            mode: "produce",
            topic: "t".into(),
            records: 3,
            failed: 0,
            bytes: 300,
            record_size: 100,
            compression: "lz4".into(),
            acks: "all".into(),
            keys: "none".into(),
            seconds: 1.5,
            records_per_sec: 2.0,
            mb_per_sec: 0.0002,
            latency: Some(Latency::of(&h)),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mode"], "produce");
        assert_eq!(v["records"], 3);
        assert_eq!(v["latency"]["p50_ms"], 0.1);
        assert_eq!(v["latency"]["max_ms"], 0.127);
        assert_eq!(v["latency"]["count"], 3);
        let text = r.text();
        assert!(text.contains("3 records sent to t"), "{text}");
        assert!(text.contains("p99.9 0.13 ms"), "{text}");
        assert!(!text.contains("FAILED"));
    }

    #[test]
    fn progress_lines_report_the_window() {
        let mut p = Progress::new(Duration::from_secs(1));
        assert!(!p.due(Duration::from_millis(500)));
        assert!(p.due(Duration::from_secs(1)));
        let line = p.line(Duration::from_secs(2), 1000, 2_000_000, "");
        assert!(line.contains("500.0 records/s"), "{line}");
        assert!(line.contains("1.00 MB/s"), "{line}");
        let line = p.line(Duration::from_secs(3), 1100, 2_000_000, " x");
        assert!(line.contains("100.0 records/s"), "{line}");
        assert!(line.ends_with(" x"));
        assert!(!Progress::new(Duration::ZERO).due(Duration::from_secs(100)));
    }
}
