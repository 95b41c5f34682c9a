//! What one measured run is — which client, which direction, which data — and what it reports,
//! as the `bench-client` command line and its one-line JSON answers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The client libraries compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientKind {
    /// librdkafka through the `rdkafka` crate (`BaseProducer`, `BaseConsumer`).
    Rdkafka,
    /// kingest-client (`Producer`, `PartitionConsumer`).
    Kingest,
    /// rskafka (`BatchProducer`, `StreamConsumer`).
    Rskafka,
}

impl ClientKind {
    /// Every client, the reference (librdkafka) first.
    pub const ALL: [ClientKind; 3] = [
        ClientKind::Rdkafka,
        ClientKind::Kingest,
        ClientKind::Rskafka,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Rdkafka => "rdkafka",
            ClientKind::Kingest => "kingest",
            ClientKind::Rskafka => "rskafka",
        }
    }

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            ClientKind::Rdkafka => "librdkafka",
            ClientKind::Kingest => "kingest",
            ClientKind::Rskafka => "rskafka",
        }
    }
}

/// Which way records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mode {
    /// Read a preloaded topic from the beginning to its end.
    Consume,
    /// Write records to an empty topic, all acknowledged.
    Produce,
}

impl Mode {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Consume => "consume",
            Mode::Produce => "produce",
        }
    }
}

/// The codecs compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Codec {
    /// No compression.
    None,
    /// LZ4 frames.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Codec {
    /// The name on the command line (and librdkafka's `compression.codec` value).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// The protocol crate's codec.
    pub fn compression(self) -> kingest_protocol::record::Compression {
        use kingest_protocol::record::Compression;
        match self {
            Codec::None => Compression::None,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

macro_rules! from_name {
    ($t:ty, $all:expr, $what:literal) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $all.into_iter()
                    .find(|x| x.name() == s)
                    .ok_or_else(|| format!("unknown {} {s:?}", $what))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

from_name!(ClientKind, ClientKind::ALL, "client");
from_name!(Mode, [Mode::Consume, Mode::Produce], "mode");
from_name!(Codec, [Codec::None, Codec::Lz4, Codec::Zstd], "codec");

/// One run of one client: the `bench-client run` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The client.
    pub client: ClientKind,
    /// The direction.
    pub mode: Mode,
    /// Bootstrap servers.
    pub brokers: String,
    /// The topic (preloaded for consume, empty for produce).
    pub topic: String,
    /// The topic's partitions.
    pub partitions: i32,
    /// Records to consume or produce.
    pub records: u64,
    /// Value size in bytes (no keys).
    pub record_size: usize,
    /// The codec producers compress with (consumers read what is there).
    pub codec: Codec,
    /// Seed of the values.
    pub seed: u64,
}

impl RunSpec {
    /// The `bench-client run` arguments for this run.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "run".into(),
            "--client".into(),
            self.client.name().into(),
            "--mode".into(),
            self.mode.name().into(),
            "--brokers".into(),
            self.brokers.clone(),
            "--topic".into(),
            self.topic.clone(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--records".into(),
            self.records.to_string(),
            "--record-size".into(),
            self.record_size.to_string(),
            "--codec".into(),
            self.codec.name().into(),
            "--seed".into(),
            self.seed.to_string(),
        ]
    }
}

/// What a client reports about its own run: the data phase only, from the first send or the
/// first fetch to the last acknowledgement or the last record. Connecting is not counted; a
/// producer sends its first record alone and waits for it before the clock starts (connection,
/// metadata, producer id), so a produce run reports one record fewer than it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Records acknowledged or consumed.
    pub records: u64,
    /// Value bytes acknowledged or consumed.
    pub bytes: u64,
    /// The data phase's wall time.
    pub seconds: f64,
}

/// A run as the parent saw it: the client's own report and the child process's resource use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The client's report.
    pub result: RunResult,
    /// The child's whole life, start-up included.
    pub wall_seconds: f64,
    /// User CPU of the child (all its threads), from getrusage.
    pub user_seconds: f64,
    /// System CPU of the child.
    pub system_seconds: f64,
    /// Peak resident set size of the child (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
}

impl Measured {
    /// User plus system CPU.
    pub fn cpu_seconds(&self) -> f64 {
        self.user_seconds + self.system_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in ClientKind::ALL {
            assert_eq!(c.name().parse::<ClientKind>(), Ok(c));
        }
        for c in [Codec::None, Codec::Lz4, Codec::Zstd] {
            assert_eq!(c.to_string().parse::<Codec>(), Ok(c));
        }
        assert_eq!("produce".parse::<Mode>(), Ok(Mode::Produce));
        assert!("gzip".parse::<Codec>().is_err());
        assert!("java".parse::<ClientKind>().is_err());
    }

    #[test]
    fn spec_becomes_arguments() {
        let spec = RunSpec {
            client: ClientKind::Rskafka,
            mode: Mode::Consume,
            brokers: "127.0.0.1:9".into(),
            topic: "t".into(),
            partitions: 4,
            records: 10,
            record_size: 100,
            codec: Codec::Zstd,
            seed: 3,
        };
        let args = spec.to_args();
        assert_eq!(args[0], "run");
        let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("--client"), "rskafka");
        assert_eq!(at("--codec"), "zstd");
        assert_eq!(at("--records"), "10");
    }
}
