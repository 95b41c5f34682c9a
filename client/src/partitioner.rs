//! Choosing a record's partition the way Kafka's Java producer does, so that records with the
//! same key land on the same partition whichever client wrote them.
//!
//! * Keyed records: `to_positive(murmur2(key)) % partitions` ([`partition_for_key`]), Java's
//!   `BuiltInPartitioner.partitionForKey` and librdkafka's `murmur2_random` partitioner for
//!   keyed messages. An empty key is a key (it hashes); only a missing key is not.
//! * Records without a key: a [`StickyPartitioner`] (KIP-480, KIP-794) keeps sending to one
//!   partition until the producer starts a new batch for it, then switches at random, so that
//!   batches fill up instead of every partition getting a tiny batch.
//! * [`Partitioner::Custom`] lets users decide.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Kafka's murmur2 hash, bit for bit as `org.apache.kafka.common.utils.Utils.murmur2`
/// (seed `0x9747b28c`; little-endian 4-byte words; the tail mixed in with Java's switch
/// fall-through; the result as a signed 32-bit integer).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    // Mixing constants from MurmurHash2.
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's `int h = seed ^ length`: the length truncated to 32 bits.
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java: `case 3: h ^= b2 << 16; case 2: h ^= b1 << 8; case 1: h ^= b0; h *= m;` with no
    // breaks, so 3 remaining bytes take all three steps and the multiply happens once.
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    // Java's `>>>` is a logical shift: shift the unsigned value.
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's producer picks for a keyed record:
/// `to_positive(murmur2(key)) % num_partitions`.
///
/// # Panics
/// If `num_partitions` is not positive (a topic always has at least one partition).
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "a topic has at least one partition, got {num_partitions}"
    );
    to_positive(murmur2(key)) % num_partitions
}

/// The partition for records without a key, per topic: stays on one partition until
/// [`on_new_batch`](Self::on_new_batch) says the batch for it was closed (full or sent), then
/// moves to another one at random.
///
/// Like Java's `StickyPartitionCache.nextPartition` and `BuiltInPartitioner.nextPartition`
/// without adaptive load statistics: the next partition is drawn uniformly among the available
/// ones (those with a leader), never the one just left when there is a choice.
#[derive(Debug, Default, Clone)]
pub struct StickyPartitioner {
    current: Option<i32>,
    /// The partition left by the last switch, avoided by the next choice.
    left: Option<i32>,
}

impl StickyPartitioner {
    /// A partitioner with no partition chosen yet.
    pub fn new() -> Self {
        StickyPartitioner::default()
    }

    /// The partition currently stuck to, if any.
    pub fn current(&self) -> Option<i32> {
        self.current
    }

    /// The partition for the next keyless record when all `num_partitions` are usable.
    ///
    /// # Panics
    /// If `num_partitions` is not positive.
    pub fn partition(&mut self, num_partitions: i32) -> i32 {
        self.partition_available(&[], num_partitions)
    }

    /// The partition for the next keyless record, choosing only among `available` (partitions
    /// with a leader) when a new one has to be chosen; when none is available, among all.
    ///
    /// # Panics
    /// If `num_partitions` is not positive.
    pub fn partition_available(&mut self, available: &[i32], num_partitions: i32) -> i32 {
        assert!(
            num_partitions > 0,
            "a topic has at least one partition, got {num_partitions}"
        );
        match self.current {
            // A shrunken count cannot happen in Kafka, but stale metadata must not pick a
            // partition that does not exist.
            Some(p) if p < num_partitions => p,
            stale => {
                let next = choose(available, num_partitions, stale.or(self.left));
                self.current = Some(next);
                next
            }
        }
    }

    /// The batch for the current partition was closed: the next record moves elsewhere.
    pub fn on_new_batch(&mut self) {
        if let Some(p) = self.current.take() {
            self.left = Some(p);
        }
    }
}

/// Picks a partition uniformly among `available` (or all of `0..num_partitions` when it is
/// empty), avoiding `previous` when there is another choice.
fn choose(available: &[i32], num_partitions: i32, previous: Option<i32>) -> i32 {
    let random = random_u32();
    if available.is_empty() {
        let n = num_partitions as u32;
        match previous {
            // Draw among n-1 and skip over `previous`: uniform over the others, no retry loop.
            Some(prev) if n > 1 && prev >= 0 && (prev as u32) < n => {
                let r = random % (n - 1);
                (if r >= prev as u32 { r + 1 } else { r }) as i32
            }
            _ => (random % n) as i32,
        }
    } else {
        let n = available.len() as u32;
        match previous.and_then(|prev| available.iter().position(|&p| p == prev)) {
            Some(at) if n > 1 => {
                let r = random % (n - 1);
                available[if r >= at as u32 {
                    r as usize + 1
                } else {
                    r as usize
                }]
            }
            _ => available[(random % n) as usize],
        }
    }
}

/// A random number for spreading load; not security-sensitive, so if the OS generator fails a
/// clock-derived value is good enough.
fn random_u32() -> u32 {
    getrandom::u32().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    })
}

/// What a partitioner sees of a record.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PartitionInput<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The serialized key; `None` for a record without a key (`Some(&[])` is an empty key).
    pub key: Option<&'a [u8]>,
    /// The serialized value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// How many partitions the topic has.
    pub num_partitions: i32,
    /// The partitions that have a leader now; empty when unknown.
    pub available: &'a [i32],
}

impl<'a> PartitionInput<'a> {
    /// A record of `topic` with `num_partitions` partitions, all taken as available.
    pub fn new(
        topic: &'a str,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        num_partitions: i32,
    ) -> Self {
        PartitionInput {
            topic,
            key,
            value,
            num_partitions,
            available: &[],
        }
    }

    /// Sets the partitions that have a leader.
    pub fn with_available(mut self, available: &'a [i32]) -> Self {
        self.available = available;
        self
    }
}

/// A user partitioning function: returns the partition for a record.
pub type PartitionFn = Arc<dyn Fn(&PartitionInput<'_>) -> i32 + Send + Sync>;

/// How the producer picks partitions for records that do not name one.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Partitioner {
    /// Java's default: murmur2 of the key for keyed records, sticky for records without a key.
    #[default]
    Default,
    /// A user function.
    Custom(PartitionFn),
}

impl fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partitioner::Default => f.write_str("Default"),
            Partitioner::Custom(_) => f.write_str("Custom(<fn>)"),
        }
    }
}

/// Why no partition could be chosen.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionError {
    /// The topic has no partitions (metadata not known, or a broken topic).
    #[error("topic {topic:?} has no partitions")]
    NoPartitions {
        /// The topic.
        topic: String,
    },
    /// A custom partitioner returned a partition the topic does not have.
    #[error(
        "the custom partitioner chose partition {partition} of topic {topic:?}, which has \
         {num_partitions}"
    )]
    OutOfRange {
        /// The topic.
        topic: String,
        /// What the function returned.
        partition: i32,
        /// How many partitions the topic has.
        num_partitions: i32,
    },
}

impl Partitioner {
    /// A partitioner calling `f`.
    pub fn custom(f: impl Fn(&PartitionInput<'_>) -> i32 + Send + Sync + 'static) -> Self {
        Partitioner::Custom(Arc::new(f))
    }

    /// The partition for `record`; `sticky` is the topic's sticky state, used for keyless
    /// records by [`Partitioner::Default`].
    pub fn partition(
        &self,
        record: &PartitionInput<'_>,
        sticky: &mut StickyPartitioner,
    ) -> Result<i32, PartitionError> {
        let n = record.num_partitions;
        if n <= 0 {
            return Err(PartitionError::NoPartitions {
                topic: record.topic.to_owned(),
            });
        }
        match self {
            // Keyed records hash over all partitions, available or not, as Java does: a key must
            // map to the same partition whatever the cluster's health.
            Partitioner::Default => Ok(match record.key {
                Some(key) => partition_for_key(key, n),
                None => sticky.partition_available(record.available, n),
            }),
            Partitioner::Custom(f) => {
                let partition = f(record);
                if (0..n).contains(&partition) {
                    Ok(partition)
                } else {
                    Err(PartitionError::OutOfRange {
                        topic: record.topic.to_owned(),
                        partition,
                        num_partitions: n,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn murmur2_matches_kafka_utils_test() {
        // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
        // testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107), // Java: `new byte[] {'a', 'b', 'c'}`
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn murmur2_matches_librdkafka_unit_test() {
        // confluentinc/librdkafka src/rdmurmur2.c, unittest_murmur2 ("java_murmur2_results"):
        // every tail length 0-3, and the empty key.
        let cases: [(&str, u32); 11] = [
            ("kafka", 0xd067cf64),
            ("giberish123456789", 0x8f552b0c),
            ("1234", 0x9fc97b14),
            ("234", 0xe7c009ca),
            ("34", 0x873930da),
            ("4", 0x5a4b5ca1),
            ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
            ("reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
            ("eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e),
            ("AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f),
            ("", 0x106e08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected as i32, "{key:?}");
        }
    }

    #[test]
    fn murmur2_uses_unsigned_bytes() {
        // Java masks every byte with 0xff; sign-extending bytes >= 0x80 would change the hash.
        // Expected values from a separate model of the Java code (Python, 32-bit masked), as no
        // public vector has high bytes.
        assert_eq!(murmur2(&[0x80, 0xff, 0xfe, 0x81, 0x90]), -1856869335);
        assert_eq!(murmur2(&[0xff; 7]), -71293549);
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973932308), -973932308 & 0x7fffffff);
    }

    #[test]
    fn partition_for_key_is_positive_murmur2_mod_n() {
        assert_eq!(partition_for_key(b"foobar", 1), 0);
        // to_positive(-790332482) = 1357151166; % 10 = 6; % 3 = 0.
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        assert_eq!(partition_for_key(b"foobar", 3), 0);
        // to_positive(479470107) % 7 = 479470107 % 7 = 4.
        assert_eq!(partition_for_key(b"abc", 7), 479470107 % 7);
        for n in 1..50 {
            let p = partition_for_key(b"a-little-bit-long-string", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    #[should_panic(expected = "at least one partition")]
    fn partition_for_key_with_no_partitions_panics() {
        partition_for_key(b"k", 0);
    }

    #[test]
    fn sticky_stays_until_a_new_batch_then_moves() {
        let mut s = StickyPartitioner::new();
        assert_eq!(s.current(), None);
        let first = s.partition(8);
        assert!((0..8).contains(&first));
        for _ in 0..100 {
            assert_eq!(s.partition(8), first);
        }
        let mut seen = BTreeSet::from([first]);
        let mut prev = first;
        for _ in 0..200 {
            s.on_new_batch();
            let next = s.partition(8);
            assert_ne!(
                next, prev,
                "a switch must leave the partition whose batch closed"
            );
            assert!((0..8).contains(&next));
            assert_eq!(s.partition(8), next);
            seen.insert(next);
            prev = next;
        }
        assert_eq!(
            seen.len(),
            8,
            "every partition is eventually used: {seen:?}"
        );
    }

    #[test]
    fn sticky_with_one_partition_stays_on_it() {
        let mut s = StickyPartitioner::new();
        for _ in 0..10 {
            assert_eq!(s.partition(1), 0);
            s.on_new_batch();
        }
    }

    #[test]
    fn sticky_prefers_available_partitions() {
        let mut s = StickyPartitioner::new();
        let available = [1, 4, 6];
        let mut prev = s.partition_available(&available, 8);
        for _ in 0..100 {
            assert!(available.contains(&prev));
            s.on_new_batch();
            let next = s.partition_available(&available, 8);
            assert_ne!(next, prev);
            prev = next;
        }
        // Only one available: it is used even though it is the one just left.
        s.on_new_batch();
        assert_eq!(s.partition_available(&[prev], 8), prev);
    }

    #[test]
    fn sticky_drops_a_partition_that_no_longer_exists() {
        let mut s = StickyPartitioner::new();
        s.current = Some(7);
        let p = s.partition(4);
        assert!((0..4).contains(&p));
    }

    #[test]
    fn default_partitioner_hashes_keys_and_sticks_without_one() {
        let p = Partitioner::default();
        let mut sticky = StickyPartitioner::new();
        let keyed = PartitionInput::new("t", Some(b"foobar"), Some(b"v"), 10).with_available(&[0]);
        assert_eq!(
            p.partition(&keyed, &mut sticky).unwrap(),
            6,
            "keys ignore availability"
        );
        assert_eq!(
            sticky.current(),
            None,
            "keyed records leave the sticky state alone"
        );
        let empty_key = PartitionInput::new("t", Some(b""), None, 1000);
        assert_eq!(
            p.partition(&empty_key, &mut sticky).unwrap(),
            partition_for_key(b"", 1000)
        );
        let keyless = PartitionInput::new("t", None, Some(b"v"), 10);
        let first = p.partition(&keyless, &mut sticky).unwrap();
        assert_eq!(p.partition(&keyless, &mut sticky).unwrap(), first);
        assert_eq!(
            p.partition(&PartitionInput::new("t", None, None, 0), &mut sticky),
            Err(PartitionError::NoPartitions { topic: "t".into() })
        );
    }

    #[test]
    fn custom_partitioner_is_called_and_checked() {
        let p = Partitioner::custom(|r| r.value.map_or(0, |v| v.len() as i32));
        let mut sticky = StickyPartitioner::new();
        assert_eq!(
            p.partition(
                &PartitionInput::new("t", None, Some(b"abc"), 5),
                &mut sticky
            )
            .unwrap(),
            3
        );
        let err = p
            .partition(
                &PartitionInput::new("t", None, Some(b"abcdef"), 5),
                &mut sticky,
            )
            .unwrap_err();
        assert_eq!(
            err,
            PartitionError::OutOfRange {
                topic: "t".into(),
                partition: 6,
                num_partitions: 5
            }
        );
        assert!(err.to_string().contains("\"t\""), "{err}");
        assert_eq!(format!("{p:?}"), "Custom(<fn>)");
    }
}
