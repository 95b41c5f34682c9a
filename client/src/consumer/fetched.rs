//! What `poll` returns: per partition, the record batches of a fetch response as slices of that
//! response (no copy), already checked and decompressed, with the partition's watermarks and
//! aborted transactions; and iterators over the records on top.
//!
//! Nothing here allocates per record: a [`FetchedRecord`] borrows its key, value and headers
//! from the batch it is in, and an uncompressed batch is itself a slice of the response frame.
//! A [`Fetched`] owns its data (reference-counted `Bytes`), so it can outlive the next `poll`,
//! move to another task, or be dropped batch by batch.

use std::ops::Deref;
use std::sync::Arc;

use kingest_protocol::record::{RawBatch, Record, RecordBatch, Records};

/// A transaction the broker reports as aborted in the fetched range (read_committed fetches):
/// records of `producer_id` from `first_offset` until its abort marker are not to be consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTransaction {
    /// The transactional producer's id.
    pub producer_id: i64,
    /// The first offset of the aborted transaction in this partition.
    pub first_offset: i64,
}

/// The data one fetch response brought for one partition.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) raw: Vec<RawBatch>,
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) fetch_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) record_count: usize,
    pub(crate) size: usize,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) aborted_transactions: Vec<AbortedTransaction>,
}

impl FetchedPartition {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The batches as they came on the wire, in offset order: slices of the response, for
    /// callers that forward or store batches without looking inside. The first may start before
    /// [`Self::fetch_offset`], since brokers return whole batches; control batches are included.
    pub fn raw_batches(&self) -> &[RawBatch] {
        &self.raw
    }

    /// The same batches, CRC-checked and decompressed (an uncompressed batch is still a slice of
    /// the response). Control batches (transaction markers) are included: check
    /// `header().is_control()`. Records below [`Self::fetch_offset`] are still in the first
    /// batch; [`Self::records`] skips them.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The position the partition was fetched at: no record below it is returned by
    /// [`Self::records`].
    pub fn fetch_offset(&self) -> i64 {
        self.fetch_offset
    }

    /// The offset after the last batch: the partition's position once this data is handed out.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// How many data records [`Self::records`] yields (control records and records below the
    /// fetch offset excluded).
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The bytes of the batches, as received.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The partition's high watermark when the broker answered (-1 if it did not say).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The last stable offset when the broker answered (-1 if it did not say).
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset
    }

    /// The log start offset when the broker answered (-1 if it did not say).
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The aborted transactions the broker listed for this range (read_committed only).
    pub fn aborted_transactions(&self) -> &[AbortedTransaction] {
        &self.aborted_transactions
    }

    /// The data records at or after the fetch offset, in offset order, without control records.
    pub fn records(&self) -> PartitionRecords<'_> {
        PartitionRecords {
            topic: &self.topic,
            partition: self.partition,
            min_offset: self.fetch_offset,
            batches: self.batches.iter(),
            current: None,
        }
    }
}

/// The result of one `poll`: data for zero or more partitions.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub(crate) partitions: Vec<FetchedPartition>,
}

impl Fetched {
    /// Whether no partition brought data.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// The partitions that brought data, each at most once.
    pub fn partitions(&self) -> &[FetchedPartition] {
        &self.partitions
    }

    /// The partitions, owned.
    pub fn into_partitions(self) -> Vec<FetchedPartition> {
        self.partitions
    }

    /// How many data records [`Self::records`] yields.
    pub fn record_count(&self) -> usize {
        self.partitions.iter().map(|p| p.record_count).sum()
    }

    /// Every data record, partition by partition, each in offset order.
    pub fn records(&self) -> FetchedRecords<'_> {
        FetchedRecords {
            partitions: self.partitions.iter(),
            current: None,
        }
    }
}

impl<'a> IntoIterator for &'a Fetched {
    type Item = FetchedRecord<'a>;
    type IntoIter = FetchedRecords<'a>;
    fn into_iter(self) -> FetchedRecords<'a> {
        self.records()
    }
}

/// A record with the topic and partition it came from. Dereferences to the protocol crate's
/// [`Record`] view (offset, timestamp, key, value, headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The record, borrowing from its batch.
    pub record: Record<'a>,
}

impl<'a> Deref for FetchedRecord<'a> {
    type Target = Record<'a>;
    fn deref(&self) -> &Record<'a> {
        &self.record
    }
}

/// The data records of one [`FetchedPartition`].
#[derive(Debug, Clone)]
pub struct PartitionRecords<'a> {
    topic: &'a str,
    partition: i32,
    min_offset: i64,
    batches: std::slice::Iter<'a, RecordBatch>,
    current: Option<Records<'a>>,
}

impl<'a> Iterator for PartitionRecords<'a> {
    type Item = FetchedRecord<'a>;

    #[inline]
    fn next(&mut self) -> Option<FetchedRecord<'a>> {
        loop {
            if let Some(records) = &mut self.current {
                match records.next() {
                    Some(Ok(record)) if record.offset >= self.min_offset => {
                        return Some(FetchedRecord {
                            topic: self.topic,
                            partition: self.partition,
                            record,
                        });
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        // Every record was parsed once already when the response arrived (that
                        // is where a bad record becomes a CorruptRecord error and stops the
                        // partition); the same bytes cannot fail now.
                        debug_assert!(false, "a validated batch failed to parse: {e}");
                        self.current = None;
                    }
                    None => self.current = None,
                }
            }
            let batch = self.batches.next()?;
            if !batch.header().is_control() {
                self.current = Some(batch.records());
            }
        }
    }
}

/// Every data record of a [`Fetched`].
#[derive(Debug, Clone)]
pub struct FetchedRecords<'a> {
    partitions: std::slice::Iter<'a, FetchedPartition>,
    current: Option<PartitionRecords<'a>>,
}

impl<'a> Iterator for FetchedRecords<'a> {
    type Item = FetchedRecord<'a>;

    #[inline]
    fn next(&mut self) -> Option<FetchedRecord<'a>> {
        loop {
            if let Some(records) = &mut self.current {
                if let Some(r) = records.next() {
                    return Some(r);
                }
            }
            self.current = Some(self.partitions.next()?.records());
        }
    }
}
