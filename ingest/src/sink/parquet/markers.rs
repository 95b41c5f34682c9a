//! Which offset markers a Parquet sink may delete: those a newer committed file supersedes.
//!
//! An offset marker is a committed zero-row file whose footer records one partition's resume
//! offset (see the [sink's docs](super)). Resuming takes the highest `next` of a partition's
//! files, so a marker whose `next` another committed file reaches adds nothing and can go. To
//! keep that safe when several processes (or one after a crash) delete markers of the same
//! partition, files are ranked in one total order, [`Rank`]: by `next`, then a file with rows
//! above a marker, then by path. A marker is deleted only when a committed file ranks above
//! it, so the top-ranked file of a partition is never deleted by anyone, and it carries the
//! highest `next`. Data files are never deleted.
//!
//! [`Markers`] learns committed files from two sources: the sink's own commits (recorded after
//! the commit is durable) and every scan of the footers ([`super::ParquetSink::committed_offsets`]
//! and [`super::ParquetSink::committed_files`], which the engine runs when partitions are
//! assigned), so markers left by earlier processes, by a crash between a commit and a deletion,
//! or by `kingest reset-offsets --sink` are deleted too. It only says what to delete; the sink
//! deletes after its flushes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sink::PartitionKey;

/// A committed file's place in the order of its partition's files: see the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    /// The offset the file says to resume from.
    pub next: i64,
    /// Whether the file holds rows (is not a marker).
    pub data: bool,
    /// Root-relative path.
    pub rel: String,
}

/// What is known of one partition's committed files.
#[derive(Debug, Default)]
struct Known {
    /// The highest-ranked committed file seen.
    top: Option<Rank>,
    /// Markers seen and not yet deleted.
    markers: BTreeSet<Rank>,
}

/// Committed files seen by the sink and its scans, shared with scan futures (which borrow
/// nothing from the sink). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(super) struct Markers {
    inner: Arc<Mutex<HashMap<PartitionKey, Known>>>,
}

impl Markers {
    fn lock(&self) -> MutexGuard<'_, HashMap<PartitionKey, Known>> {
        // The map stays consistent between statements: a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a committed file of `key`. `marker`: it holds no rows and records `key` alone
    /// in a commit of its own, so it may be deleted once superseded; anything else never is.
    pub(super) fn seen(&self, key: &PartitionKey, rel: &str, next: i64, marker: bool) {
        let rank = Rank {
            next,
            data: !marker,
            rel: rel.to_owned(),
        };
        let mut map = self.lock();
        let known = map.entry(key.clone()).or_default();
        if known.top.as_ref().is_none_or(|top| rank > *top) {
            known.top = Some(rank.clone());
        }
        if marker {
            known.markers.insert(rank);
        }
    }

    /// The markers some committed file supersedes, per partition: safe to delete now, since
    /// everything recorded by [`Markers::seen`] was durable when it was recorded.
    pub(super) fn superseded(&self) -> Vec<(PartitionKey, Rank)> {
        let map = self.lock();
        let mut out = Vec::new();
        for (key, known) in map.iter() {
            let Some(top) = &known.top else { continue };
            out.extend(
                known
                    .markers
                    .range(..top.clone())
                    .map(|m| (key.clone(), m.clone())),
            );
        }
        out
    }

    /// Forgets a deleted marker.
    pub(super) fn deleted(&self, key: &PartitionKey, rank: &Rank) {
        if let Some(known) = self.lock().get_mut(key) {
            known.markers.remove(rank);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_markers_only_the_top_ranked_file_survives() {
        let m = Markers::default();
        let k = PartitionKey::new("t", 0);
        m.seen(&k, "a", 100, true);
        assert!(m.superseded().is_empty(), "a lone marker is the top");
        m.seen(&k, "b", 200, true);
        let s = m.superseded();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].1.rel.as_str(), s[0].1.next), ("a", 100));
        m.deleted(&k, &s[0].1);
        assert!(m.superseded().is_empty());
        // A data file with the same `next` outranks a marker; data files are never listed.
        m.seen(&k, "c", 200, false);
        let s = m.superseded();
        assert_eq!(
            s.iter().map(|(_, r)| r.rel.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        // Two markers with one `next`: the path decides, so two processes never delete both.
        let k1 = PartitionKey::new("t", 1);
        m.seen(&k1, "y", 50, true);
        m.seen(&k1, "x", 50, true);
        let s: Vec<_> = m
            .superseded()
            .into_iter()
            .filter(|(k, _)| *k == k1)
            .collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1.rel, "x");
        // An older file seen late (a scan that started earlier) changes nothing.
        m.seen(&k1, "w", 10, false);
        assert_eq!(
            m.superseded().into_iter().filter(|(k, _)| *k == k1).count(),
            1
        );
    }
}
