//! The records a benchmark sends: values of an exact size that compress like real events, and
//! keys drawn from a chosen distribution. Both are generated once, before the clock starts, so
//! that producing measures the client and not the generator (Kafka's perf-test tool does the
//! same with its payload file).
//!
//! The values are JSON events built like the batch-decoding benchmark's (repeated field names,
//! enumerated values, ids, timestamps, random words), from a seeded generator: the same seed
//! gives the same bytes on every run and in every client of the side-by-side harness.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

/// A small deterministic generator (xorshift64), so the data is the same on every run.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced: xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A JSON event of exactly `size` bytes (for `size` of 2 or more; shorter sizes get a prefix
/// of one).
pub fn json_value(rng: &mut XorShift, seq: u64, size: usize) -> Vec<u8> {
    const EVENTS: [&str; 6] = [
        "page_view",
        "click",
        "add_to_cart",
        "purchase",
        "search",
        "login",
    ];
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "kafka", "stream", "event", "order", "user", "session", "mobile",
        "desktop", "eu-west", "us-east", "checkout", "banner", "promo", "retry",
    ];
    let mut v = format!(
        r#"{{"seq":{seq},"user":"u{:07}","event":"{}","ts":{},"price":{}.{:02},"payload":""#,
        rng.below(5_000_000),
        EVENTS[rng.below(EVENTS.len() as u64) as usize],
        1_700_000_000_000u64 + seq * 7 + rng.below(5),
        rng.below(500),
        rng.below(100),
    );
    while v.len() < size {
        v.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        v.push(if rng.below(4) == 0 { '-' } else { ' ' });
    }
    if size >= 2 {
        v.truncate(size - 2);
        v.push_str("\"}");
    } else {
        v.truncate(size);
    }
    v.into_bytes()
}

/// A pool of distinct values, handed out in turn. Cloning a `Bytes` is a reference-count
/// increment, so handing out a value allocates nothing.
#[derive(Debug, Clone)]
pub struct Payloads {
    values: Vec<Bytes>,
    next: usize,
}

/// At most this many bytes of distinct values are generated (more would only cost memory: the
/// compression ratio is already that of real data with a few hundred distinct values).
const POOL_BYTES: usize = 16 << 20;
/// At most this many distinct values.
const POOL_VALUES: usize = 4096;

impl Payloads {
    /// Values of exactly `size` bytes from `seed`.
    pub fn new(size: usize, seed: u64) -> Self {
        let count = (POOL_BYTES / size.max(1)).clamp(1, POOL_VALUES);
        let mut rng = XorShift::new(seed ^ size as u64);
        let values = (0..count as u64)
            .map(|i| Bytes::from(json_value(&mut rng, i, size)))
            .collect();
        Self { values, next: 0 }
    }

    /// The next value.
    #[inline]
    pub fn next_value(&mut self) -> Bytes {
        let v = self.values[self.next].clone();
        self.next += 1;
        if self.next == self.values.len() {
            self.next = 0;
        }
        v
    }

    /// How many distinct values the pool holds.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }
}

/// How records are keyed (`--keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDistribution {
    /// No key: the partitioner spreads records (sticky batches, as the Java client).
    None,
    /// `sequential:N`: keys `0..N` in turn.
    Sequential(u64),
    /// `random:N`: a uniformly random key among `N`.
    Random(u64),
}

impl fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDistribution::None => f.write_str("none"),
            KeyDistribution::Sequential(n) => write!(f, "sequential:{n}"),
            KeyDistribution::Random(n) => write!(f, "random:{n}"),
        }
    }
}

/// The most distinct keys: they are generated up front.
pub const MAX_KEYS: u64 = 10_000_000;

impl FromStr for KeyDistribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(KeyDistribution::None);
        }
        let (kind, n) = s
            .split_once(':')
            .ok_or_else(|| format!("bad key distribution {s:?}: none, sequential:N or random:N"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| format!("bad key count in {s:?}: not a number"))?;
        if n == 0 || n > MAX_KEYS {
            return Err(format!("key count in {s:?} must be 1 to {MAX_KEYS}"));
        }
        match kind {
            "sequential" | "seq" => Ok(KeyDistribution::Sequential(n)),
            "random" | "uniform" => Ok(KeyDistribution::Random(n)),
            _ => Err(format!(
                "bad key distribution {s:?}: none, sequential:N or random:N"
            )),
        }
    }
}

/// Hands out keys following a [`KeyDistribution`], from keys generated up front.
#[derive(Debug, Clone)]
pub struct Keys {
    distribution: KeyDistribution,
    keys: Vec<Bytes>,
    next: usize,
    rng: XorShift,
}

impl Keys {
    /// The keys of `distribution` (`key-00000000` ...), drawn with `seed`.
    pub fn new(distribution: KeyDistribution, seed: u64) -> Self {
        let n = match distribution {
            KeyDistribution::None => 0,
            KeyDistribution::Sequential(n) | KeyDistribution::Random(n) => n.min(MAX_KEYS),
        };
        let keys = (0..n).map(|i| Bytes::from(format!("key-{i:08}"))).collect();
        Self {
            distribution,
            keys,
            next: 0,
            rng: XorShift::new(seed),
        }
    }

    /// The length of every key (they are all as long), 0 without keys.
    pub fn key_len(&self) -> usize {
        self.keys.first().map_or(0, Bytes::len)
    }

    /// The next key (`None` for [`KeyDistribution::None`]).
    #[inline]
    pub fn next_key(&mut self) -> Option<Bytes> {
        match self.distribution {
            KeyDistribution::None => None,
            KeyDistribution::Sequential(_) => {
                let k = self.keys.get(self.next).cloned();
                self.next += 1;
                if self.next >= self.keys.len() {
                    self.next = 0;
                }
                k
            }
            KeyDistribution::Random(_) => {
                let i = self.rng.below(self.keys.len() as u64) as usize;
                self.keys.get(i).cloned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_exact_size_and_repeat_per_seed() {
        for size in [1usize, 2, 10, 100, 1024, 10_000] {
            let mut p = Payloads::new(size, 7);
            for _ in 0..10 {
                assert_eq!(p.next_value().len(), size);
            }
        }
        let (mut a, mut b) = (Payloads::new(100, 7), Payloads::new(100, 7));
        assert_eq!(a.next_value(), b.next_value());
        let v = Payloads::new(100, 7).next_value();
        assert!(v.starts_with(b"{\"seq\":0,"), "{v:?}");
        assert!(v.ends_with(b"\"}"));
        assert_ne!(Payloads::new(100, 8).next_value(), v);
    }

    #[test]
    fn pool_is_bounded_and_cycles() {
        let mut p = Payloads::new(1 << 20, 1);
        assert_eq!(p.distinct(), 16);
        let first = p.next_value();
        for _ in 1..16 {
            assert_ne!(p.next_value(), first);
        }
        assert_eq!(p.next_value(), first);
        assert_eq!(Payloads::new(100, 1).distinct(), POOL_VALUES);
    }

    #[test]
    fn key_distributions_parse_and_print() {
        for s in ["none", "sequential:5", "random:1000"] {
            assert_eq!(s.parse::<KeyDistribution>().unwrap().to_string(), s);
        }
        assert_eq!(
            "seq:3".parse::<KeyDistribution>(),
            Ok(KeyDistribution::Sequential(3))
        );
        for bad in [
            "",
            "random",
            "random:0",
            "random:x",
            "zipf:3",
            "random:99999999999",
        ] {
            assert!(bad.parse::<KeyDistribution>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_follow_their_distribution() {
        assert_eq!(Keys::new(KeyDistribution::None, 1).next_key(), None);
        let mut seq = Keys::new(KeyDistribution::Sequential(3), 1);
        let got: Vec<Bytes> = (0..4).map(|_| seq.next_key().unwrap()).collect();
        assert_eq!(got[0], Bytes::from("key-00000000"));
        assert_eq!(got[2], Bytes::from("key-00000002"));
        assert_eq!(got[3], got[0]);
        assert_eq!(seq.key_len(), 12);
        let mut random = Keys::new(KeyDistribution::Random(4), 1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(random.next_key().unwrap());
        }
        assert_eq!(seen.len(), 4, "200 uniform draws among 4 keys hit each");
    }
}
