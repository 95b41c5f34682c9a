//! A latency histogram with constant memory: exact below 128 µs, then 64 buckets per power of
//! two (at most 1.6% relative error, as HdrHistogram with two significant digits), so that
//! recording a latency per record costs an increment whatever the run's length.

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 64;
/// Octaves above [`EXACT`]: up to 2^63 µs.
const OCTAVES: u64 = 63 - 7 + 1;

/// A histogram of durations in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // >= 7
    let mantissa = v >> (exp - 6); // in 64..128
    (EXACT + (exp - 7) * PER_OCTAVE + (mantissa - PER_OCTAVE)) as usize
}

/// The middle of bucket `i`'s range.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let exp = (i - EXACT) / PER_OCTAVE + 7;
    let mantissa = (i - EXACT) % PER_OCTAVE + PER_OCTAVE;
    let width = 1u64 << (exp - 6);
    (mantissa << (exp - 6)) + width / 2
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; (EXACT + OCTAVES * PER_OCTAVE) as usize],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts one value (microseconds).
    #[inline]
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.count += 1;
        self.sum += u128::from(micros);
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p99.9): the smallest recorded
    /// value such that at least `q` of all values are at or below it, to the bucket's precision
    /// and never outside the recorded minimum and maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn large_values_are_within_two_percent() {
        for v in [
            128u64,
            129,
            1000,
            4095,
            65_537,
            1_000_000,
            123_456_789,
            u64::MAX / 3,
        ] {
            let got = value_of(index(v));
            let err = (got as f64 - v as f64).abs() / v as f64;
            assert!(err <= 1.0 / 64.0, "{v} -> {got} ({err})");
        }
        // Buckets are contiguous and ordered.
        for v in [127u64, 128, 255, 256, 1 << 20, (1 << 20) - 1] {
            assert!(index(v) < index(v + 1) || index(v) == index(v + 1));
        }
        assert!(index(u64::MAX) < Histogram::new().counts.len());
    }

    #[test]
    fn quantiles_of_a_skewed_distribution() {
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(1_000);
        }
        for _ in 0..9 {
            h.record(50_000);
        }
        h.record(2_000_000);
        let p50 = h.quantile(0.5);
        assert!((984..=1_016).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((984..=1_016).contains(&p99), "{p99}");
        let p999 = h.quantile(0.999);
        assert!((49_000..=51_000).contains(&p999), "{p999}");
        assert_eq!(h.quantile(1.0), 2_000_000);
        assert_eq!(h.max(), 2_000_000);
    }

    #[test]
    fn merge_adds_counts_and_extremes() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        a.record(10);
        b.record(20);
        b.record(30);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.0), 10);
        assert_eq!(a.max(), 30);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
