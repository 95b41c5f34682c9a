//! The side-by-side results: one row per run, and the markdown tables BENCHMARKS.md shows, with
//! every client's figures as ratios against librdkafka's on the same broker and data.

use std::fmt::Write as _;

use crate::spec::{ClientKind, Codec, Measured, Mode};

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The broker's name.
    pub broker: String,
    /// The direction.
    pub mode: Mode,
    /// Value size, bytes.
    pub record_size: usize,
    /// The codec.
    pub codec: Codec,
    /// The client.
    pub client: ClientKind,
    /// What was measured.
    pub measured: Measured,
    /// The broker's CPU seconds during the run, if known.
    pub broker_cpu_seconds: Option<f64>,
}

impl Row {
    fn seconds(&self) -> f64 {
        self.measured.result.seconds
    }

    /// Records per second over the data phase.
    pub fn records_per_sec(&self) -> f64 {
        ratio(self.measured.result.records as f64, self.seconds())
    }

    /// Megabytes (10^6) of values per second.
    pub fn mb_per_sec(&self) -> f64 {
        ratio(self.measured.result.bytes as f64 / 1e6, self.seconds())
    }

    /// CPU seconds (user + system, whole process) per GB (10^9 bytes) of values.
    pub fn cpu_per_gb(&self) -> f64 {
        ratio(
            self.measured.cpu_seconds(),
            self.measured.result.bytes as f64 / 1e9,
        )
    }

    /// CPU seconds per record.
    pub fn cpu_per_record(&self) -> f64 {
        ratio(
            self.measured.cpu_seconds(),
            self.measured.result.records as f64,
        )
    }

    /// Peak RSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.measured.max_rss_kib as f64 / 1024.0
    }

    fn same_case(&self, other: &Row) -> bool {
        self.broker == other.broker
            && self.mode == other.mode
            && self.record_size == other.record_size
            && self.codec == other.codec
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// A row's figures against the librdkafka row of the same case: records/s ratio (higher is
/// better), CPU per record ratio and peak RSS ratio (lower is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// records/s ÷ librdkafka's.
    pub throughput: f64,
    /// CPU per record ÷ librdkafka's.
    pub cpu: f64,
    /// Peak RSS ÷ librdkafka's.
    pub rss: f64,
}

/// `row` against the librdkafka run of the same case, if there is one.
pub fn ratios(rows: &[Row], row: &Row) -> Option<Ratios> {
    let base = rows
        .iter()
        .find(|r| r.client == ClientKind::Rdkafka && r.same_case(row))?;
    Some(Ratios {
        throughput: ratio(row.records_per_sec(), base.records_per_sec()),
        cpu: ratio(row.cpu_per_record(), base.cpu_per_record()),
        rss: ratio(row.rss_mib(), base.rss_mib()),
    })
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "n/a".to_owned()
    }
}

fn cell(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "n/a".to_owned()
    }
}

/// The tables, one per broker and direction, rows in run order.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut cases: Vec<(String, Mode)> = Vec::new();
    for r in rows {
        if !cases.iter().any(|(b, m)| *b == r.broker && *m == r.mode) {
            cases.push((r.broker.clone(), r.mode));
        }
    }
    for (broker, mode) in cases {
        let _ = writeln!(out, "#### {broker}, {}\n", mode.name());
        out.push_str(
            "| record | codec | client | records/s | MB/s | CPU s/GB | peak RSS MiB | broker CPU s \
             | records/s vs librdkafka | CPU/record vs librdkafka | RSS vs librdkafka |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows.iter().filter(|r| r.broker == broker && r.mode == mode) {
            let (t, c, m) = match ratios(rows, r) {
                Some(x) => (fmt_ratio(x.throughput), fmt_ratio(x.cpu), fmt_ratio(x.rss)),
                None => ("n/a".into(), "n/a".into(), "n/a".into()),
            };
            let broker_cpu = r
                .broker_cpu_seconds
                .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                size_label(r.record_size),
                r.codec.name(),
                r.client.label(),
                cell(r.records_per_sec(), 0),
                cell(r.mb_per_sec(), 1),
                cell(r.cpu_per_gb(), 2),
                cell(r.rss_mib(), 0),
                broker_cpu,
                t,
                c,
                m
            );
        }
        out.push('\n');
    }
    out
}

/// One line per run, for the progress log.
pub fn line(r: &Row) -> String {
    format!(
        "{} {} {} {} {}: {} records in {:.3} s, {:.0} records/s, {:.1} MB/s, CPU {:.2} s ({:.2} s/GB), peak RSS {:.0} MiB, wall {:.2} s",
        r.broker,
        r.mode.name(),
        size_label(r.record_size),
        r.codec.name(),
        r.client.label(),
        r.measured.result.records,
        r.measured.result.seconds,
        r.records_per_sec(),
        r.mb_per_sec(),
        r.measured.cpu_seconds(),
        r.cpu_per_gb(),
        r.rss_mib(),
        r.measured.wall_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RunResult;

    fn row(client: ClientKind, records: u64, seconds: f64, cpu: f64, rss_kib: u64) -> Row {
        Row {
            broker: "testkit".into(),
            mode: Mode::Consume,
            record_size: 100,
            codec: Codec::None,
            client,
            measured: Measured {
                result: RunResult {
                    records,
                    bytes: records * 100,
                    seconds,
                },
                wall_seconds: seconds + 0.5,
                user_seconds: cpu * 0.75,
                system_seconds: cpu * 0.25,
                max_rss_kib: rss_kib,
            },
            broker_cpu_seconds: Some(1.0),
        }
    }

    #[test]
    fn figures_and_ratios() {
        let rd = row(ClientKind::Rdkafka, 1_000_000, 2.0, 4.0, 200 * 1024);
        let ours = row(ClientKind::Kingest, 1_000_000, 0.5, 1.0, 50 * 1024);
        assert_eq!(rd.records_per_sec(), 500_000.0);
        assert_eq!(rd.mb_per_sec(), 50.0);
        assert_eq!(rd.cpu_per_gb(), 40.0);
        assert_eq!(rd.rss_mib(), 200.0);
        let rows = vec![rd.clone(), ours.clone()];
        let r = ratios(&rows, &ours).unwrap();
        assert_eq!(r.throughput, 4.0);
        assert_eq!(r.cpu, 0.25);
        assert_eq!(r.rss, 0.25);
        assert_eq!(ratios(&rows, &rd).unwrap().throughput, 1.0);
        let mut other = ours.clone();
        other.codec = Codec::Lz4;
        assert!(
            ratios(&rows, &other).is_none(),
            "no librdkafka run of that case"
        );
    }

    #[test]
    fn markdown_has_a_table_per_broker_and_mode() {
        let mut produce = row(ClientKind::Rskafka, 10, 0.0, 0.1, 1024);
        produce.mode = Mode::Produce;
        produce.record_size = 1024;
        let rows = vec![
            row(ClientKind::Rdkafka, 1_000_000, 2.0, 4.0, 200 * 1024),
            row(ClientKind::Kingest, 1_000_000, 0.5, 1.0, 50 * 1024),
            produce,
        ];
        let md = markdown(&rows);
        assert!(md.contains("#### testkit, consume"), "{md}");
        assert!(md.contains("#### testkit, produce"), "{md}");
        assert!(md.contains("| 100 B | none | kingest | 2000000 | 200.0 | 10.00 | 50 | 1.00 | 4.00x | 0.25x | 0.25x |"), "{md}");
        // Zero seconds and no librdkafka run: no division by zero, "n/a" instead.
        assert!(
            md.contains(
                "| 1 KiB | none | rskafka | n/a | n/a | 100000.00 | 1 | 1.00 | n/a | n/a | n/a |"
            ),
            "{md}"
        );
        assert!(line(&rows[0]).contains("500000 records/s"));
    }
}
