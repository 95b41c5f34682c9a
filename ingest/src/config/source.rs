//! `[source]`: the cluster, the topics, the consumer group, where to start, and how to connect.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// Brokers as a comma-separated string or a list.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Brokers {
    /// `"host1:9092,host2:9092"`.
    Text(String),
    /// `["host1:9092", "host2:9092"]`.
    List(Vec<String>),
}

impl Brokers {
    /// The bootstrap servers as one comma-separated string.
    pub fn joined(&self) -> String {
        match self {
            Brokers::Text(s) => s.clone(),
            Brokers::List(l) => l.join(","),
        }
    }
}

/// The source section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Bootstrap servers.
    pub brokers: Brokers,
    /// Topics to read.
    #[serde(default)]
    pub topics: Vec<String>,
    /// One topic (a shorthand for `topics = [..]`, as dgkafka's `topic`).
    pub topic: Option<String>,
    /// A regular expression: every matching topic is read, including ones created later.
    pub topic_pattern: Option<String>,
    /// The consumer group (dgkafka's `consumer_group`); processes sharing it share the
    /// partitions.
    #[serde(default = "default_group", alias = "consumer_group")]
    pub group: String,
    /// Where to start a partition the sink has no offset for. `earliest` and `latest` apply
    /// only when the group has no committed offset either; an explicit offset or a timestamp
    /// wins over the group's offset (the sink's offset always wins: it is what is durable).
    #[serde(default)]
    pub start: StartAt,
    /// `read_committed` (default: aborted transactions are never ingested) or
    /// `read_uncommitted`.
    #[serde(default)]
    pub isolation: Isolation,
    /// The group protocol (Kafka's `group.protocol`): `classic` (default) or `consumer`
    /// (KIP-848: the broker assigns, partitions move one by one; needs Kafka 4.0+).
    #[serde(default)]
    pub group_protocol: GroupProtocolConfig,
    /// The client id brokers see (default `kingest`).
    pub client_id: Option<String>,
    /// TLS settings; present means TLS is on.
    pub tls: Option<TlsSection>,
    /// SASL settings.
    pub sasl: Option<SaslSection>,
    /// Client settings passed through by their Kafka names (`fetch.max.bytes`,
    /// `session.timeout.ms`, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_group() -> String {
    "kingest".to_owned()
}

impl SourceConfig {
    /// Every topic named, `topic` and `topics` together.
    pub fn topic_names(&self) -> Vec<String> {
        let mut names = self.topics.clone();
        if let Some(t) = &self.topic {
            if !names.contains(t) {
                names.push(t.clone());
            }
        }
        names
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.joined().trim().is_empty() {
            return Err(ConfigError::invalid(
                "source.brokers",
                "no bootstrap server given",
            ));
        }
        let names = self.topic_names();
        match (&self.topic_pattern, names.is_empty()) {
            (None, true) => {
                return Err(ConfigError::invalid(
                    "source.topics",
                    "name the topics (topics = [\"events\"]) or a topic_pattern",
                ))
            }
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    "source.topic_pattern",
                    "give topics or topic_pattern, not both",
                ))
            }
            _ => {}
        }
        if self.group.is_empty() {
            return Err(ConfigError::invalid(
                "source.group",
                "the consumer group cannot be empty",
            ));
        }
        if let Some(sasl) = &self.sasl {
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
                .contains(&sasl.mechanism.as_str())
            {
                return Err(ConfigError::invalid(
                    "source.sasl.mechanism",
                    format!(
                        "{:?}: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
                        sasl.mechanism
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Where to start reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record (dgkafka's `-force-reset-earliest`, Pinot's `smallest`).
    #[default]
    Earliest,
    /// Only new records.
    Latest,
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
    /// Explicit offsets per (topic, partition); others start at the earliest.
    Offsets(BTreeMap<(String, i32), i64>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StartRepr {
    Text(String),
    Millis(i64),
    Table { offsets: BTreeMap<String, i64> },
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match StartRepr::deserialize(d)? {
            StartRepr::Millis(ms) => Ok(StartAt::Timestamp(ms)),
            StartRepr::Text(t) => match t.as_str() {
                "earliest" | "smallest" | "beginning" => Ok(StartAt::Earliest),
                "latest" | "largest" | "end" => Ok(StartAt::Latest),
                other => parse_time(other)
                    .map(StartAt::Timestamp)
                    .map_err(D::Error::custom),
            },
            StartRepr::Table { offsets } => {
                let mut out = BTreeMap::new();
                for (k, v) in offsets {
                    let (topic, partition) = k.rsplit_once(':').ok_or_else(|| {
                        D::Error::custom(format!(
                            "offsets key {k:?}: write it as \"topic:partition\""
                        ))
                    })?;
                    let partition: i32 = partition.parse().map_err(|_| {
                        D::Error::custom(format!("offsets key {k:?}: bad partition"))
                    })?;
                    out.insert((topic.to_owned(), partition), v);
                }
                Ok(StartAt::Offsets(out))
            }
        }
    }
}

/// Parses an RFC 3339 time (`2024-01-02T03:04:05Z`, `2024-01-02T03:04:05.123+02:00`) or a date
/// (`2024-01-02`, midnight UTC) into ms since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || {
        format!("{text:?}: expected earliest, latest, a time like 2024-01-02T03:04:05Z, or ms since the epoch")
    };
    let t = text.trim();
    let (date, rest) = t.split_at(t.find('T').unwrap_or(t.len()));
    let mut d = date.split('-');
    let (Some(y), Some(m), Some(day), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (y, m, day): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        day.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, day);
    if rest.is_empty() {
        return Ok(days * 86_400_000);
    }
    let rest = &rest[1..];
    let tz_at = rest.find(['Z', 'z', '+', '-']).ok_or_else(bad)?;
    let (clock, tz) = rest.split_at(tz_at);
    let mut c = clock.split(':');
    let (Some(h), Some(mi), Some(s), None) = (c.next(), c.next(), c.next(), c.next()) else {
        return Err(bad());
    };
    let (h, mi): (i64, i64) = (
        h.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
    );
    let secs: f64 = s.parse().map_err(|_| bad())?;
    let offset_min = match tz {
        "Z" | "z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let (oh, om) = tz[1..].split_once(':').ok_or_else(bad)?;
            sign * (oh.parse::<i64>().map_err(|_| bad())? * 60
                + om.parse::<i64>().map_err(|_| bad())?)
        }
    };
    Ok(days * 86_400_000
        + (h * 3600 + mi * 60 - offset_min * 60) * 1000
        + (secs * 1000.0).round() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `source.group_protocol`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupProtocolConfig {
    /// JoinGroup/SyncGroup; the members assign.
    #[default]
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat; the broker assigns.
    Consumer,
}

/// Transactional isolation.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Only committed transactions' records.
    #[default]
    ReadCommitted,
    /// Everything, aborted transactions included.
    ReadUncommitted,
}

/// `[source.tls]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// A PEM file of CA certificates (`ssl.ca.location`); default: the system's.
    pub ca: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert: Option<String>,
    /// Client key (PEM) for mutual TLS.
    pub key: Option<String>,
    /// The name to verify the brokers' certificates against, when not their host names.
    pub server_name: Option<String>,
    /// Skip certificate verification (tests only; logged loudly).
    #[serde(default)]
    pub danger_accept_invalid_certs: bool,
}

/// `[source.sasl]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SaslSection {
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
    pub mechanism: String,
    /// The user (PLAIN, SCRAM).
    pub username: Option<String>,
    /// The password; prefer `password_env`.
    pub password: Option<String>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// An OAUTHBEARER token; prefer `token_env`.
    pub token: Option<String>,
    /// An environment variable holding the OAUTHBEARER token.
    pub token_env: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-01-02"), Ok(1_704_153_600_000));
        assert_eq!(
            parse_time("2024-01-02T03:04:05.123Z"),
            Ok(1_704_164_645_123)
        );
        assert_eq!(
            parse_time("2024-01-02T05:04:05.123+02:00"),
            Ok(1_704_164_645_123)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01").is_err());
    }
}
