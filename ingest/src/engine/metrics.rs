//! The run's Prometheus metrics (`kingest run --metrics-addr HOST:PORT`, served by
//! [`super::metrics_http`] at `/metrics` in the OpenMetrics text format).
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `kingest_records_read_total` | counter | topic, partition | records read from Kafka |
//! | `kingest_bytes_read_total` | counter | topic, partition | bytes of record keys and values read |
//! | `kingest_rows_written_total` | counter | topic, partition | rows handed to the sink |
//! | `kingest_records_filtered_total` | counter | topic, partition | decoded rows the filter dropped |
//! | `kingest_record_errors_total` | counter | topic, partition | records that failed (skipped, dead-lettered, or the one that stopped the run) |
//! | `kingest_lag_records` | gauge | topic, partition | records between the read position and the high watermark (assigned partitions only) |
//! | `kingest_flush_duration_seconds` | histogram | | time to make a flush durable (files, rows and offsets) |
//! | `kingest_files_committed_total` | counter | | files (or transactions) the sink made durable |
//!
//! Every partition's counters are looked up once, at assignment ([`Metrics::partition`]): the
//! record loop only adds to atomics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The labels of per-partition series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// Every metric of a run, and the registry that renders them.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Arc<Registry>,
    records: Family<PartitionLabels, Counter>,
    bytes: Family<PartitionLabels, Counter>,
    rows: Family<PartitionLabels, Counter>,
    filtered: Family<PartitionLabels, Counter>,
    errors: Family<PartitionLabels, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    flush_seconds: Histogram,
    files: Counter,
}

/// One partition's series, resolved once.
#[derive(Debug, Clone)]
pub(super) struct PartitionMetrics {
    pub(super) records: Counter,
    pub(super) bytes: Counter,
    pub(super) rows: Counter,
    pub(super) filtered: Counter,
    pub(super) errors: Counter,
    pub(super) lag: Gauge,
}

impl Metrics {
    /// A registry with every metric registered.
    pub(super) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kingest");
        let records = Family::<PartitionLabels, Counter>::default();
        let bytes = Family::<PartitionLabels, Counter>::default();
        let rows = Family::<PartitionLabels, Counter>::default();
        let filtered = Family::<PartitionLabels, Counter>::default();
        let errors = Family::<PartitionLabels, Counter>::default();
        let lag = Family::<PartitionLabels, Gauge>::default();
        // 1 ms to about 65 s: a local fsync is milliseconds, an object store upload seconds.
        let flush_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let files = Counter::default();
        registry.register("records_read", "Records read from Kafka", records.clone());
        registry.register(
            "bytes_read",
            "Bytes of record keys and values read from Kafka",
            bytes.clone(),
        );
        registry.register("rows_written", "Rows handed to the sink", rows.clone());
        registry.register(
            "records_filtered",
            "Decoded rows the filter dropped",
            filtered.clone(),
        );
        registry.register(
            "record_errors",
            "Records that could not be decoded or were refused by the sink",
            errors.clone(),
        );
        registry.register(
            "lag_records",
            "Records between the read position and the high watermark",
            lag.clone(),
        );
        registry.register(
            "flush_duration_seconds",
            "Time to make a flush durable",
            flush_seconds.clone(),
        );
        registry.register(
            "files_committed",
            "Files or transactions the sink made durable",
            files.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            records,
            bytes,
            rows,
            filtered,
            errors,
            lag,
            flush_seconds,
            files,
        }
    }

    /// The registry, for the HTTP endpoint.
    pub(super) fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The series of one partition (created at zero the first time).
    pub(super) fn partition(&self, topic: &str, partition: i32) -> PartitionMetrics {
        let labels = PartitionLabels {
            topic: topic.to_owned(),
            partition,
        };
        PartitionMetrics {
            records: self.records.get_or_create_owned(&labels),
            bytes: self.bytes.get_or_create_owned(&labels),
            rows: self.rows.get_or_create_owned(&labels),
            filtered: self.filtered.get_or_create_owned(&labels),
            errors: self.errors.get_or_create_owned(&labels),
            lag: self.lag.get_or_create_owned(&labels),
        }
    }

    /// The partition is no longer assigned: its lag is no longer known, so its gauge goes
    /// (counters stay: they only ever grow).
    pub(super) fn unassigned(&self, topic: &str, partition: i32) {
        self.lag.remove(&PartitionLabels {
            topic: topic.to_owned(),
            partition,
        });
    }

    /// A flush that made `files` files durable in `took`.
    pub(super) fn flushed(&self, files: usize, took: Duration) {
        self.flush_seconds.observe(took.as_secs_f64());
        self.files.inc_by(files as u64);
    }
}

/// The registry as OpenMetrics text.
pub(super) fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an error here would be an encoder bug, and an empty
    // answer is better than none.
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_per_partition_and_flush_histogram() {
        let m = Metrics::new();
        let p = m.partition("events", 2);
        p.records.inc_by(10);
        p.bytes.inc_by(400);
        p.rows.inc_by(7);
        p.filtered.inc_by(2);
        p.errors.inc();
        p.lag.set(5);
        m.partition("events", 0);
        m.flushed(3, Duration::from_millis(20));
        let text = render(&m.registry());
        for line in [
            "kingest_records_read_total{topic=\"events\",partition=\"2\"} 10",
            "kingest_bytes_read_total{topic=\"events\",partition=\"2\"} 400",
            "kingest_rows_written_total{topic=\"events\",partition=\"2\"} 7",
            "kingest_records_filtered_total{topic=\"events\",partition=\"2\"} 2",
            "kingest_record_errors_total{topic=\"events\",partition=\"2\"} 1",
            "kingest_lag_records{topic=\"events\",partition=\"2\"} 5",
            "kingest_records_read_total{topic=\"events\",partition=\"0\"} 0",
            "kingest_flush_duration_seconds_count 1",
            "kingest_files_committed_total 3",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        m.unassigned("events", 2);
        let text = render(&m.registry());
        assert!(!text.contains("kingest_lag_records{topic=\"events\",partition=\"2\"}"));
        assert!(text.contains("kingest_records_read_total{topic=\"events\",partition=\"2\"} 10"));
    }
}
