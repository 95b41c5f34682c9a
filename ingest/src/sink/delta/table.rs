//! Reading a table's state from its log (newest checkpoint, then the commits after it),
//! catching up with commits made since, and writing checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::checkpoint;
use super::error::DeltaError;
use super::log::{
    checkpoint_path, commit_path, parse_commit, LogFile, Read, TableState, LAST_CHECKPOINT,
};
use super::logstore::LogStore;
use crate::sink::{Result, SinkError};

fn delta(store: &LogStore, e: DeltaError) -> SinkError {
    SinkError::Delta {
        table: store.display(""),
        source: Box::new(e),
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// The version `_last_checkpoint` names, if it is there and readable (it is only a hint).
pub(crate) async fn last_checkpoint_hint(store: &LogStore) -> Result<Option<i64>> {
    let Some(bytes) = store.get(LAST_CHECKPOINT).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["version"].as_i64()))
}

/// The table at its newest version (or at `upto`): the newest complete checkpoint at or
/// before it, then the JSON commits after that, which must follow one another without a gap.
/// `with_files` keeps the live files (for checkpoints and resets). A table without a log is
/// returned at version -1.
pub(crate) async fn load(
    store: &LogStore,
    with_files: bool,
    upto: Option<i64>,
) -> Result<TableState> {
    let limit = upto.unwrap_or(i64::MAX);
    let hint = last_checkpoint_hint(store).await?.filter(|v| *v <= limit);
    let mut names = store
        .list_log(&hint.map(|v| format!("{v:020}")).unwrap_or_default())
        .await?;
    if hint.is_some()
        && !names
            .iter()
            .any(|n| matches!(LogFile::parse(n), LogFile::Checkpoint { .. }))
    {
        // A stale hint (its checkpoint gone): list everything.
        names = store.list_log("").await?;
    }
    let mut commits = BTreeSet::new();
    let mut parts: BTreeMap<(i64, u32), BTreeSet<u32>> = BTreeMap::new();
    for n in &names {
        match LogFile::parse(n) {
            LogFile::Commit(v) if v <= limit => {
                commits.insert(v);
            }
            LogFile::Checkpoint {
                version,
                part,
                parts: total,
            } if version <= limit => {
                parts.entry((version, total)).or_default().insert(part);
            }
            _ => {}
        }
    }
    // The newest checkpoint with all its parts.
    let checkpoint = parts
        .iter()
        .rev()
        .find(|((_, total), have)| have.len() == *total as usize)
        .map(|((v, total), _)| (*v, *total));
    let mut state = TableState::empty(with_files);
    if let Some((version, total)) = checkpoint {
        let mut actions = Vec::new();
        for part in 1..=total {
            let rel = if total == 1 {
                checkpoint_path(version)
            } else {
                format!("_delta_log/{version:020}.checkpoint.{part:010}.{total:010}.parquet")
            };
            let shown = store.display(&rel);
            let bytes = store.get(&rel).await?.ok_or_else(|| {
                delta(
                    store,
                    DeltaError::Log {
                        path: shown.clone(),
                        reason: "listed but gone (removed by a log cleanup?)".into(),
                    },
                )
            })?;
            actions
                .extend(checkpoint::read(&shown, bytes, with_files).map_err(|e| delta(store, e))?);
        }
        state.apply(version, actions);
    }
    for v in commits.range(state.version + 1..) {
        if *v != state.version + 1 {
            return Err(delta(
                store,
                DeltaError::Unsupported(format!(
                    "the log has no version {} before {v} and no checkpoint after it",
                    state.version + 1
                )),
            ));
        }
        apply_commit(store, &mut state, *v).await?;
    }
    Ok(state)
}

/// Reads and applies version `v`; `false` if it does not exist (yet).
async fn apply_commit(store: &LogStore, state: &mut TableState, v: i64) -> Result<bool> {
    let rel = commit_path(v);
    let Some(bytes) = store.get(&rel).await? else {
        return Ok(false);
    };
    let actions = parse_commit(&store.display(&rel), &bytes).map_err(|e| delta(store, e))?;
    state.apply(v, actions);
    Ok(true)
}

/// Applies the commits made after `state.version`, in order, up to the newest.
///
/// A log cleanup (`kingest compact` with a retention, or another tool's) deletes only commits
/// older than the newest checkpoint, but a state read before it may be older still: then the
/// commit after it is gone, the newest checkpoint is past it, and the state is read again
/// from that checkpoint.
pub(crate) async fn update(store: &LogStore, state: &mut TableState) -> Result<()> {
    while apply_commit(store, state, state.version + 1).await? {}
    if last_checkpoint_hint(store)
        .await?
        .is_some_and(|c| c > state.version)
    {
        *state = load(store, state.files.is_some(), None).await?;
    }
    Ok(())
}

/// Called right after this process created version `v` with put-if-absent: whether `v`
/// extends the log. `false` when the process's state was so old that a log cleanup had
/// deleted versions `..=v` meanwhile (it deletes in ascending order, so then `v - 1` is gone
/// too): the new file is then deleted again (readers start at the newer checkpoint and never
/// read it), and the caller reads the table again and retries.
pub(crate) async fn extends_log(store: &LogStore, v: i64) -> Result<bool> {
    if v == 0 || store.exists(&commit_path(v - 1)).await? {
        return Ok(true);
    }
    tracing::warn!(
        version = v,
        table = %store.display(""),
        "this writer's view of the table predates a log cleanup: its commit landed in the cleaned-up range; removing it and committing again at the current version"
    );
    store.delete(&commit_path(v)).await?;
    Ok(false)
}

/// A duration table property in Delta's `interval 7 days` syntax (or `7 days`).
pub(crate) fn interval(text: &str) -> Option<Duration> {
    let mut words = text.split_whitespace();
    let mut first = words.next()?;
    if first.eq_ignore_ascii_case("interval") {
        first = words.next()?;
    }
    let n: u64 = first.parse().ok()?;
    let unit = words.next()?.to_ascii_lowercase();
    let secs = match unit.trim_end_matches('s') {
        "millisecond" => return Some(Duration::from_millis(n)),
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// What writing a checkpoint wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDone {
    /// The table version it holds.
    pub version: i64,
    /// Its rows (one per action).
    pub actions: usize,
    /// Live data files in it.
    pub files: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Writes the checkpoint of version `version` (the state replayed up to it, expired
/// tombstones and transactions left out; see `checkpoint.rs`) and points `_last_checkpoint`
/// at it. Idempotent: two writers checkpointing one version write the same state.
pub(crate) async fn write_checkpoint(store: &LogStore, version: i64) -> Result<CheckpointDone> {
    let state = load(store, true, Some(version)).await?;
    if state.version != version {
        return Err(delta(
            store,
            DeltaError::Log {
                path: store.display(&commit_path(version)),
                reason: format!(
                    "version {version} is not in the log (it ends at {})",
                    state.version
                ),
            },
        ));
    }
    let now = now_ms();
    let prop = |k: &str| {
        state
            .metadata
            .as_ref()
            .and_then(|m| m.property(k))
            .and_then(interval)
    };
    let tombstone_ttl = prop("delta.deletedFileRetentionDuration")
        .unwrap_or(Duration::from_secs(7 * 86_400))
        .as_millis() as i64;
    let txn_ttl = prop("delta.setTransactionRetentionDuration").map(|d| d.as_millis() as i64);
    let mut actions = Vec::new();
    actions.extend(state.protocol.clone().map(Read::Protocol));
    actions.extend(state.metadata.clone().map(Read::MetaData));
    let mut txns: Vec<_> = state.txns.values().cloned().collect();
    txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    for t in txns {
        let expired = txn_ttl
            .zip(t.last_updated)
            .is_some_and(|(ttl, at)| now - at > ttl);
        if !expired {
            actions.push(Read::Txn(t));
        }
    }
    let mut files: Vec<_> = state.files.unwrap_or_default().into_values().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let live = files.len();
    actions.extend(files.into_iter().map(Read::Add));
    let mut tombstones: Vec<_> = state.tombstones.unwrap_or_default().into_values().collect();
    tombstones.sort_by(|a, b| a.path.cmp(&b.path));
    for r in tombstones {
        if r.deletion_timestamp
            .is_none_or(|at| now - at <= tombstone_ttl)
        {
            actions.push(Read::Remove(r));
        }
    }
    let rel = checkpoint_path(version);
    let shown = store.display(&rel);
    let count = actions.len();
    let bytes = tokio::task::spawn_blocking(move || checkpoint::write(&shown, &actions))
        .await
        .map_err(|e| SinkError::Poisoned(format!("the checkpoint task failed: {e}")))?
        .map_err(|e| delta(store, e))?;
    let size = bytes.len();
    store.put(&rel, bytes).await?;
    let hint = serde_json::json!({
        "version": version,
        "size": count,
        "sizeInBytes": size,
        "numOfAddFiles": live,
    });
    store
        .put(LAST_CHECKPOINT, bytes::Bytes::from(hint.to_string()))
        .await?;
    Ok(CheckpointDone {
        version,
        actions: count,
        files: live,
        bytes: size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_intervals_parse_as_spark_writes_them() {
        assert_eq!(
            interval("interval 7 days"),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            interval("interval 1 week"),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(interval("30 days"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            interval("INTERVAL 2 HOURS"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(interval("interval 5 fortnights"), None);
        assert_eq!(interval("soon"), None);
    }
}
