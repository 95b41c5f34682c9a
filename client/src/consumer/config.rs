//! The partition consumer's settings and the small enums its API takes: where to start
//! ([`StartAt`]), what to do when the position falls outside the log ([`OffsetReset`]), and
//! which records to read ([`IsolationLevel`]).
//!
//! Names and defaults follow the Java consumer's (`max.partition.fetch.bytes`,
//! `fetch.max.bytes`, ...), so that settings carry over from an existing deployment.

use std::time::Duration;

use kingest_protocol::record::{DecodeOptions, DEFAULT_MAX_DECOMPRESSED_SIZE};

use crate::error::{ClientError, Result};

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartAt {
    /// At the log start offset (the oldest record still kept).
    Earliest,
    /// At the log end: only records written from now on.
    Latest,
    /// At this offset. Outside the log, the reset policy applies on the first fetch.
    Offset(i64),
    /// At the first record whose timestamp is at or after this one (milliseconds since the
    /// epoch). Past the last record, at the log end, as the Java client resets by timestamp.
    Timestamp(i64),
}

/// ListOffsets' special timestamp for the log start offset.
pub(crate) const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the log end offset (the last stable offset under
/// read_committed).
pub(crate) const LATEST_TIMESTAMP: i64 = -1;

/// What to do when the broker says the position is out of range (`auto.offset.reset`): the
/// records there were deleted by retention, or the position was never valid. A group member
/// also starts here on a partition its group has no committed offset for: with the default,
/// `Latest`, a new group reads only records produced after it joined; `Earliest` reads the
/// partition from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetReset {
    /// Continue at the log start offset.
    Earliest,
    /// Continue at the log end (Java's default).
    #[default]
    Latest,
    /// Stop the partition and report [`ClientError::OffsetOutOfRange`] from `poll`; the caller
    /// decides with `seek`.
    Error,
}

/// Which records a fetch returns (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Everything up to the high watermark, including records of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only up to the last stable offset; the response lists aborted transactions so that their
    /// records can be dropped.
    ReadCommitted,
}

impl IsolationLevel {
    /// The value of the requests' `isolation_level` field.
    pub fn id(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Partition consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// The most bytes one partition may return in a fetch (`max.partition.fetch.bytes`, 1 MiB).
    /// A broker that speaks Fetch v3 or later returns a larger first batch whole anyway; an older
    /// one cuts it, which is reported as [`ClientError::FetchTooLarge`].
    pub max_partition_fetch_bytes: usize,
    /// The most bytes one fetch response may hold (`fetch.max.bytes`, 50 MiB).
    pub fetch_max_bytes: usize,
    /// The broker waits for at least this many bytes (`fetch.min.bytes`, 1)...
    pub fetch_min_bytes: usize,
    /// ...or this long (`fetch.max.wait.ms`, 500 ms). Must be below the connection's request
    /// timeout, or an idle partition would time its connection out.
    pub fetch_max_wait: Duration,
    /// Memory held by fetched data not yet returned by `poll`, across all partitions, above
    /// which no new fetch is sent (64 MiB): the batches as received plus, for compressed ones,
    /// their decompressed records. With one fetch in flight per broker, memory held by the
    /// consumer stays below this plus one response per broker, decompressed: `fetch_max_bytes`
    /// for uncompressed topics, several times that for compressed ones (batches are decompressed
    /// as a response arrives). Data already returned by `poll` is the caller's: it lives as long
    /// as the caller keeps it. Once dropped, decompressed batches' buffers are kept for reuse by
    /// the next ones, up to 16 MiB per process
    /// (`kingest_protocol::record::pool::set_retained_limit`).
    pub max_buffered_bytes: usize,
    /// Which records to read.
    pub isolation_level: IsolationLevel,
    /// What to do when the position is out of range.
    pub offset_reset: OffsetReset,
    /// Verify each batch's CRC (`check.crcs`, on).
    pub check_crcs: bool,
    /// The most bytes one compressed batch may decompress to (256 MiB).
    pub max_decompressed_size: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_bytes: 50 * 1024 * 1024,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_buffered_bytes: 64 * 1024 * 1024,
            isolation_level: IsolationLevel::ReadUncommitted,
            offset_reset: OffsetReset::Latest,
            check_crcs: true,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }
}

impl ConsumerConfig {
    /// Checks the settings against each other and against the connection's request timeout.
    pub fn validate(&self, request_timeout: Duration) -> Result<()> {
        let positive_i32 = |name: &str, v: usize| {
            if v == 0 || v > i32::MAX as usize {
                Err(ClientError::Config(format!(
                    "{name} must be between 1 and {}, not {v}",
                    i32::MAX
                )))
            } else {
                Ok(())
            }
        };
        positive_i32("max_partition_fetch_bytes", self.max_partition_fetch_bytes)?;
        positive_i32("fetch_max_bytes", self.fetch_max_bytes)?;
        positive_i32("fetch_min_bytes", self.fetch_min_bytes)?;
        if self.fetch_max_wait.as_millis() > i32::MAX as u128 {
            return Err(ClientError::Config(format!(
                "fetch_max_wait {:?} is too long",
                self.fetch_max_wait
            )));
        }
        if self.fetch_max_wait >= request_timeout {
            return Err(ClientError::Config(format!(
                "fetch_max_wait ({:?}) must be below the request timeout ({request_timeout:?}): the broker may hold a \
                 fetch that long",
                self.fetch_max_wait
            )));
        }
        if self.max_buffered_bytes == 0 {
            return Err(ClientError::Config(
                "max_buffered_bytes must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    /// The decoder settings these settings imply.
    pub(crate) fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            verify_crc: self.check_crcs,
            max_decompressed_size: self.max_decompressed_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_javas_and_valid() {
        let c = ConsumerConfig::default();
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.offset_reset, OffsetReset::Latest);
        c.validate(Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn rejects_inconsistent_settings() {
        let timeout = Duration::from_secs(30);
        let bad = [
            ConsumerConfig {
                max_partition_fetch_bytes: 0,
                ..Default::default()
            },
            ConsumerConfig {
                fetch_max_bytes: i32::MAX as usize + 1,
                ..Default::default()
            },
            ConsumerConfig {
                fetch_max_wait: Duration::from_secs(30),
                ..Default::default()
            },
            ConsumerConfig {
                max_buffered_bytes: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            let err = c.validate(timeout).unwrap_err();
            assert!(matches!(err, ClientError::Config(_)), "{c:?}: {err}");
        }
    }

    #[test]
    fn isolation_levels_have_the_protocol_ids() {
        assert_eq!(IsolationLevel::ReadUncommitted.id(), 0);
        assert_eq!(IsolationLevel::ReadCommitted.id(), 1);
    }
}
