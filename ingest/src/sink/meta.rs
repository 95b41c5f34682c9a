//! The `kingest.offsets` key-value metadata in each Parquet file's footer: which Kafka offsets
//! the file covers, for which consumer group, and which other files were committed with it.
//!
//! ```json
//! {"version":1,"group":"events-to-parquet",
//!  "offsets":{"events":{"3":[1200,1450]}},
//!  "commit":"6f1c…","files":["date=2024-01-01/events-3-…-6f1c….parquet",
//!                            "date=2024-01-02/events-3-…-6f1c….parquet"]}
//! ```
//!
//! `offsets` maps topic to partition to `[first, next)`: the offsets the commit covers, `next`
//! being where to resume. It is a map (not a single pair) so that readers need no change if a
//! file ever holds several partitions; today it holds exactly one. `files` lists, relative to
//! the sink's root, every file of the same commit (one per `partition_by` directory, all with
//! the same `commit` id and range): recovery uses it to tell a complete commit from a torn one.
//! The footer is the record because it is written into the file before the file is renamed (or
//! uploaded) into place, so data and offsets appear in the same atomic step.

use std::collections::BTreeMap;

use parquet::file::metadata::ParquetMetaData;
use serde::{Deserialize, Serialize};

use super::{OffsetRange, PartitionKey, SinkError};

/// The key-value metadata key.
pub const OFFSETS_KEY: &str = "kingest.offsets";

/// The only layout version written and understood.
const VERSION: u32 = 1;

/// The decoded `kingest.offsets` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileMeta {
    /// Layout version (1).
    pub version: u32,
    /// The Kafka consumer group whose progress this is.
    pub group: String,
    /// Topic → partition (decimal, as JSON keys are strings) → `[first, next)`.
    pub offsets: BTreeMap<String, BTreeMap<String, [i64; 2]>>,
    /// Id shared by the files of one commit.
    pub commit: String,
    /// Root-relative final paths of every file of the commit, this one included.
    pub files: Vec<String>,
}

impl FileMeta {
    /// The metadata of one commit of `key` covering `range`.
    pub(crate) fn new(
        group: &str,
        key: &PartitionKey,
        range: OffsetRange,
        commit: &str,
        files: Vec<String>,
    ) -> Self {
        let mut partitions = BTreeMap::new();
        partitions.insert(key.partition.to_string(), [range.first, range.next]);
        let mut offsets = BTreeMap::new();
        offsets.insert(key.topic.clone(), partitions);
        Self {
            version: VERSION,
            group: group.to_owned(),
            offsets,
            commit: commit.to_owned(),
            files,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        // Serializing plain maps, strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the metadata from a file's footer. `Ok(None)`: the file has no `kingest.offsets`
    /// (not written by kingest); `Err`: it has one that is malformed.
    pub(crate) fn from_footer(
        path: &str,
        footer: &ParquetMetaData,
    ) -> Result<Option<Self>, SinkError> {
        let Some(kv) = footer.file_metadata().key_value_metadata() else {
            return Ok(None);
        };
        let Some(entry) = kv.iter().find(|kv| kv.key == OFFSETS_KEY) else {
            return Ok(None);
        };
        let bad = |reason: String| SinkError::Metadata {
            path: path.to_owned(),
            reason,
        };
        let value = entry
            .value
            .as_deref()
            .ok_or_else(|| bad("no value".into()))?;
        let meta: FileMeta = serde_json::from_str(value).map_err(|e| bad(e.to_string()))?;
        if meta.version != VERSION {
            return Err(bad(format!(
                "version {} (this kingest reads {VERSION})",
                meta.version
            )));
        }
        if meta.ranges().count() == 0 {
            return Err(bad("no offsets".into()));
        }
        for item in meta.ranges_checked() {
            let (key, range) = item.map_err(bad)?;
            if range.first < 0 || range.first > range.next {
                return Err(bad(format!("{key}: {range} is not a range of offsets")));
            }
        }
        Ok(Some(meta))
    }

    /// Every `(partition, range)` recorded, skipping malformed partition numbers (which
    /// [`FileMeta::from_footer`] has already rejected).
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (PartitionKey, OffsetRange)> + '_ {
        self.ranges_checked().filter_map(Result::ok)
    }

    fn ranges_checked(
        &self,
    ) -> impl Iterator<Item = Result<(PartitionKey, OffsetRange), String>> + '_ {
        self.offsets.iter().flat_map(|(topic, partitions)| {
            partitions.iter().map(move |(p, [first, next])| {
                let partition: i32 = p
                    .parse()
                    .map_err(|_| format!("topic {topic:?}: partition {p:?} is not a number"))?;
                Ok((
                    PartitionKey::new(topic.clone(), partition),
                    OffsetRange::new(*first, *next),
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_meta_json_round_trips() {
        let key = PartitionKey::new("events", 3);
        let m = FileMeta::new(
            "g",
            &key,
            OffsetRange::new(10, 20),
            "abc",
            vec!["x.parquet".into()],
        );
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"version":1,"group":"g","offsets":{"events":{"3":[10,20]}},"commit":"abc","files":["x.parquet"]}"#
        );
        let back: FileMeta = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.ranges().collect::<Vec<_>>(),
            vec![(key, OffsetRange::new(10, 20))]
        );
    }
}
