//! Control records: the commit and abort markers a transaction coordinator writes.

use super::error::RecordErrorKind;

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlType {
    /// The producer's transaction was aborted: its records before this marker are dropped by
    /// read_committed consumers.
    Abort,
    /// The producer's transaction was committed.
    Commit,
    /// A type used by KRaft's own logs (leader change, snapshots, voters) or a future one.
    Other(i16),
}

impl ControlType {
    /// The type's id in a control record's key.
    pub fn id(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
            ControlType::Other(id) => id,
        }
    }

    fn from_id(id: i16) -> Self {
        match id {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => ControlType::Other(other),
        }
    }
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// The key's version (0 today).
    pub version: i16,
    /// Commit, abort, or another control type.
    pub kind: ControlType,
    /// For commit and abort markers, the epoch of the coordinator that wrote them.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// A transaction marker.
    pub fn marker(commit: bool, coordinator_epoch: i32) -> Self {
        Self {
            version: 0,
            kind: if commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
            coordinator_epoch: Some(coordinator_epoch),
        }
    }

    /// Decodes a control record from its key (version, type) and value (for markers: version,
    /// coordinator epoch).
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self, RecordErrorKind> {
        let key = key.ok_or(RecordErrorKind::BadControlRecord("null key"))?;
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(RecordErrorKind::BadControlRecord(
                "key shorter than 4 bytes",
            ));
        };
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(RecordErrorKind::BadControlRecord("negative key version"));
        }
        let kind = ControlType::from_id(i16::from_be_bytes([t0, t1]));
        let coordinator_epoch = match kind {
            ControlType::Abort | ControlType::Commit => {
                let value = value.ok_or(RecordErrorKind::BadControlRecord(
                    "marker with a null value",
                ))?;
                let [_, _, e0, e1, e2, e3, ..] = *value else {
                    return Err(RecordErrorKind::BadControlRecord(
                        "marker value shorter than 6 bytes",
                    ));
                };
                Some(i32::from_be_bytes([e0, e1, e2, e3]))
            }
            ControlType::Other(_) => None,
        };
        Ok(Self {
            version,
            kind,
            coordinator_epoch,
        })
    }

    /// The record key: version and type.
    pub fn key_bytes(&self) -> [u8; 4] {
        let v = self.version.to_be_bytes();
        let t = self.kind.id().to_be_bytes();
        [v[0], v[1], t[0], t[1]]
    }

    /// The record value of a marker: version 0 and the coordinator epoch.
    pub fn value_bytes(&self) -> [u8; 6] {
        let e = self.coordinator_epoch.unwrap_or(0).to_be_bytes();
        [0, 0, e[0], e[1], e[2], e[3]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for commit in [true, false] {
            let m = ControlRecord::marker(commit, 7);
            assert_eq!(
                ControlRecord::parse(Some(&m.key_bytes()), Some(&m.value_bytes())),
                Ok(m)
            );
        }
    }

    #[test]
    fn malformed_markers() {
        assert!(ControlRecord::parse(None, None).is_err());
        assert!(ControlRecord::parse(Some(&[0, 0, 0]), None).is_err());
        assert!(ControlRecord::parse(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0])).is_err());
        assert!(ControlRecord::parse(Some(&[0xff, 0xff, 0, 1]), Some(&[0; 6])).is_err());
        let other = ControlRecord::parse(Some(&[0, 0, 0, 3]), None).unwrap();
        assert_eq!(other.kind, ControlType::Other(3));
    }
}
