//! What each member of a consumer group did, in its own order (assignments, records processed,
//! commits, its end), and the check that the whole group consumed a topic exactly once.
//!
//! # What "exactly once" means for at-least-once group consumption
//!
//! Members process records and then commit the offset after them. Per partition, each
//! successful commit of a member covers a *segment*: from the first record it processed after
//! its previous commit (or after it was given the partition) to the committed offset. Then:
//!
//! * within one member's ownership of a partition, the records it processes are consecutive
//!   offsets starting at the position it was given, and each commit is the offset right after
//!   the last record processed (nothing skipped, nothing repeated);
//! * the segments of all members together tile the partition from offset 0 to its end offset,
//!   with no gap (a record lost) and no overlap (a record processed again after it was
//!   committed);
//! * records processed after a member's last successful commit — before it lost the partition
//!   or crashed — belong to no segment: the next owner processes them again from the committed
//!   offset, which is the one duplication at-least-once allows. A member killed with `kill -9`
//!   may have completed a commit it had no time to report, so a prefix of its unreported tail,
//!   ending where the next segment starts, also counts as committed;
//! * no partition is owned by two members at once: each member's ownership of a partition runs
//!   from the wall-clock time it was told of the assignment to the time it was told of the
//!   revocation (or loss), closed, or was killed, and these intervals do not overlap across
//!   members. Member processes share the machine's clock, and a revocation is reported before
//!   the member rejoins, so the new owner's assignment is always reported after it.
//!
//! The group's committed offsets must in the end equal the end offsets; the tests check that
//! with the Java client.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Wall-clock microseconds since the Unix epoch (the Java harness prints the same).
pub type Micros = i64;

/// The wall clock now.
pub fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// One thing a member did.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Partitions added, with the position each starts at (-1: unknown yet, looked up from the
    /// reset policy on the first fetch).
    Assigned {
        /// When the member was told.
        t: Micros,
        /// The partitions added.
        partitions: Vec<i32>,
        /// Their positions, in the same order.
        positions: Vec<i64>,
    },
    /// Partitions given up in a rebalance.
    Revoked {
        /// When the member was told.
        t: Micros,
        /// The partitions given up.
        partitions: Vec<i32>,
    },
    /// Partitions lost (membership expired or fenced).
    Lost {
        /// When the member was told.
        t: Micros,
        /// The partitions lost.
        partitions: Vec<i32>,
    },
    /// A record processed.
    Record {
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Its value.
        value: String,
    },
    /// A synchronous commit that succeeded: the next offset to read, per partition.
    Committed {
        /// When the commit returned.
        t: Micros,
        /// Partition to committed offset.
        offsets: BTreeMap<i32, i64>,
    },
    /// A commit the coordinator refused.
    CommitFailed {
        /// When the commit returned.
        t: Micros,
        /// Why.
        error: String,
    },
    /// Something that should not happen to a healthy member (a poll error).
    Error {
        /// When.
        t: Micros,
        /// What.
        error: String,
    },
    /// The member closed its consumer.
    Closed {
        /// When the close returned.
        t: Micros,
    },
    /// The member died without closing (`kill -9`, or a consumer dropped without leaving).
    Crashed {
        /// When it was dead.
        t: Micros,
    },
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    v.as_array()?.iter().map(Value::as_i64).collect()
}

impl Event {
    /// An event from a line of the Java harness's `member` subcommand.
    pub fn from_java(line: &Value) -> Option<Event> {
        let t = line["t"].as_i64().unwrap_or(0);
        let partitions = || -> Option<Vec<i32>> {
            Some(
                ints(&line["partitions"])?
                    .into_iter()
                    .map(|p| p as i32)
                    .collect(),
            )
        };
        Some(match line["ev"].as_str()? {
            "assigned" => Event::Assigned {
                t,
                partitions: partitions()?,
                positions: ints(&line["positions"])?,
            },
            "revoked" => Event::Revoked {
                t,
                partitions: partitions()?,
            },
            "lost" => Event::Lost {
                t,
                partitions: partitions()?,
            },
            "record" => Event::Record {
                partition: line["p"].as_i64()? as i32,
                offset: line["o"].as_i64()?,
                value: line["v"].as_str()?.to_owned(),
            },
            "committed" => Event::Committed {
                t,
                offsets: line["offsets"]
                    .as_object()?
                    .iter()
                    .map(|(p, o)| Some((p.parse().ok()?, o.as_i64()?)))
                    .collect::<Option<_>>()?,
            },
            "commit_failed" => Event::CommitFailed {
                t,
                error: line["error"].as_str().unwrap_or_default().to_owned(),
            },
            "closed" => Event::Closed { t },
            _ => return None,
        })
    }
}

/// One member's events, and whether it may have made a commit it never reported (a Java
/// member killed between its commit's response and printing it).
#[derive(Debug, Clone, Default)]
pub struct MemberLog {
    /// What it did, in order.
    pub events: Vec<Event>,
    /// A killed Java member: its last commit may have gone unreported.
    pub may_hide_last_commit: bool,
}

/// Where every member of a running group reports to.
#[derive(Debug, Default)]
pub struct Board {
    logs: Mutex<BTreeMap<String, MemberLog>>,
    /// Per partition, the highest offset any member reported committing.
    committed: Mutex<BTreeMap<i32, i64>>,
}

impl Board {
    /// Records what `member` did.
    pub fn push(&self, member: &str, event: Event) {
        if let Event::Committed { offsets, .. } = &event {
            let mut c = self.committed.lock().unwrap();
            for (p, o) in offsets {
                let e = c.entry(*p).or_default();
                *e = (*e).max(*o);
            }
        }
        self.logs
            .lock()
            .unwrap()
            .entry(member.to_owned())
            .or_default()
            .events
            .push(event);
    }

    /// Marks `member` as one whose last commit may be unreported.
    pub fn may_hide_last_commit(&self, member: &str) {
        self.logs
            .lock()
            .unwrap()
            .entry(member.to_owned())
            .or_default()
            .may_hide_last_commit = true;
    }

    /// Records committed so far (the sum of the highest committed offsets reported).
    pub fn progress(&self) -> i64 {
        self.committed.lock().unwrap().values().sum()
    }

    /// Per partition, the highest offset committed so far.
    pub fn committed(&self) -> BTreeMap<i32, i64> {
        self.committed.lock().unwrap().clone()
    }

    /// The partitions `member` owns now, as its events tell.
    pub fn assignment(&self, member: &str) -> BTreeSet<i32> {
        let logs = self.logs.lock().unwrap();
        let mut owned = BTreeSet::new();
        for e in logs.get(member).map(|l| &l.events[..]).unwrap_or_default() {
            match e {
                Event::Assigned { partitions, .. } => owned.extend(partitions),
                Event::Revoked { partitions, .. } | Event::Lost { partitions, .. } => {
                    for p in partitions {
                        owned.remove(p);
                    }
                }
                Event::Closed { .. } | Event::Crashed { .. } => owned.clear(),
                _ => {}
            }
        }
        owned
    }

    /// How many records `member` processed and committed.
    pub fn committed_by(&self, member: &str) -> usize {
        self.logs.lock().unwrap().get(member).map_or(0, |l| {
            l.events
                .iter()
                .filter(|e| matches!(e, Event::Committed { .. }))
                .count()
        })
    }

    /// A copy of every member's log.
    pub fn logs(&self) -> BTreeMap<String, MemberLog> {
        self.logs.lock().unwrap().clone()
    }
}

/// Every member's log as text, runs of consecutive records of a partition on one line (for a
/// failing test's message).
pub fn render(logs: &BTreeMap<String, MemberLog>) -> String {
    let mut out = String::new();
    for (name, log) in logs {
        out.push_str(&format!("{name}:\n"));
        let mut run: Option<(i32, i64, i64)> = None;
        let flush = |run: &mut Option<(i32, i64, i64)>, out: &mut String| {
            if let Some((p, a, b)) = run.take() {
                out.push_str(&format!("  records {p}@{a}..={b}\n"));
            }
        };
        for e in &log.events {
            if let Event::Record {
                partition, offset, ..
            } = e
            {
                match &mut run {
                    Some((p, _, b)) if p == partition && *b + 1 == *offset => *b = *offset,
                    _ => {
                        flush(&mut run, &mut out);
                        run = Some((*partition, *offset, *offset));
                    }
                }
                continue;
            }
            flush(&mut run, &mut out);
            out.push_str(&format!("  {e:?}\n"));
        }
        flush(&mut run, &mut out);
    }
    out
}

/// A member's ownership of a partition.
#[derive(Debug, Clone)]
struct Ownership {
    member: String,
    start: Micros,
    end: Micros,
}

/// What a member is doing with a partition it owns.
#[derive(Debug, Clone)]
struct Open {
    start: Micros,
    /// The offset the next record must have (unknown until the first record when the
    /// position was not known at assignment).
    next: Option<i64>,
    /// The first record processed since the last commit.
    segment_start: Option<i64>,
}

/// A range of offsets `[from, to)` one member committed.
#[derive(Debug, Clone)]
struct Segment {
    member: String,
    from: i64,
    to: i64,
}

/// Checks the logs of a group that consumed a topic of `end[p]` records per partition (from
/// offset 0), where record `o` of partition `p` has the value `value_of(p, o)`; `final_committed`
/// is the group's committed offsets at the end. Returns every violation found.
pub fn check(
    logs: &BTreeMap<String, MemberLog>,
    end: &BTreeMap<i32, i64>,
    final_committed: &BTreeMap<i32, i64>,
    value_of: impl Fn(i32, i64) -> String,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut owners: BTreeMap<i32, Vec<Ownership>> = BTreeMap::new();
    let mut segments: BTreeMap<i32, Vec<Segment>> = BTreeMap::new();
    // Per partition: unreported tails [from, to) of killed members.
    let mut tails: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for (name, log) in logs {
        let mut open: BTreeMap<i32, Open> = BTreeMap::new();
        let mut ended = false;
        let mut close = |open: &mut BTreeMap<i32, Open>, p: i32, t: Micros| {
            if let Some(o) = open.remove(&p) {
                owners.entry(p).or_default().push(Ownership {
                    member: name.clone(),
                    start: o.start,
                    end: t,
                });
            }
        };
        for e in &log.events {
            if ended {
                violations.push(format!("{name}: {e:?} after its end"));
                continue;
            }
            match e {
                Event::Assigned {
                    t,
                    partitions,
                    positions,
                } => {
                    for (i, p) in partitions.iter().enumerate() {
                        let position = positions.get(i).copied().filter(|o| *o >= 0);
                        let fresh = Open {
                            start: *t,
                            next: position,
                            segment_start: None,
                        };
                        if open.insert(*p, fresh).is_some() {
                            violations.push(format!("{name}: given partition {p} it owns"));
                        }
                    }
                }
                Event::Revoked { t, partitions } | Event::Lost { t, partitions } => {
                    for p in partitions {
                        close(&mut open, *p, *t);
                    }
                }
                Event::Record {
                    partition: p,
                    offset,
                    value,
                } => {
                    let Some(o) = open.get_mut(p) else {
                        violations.push(format!(
                            "{name}: record {p}@{offset} of a partition it does not own"
                        ));
                        continue;
                    };
                    if let Some(next) = o.next.filter(|n| n != offset) {
                        violations.push(format!(
                            "{name}: record {p}@{offset} where {p}@{next} was next"
                        ));
                    }
                    let want = value_of(*p, *offset);
                    if *value != want {
                        violations.push(format!(
                            "{name}: record {p}@{offset} is {value:?}, produced as {want:?}"
                        ));
                    }
                    o.next = Some(offset + 1);
                    o.segment_start.get_or_insert(*offset);
                }
                Event::Committed { offsets, .. } => {
                    for (p, c) in offsets {
                        let Some(o) = open.get_mut(p) else {
                            violations.push(format!(
                                "{name}: committed {c} for partition {p} it does not own"
                            ));
                            continue;
                        };
                        if o.next != Some(*c) {
                            violations.push(format!(
                                "{name}: committed {p}@{c} after processing up to {:?}",
                                o.next
                            ));
                        }
                        if let Some(from) = o.segment_start.take() {
                            segments.entry(*p).or_default().push(Segment {
                                member: name.clone(),
                                from,
                                to: *c,
                            });
                        }
                    }
                }
                Event::CommitFailed { .. } => {}
                Event::Error { error, .. } => violations.push(format!("{name}: {error}")),
                Event::Closed { t } | Event::Crashed { t } => {
                    let crashed = matches!(e, Event::Crashed { .. });
                    for (p, o) in std::mem::take(&mut open) {
                        if let (true, true, Some(from), Some(to)) =
                            (crashed, log.may_hide_last_commit, o.segment_start, o.next)
                        {
                            tails.entry(p).or_default().push((from, to));
                        }
                        open.insert(p, o);
                        close(&mut open, p, *t);
                    }
                    ended = true;
                }
            }
        }
        if !ended {
            violations.push(format!("{name}: its log has no end (closed or crashed)"));
        }
    }

    for (p, list) in &mut owners {
        list.sort_by_key(|o| o.start);
        let mut latest: Option<&Ownership> = None;
        for o in list.iter() {
            if let Some(prev) = latest.filter(|prev| o.start < prev.end) {
                violations.push(format!(
                    "partition {p} owned by {} ({}..{}) and {} ({}..{}) at once",
                    prev.member, prev.start, prev.end, o.member, o.start, o.end
                ));
            }
            if latest.is_none_or(|prev| o.end > prev.end) {
                latest = Some(o);
            }
        }
    }

    for (p, end) in end {
        let mut segs = segments.remove(p).unwrap_or_default();
        segs.sort_by_key(|s| (s.from, s.to));
        let tails = tails.remove(p).unwrap_or_default();
        let committed = final_committed.get(p).copied();
        let mut cur = 0;
        let mut used = vec![false; segs.len()];
        while cur < *end {
            let here: Vec<usize> = (0..segs.len())
                .filter(|i| !used[*i] && segs[*i].from == cur)
                .collect();
            if let Some(&i) = here.first() {
                for &j in &here[1..] {
                    violations.push(format!(
                        "partition {p}: offsets from {cur} committed by {} (to {}) and again by {} (to {})",
                        segs[i].member, segs[i].to, segs[j].member, segs[j].to
                    ));
                    used[j] = true;
                }
                used[i] = true;
                cur = segs[i].to;
                continue;
            }
            // A killed member's unreported commit: it ends where the next segment starts, or
            // at the group's final committed offset.
            let resumed = tails
                .iter()
                .filter(|(from, _)| *from == cur)
                .find_map(|(_, to)| {
                    segs.iter()
                        .enumerate()
                        .filter(|(i, s)| !used[*i] && s.from > cur && s.from <= *to)
                        .map(|(_, s)| s.from)
                        .min()
                        .or(committed.filter(|c| *c > cur && c <= to))
                });
            match resumed {
                Some(next) => cur = next,
                None => {
                    violations.push(format!(
                        "partition {p}: no member committed the records from offset {cur} (end {end})"
                    ));
                    break;
                }
            }
        }
        if cur > *end {
            violations.push(format!(
                "partition {p}: committed up to {cur}, past its end {end}"
            ));
        }
        for (i, s) in segs.iter().enumerate() {
            if !used[i] {
                violations.push(format!(
                    "partition {p}: {} committed {}..{} which others had committed (processed twice)",
                    s.member, s.from, s.to
                ));
            }
        }
        if committed != Some(*end) {
            violations.push(format!(
                "partition {p}: the group's committed offset is {committed:?}, the end offset {end}"
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(p: i32, o: i64) -> String {
        format!("{p}-{o}")
    }

    fn records(p: i32, from: i64, to: i64) -> Vec<Event> {
        (from..to)
            .map(|o| Event::Record {
                partition: p,
                offset: o,
                value: value(p, o),
            })
            .collect()
    }

    fn commit(t: Micros, p: i32, o: i64) -> Event {
        Event::Committed {
            t,
            offsets: [(p, o)].into(),
        }
    }

    fn assigned(t: Micros, p: i32, position: i64) -> Event {
        Event::Assigned {
            t,
            partitions: vec![p],
            positions: vec![position],
        }
    }

    /// a reads 0..10 committing 5 and 10, gives the partition up; b reads 10..20.
    fn handover(b_from: i64) -> BTreeMap<String, MemberLog> {
        let mut a = vec![assigned(1, 0, 0)];
        a.extend(records(0, 0, 5));
        a.push(commit(2, 0, 5));
        a.extend(records(0, 5, 12));
        a.push(commit(3, 0, 12));
        a.push(Event::Revoked {
            t: 4,
            partitions: vec![0],
        });
        a.push(Event::Closed { t: 5 });
        let mut b = vec![assigned(6, 0, b_from)];
        b.extend(records(0, b_from, 20));
        b.push(commit(7, 0, 20));
        b.push(Event::Closed { t: 8 });
        [
            (
                "a".to_owned(),
                MemberLog {
                    events: a,
                    may_hide_last_commit: false,
                },
            ),
            (
                "b".to_owned(),
                MemberLog {
                    events: b,
                    may_hide_last_commit: false,
                },
            ),
        ]
        .into()
    }

    #[test]
    fn a_clean_handover_passes() {
        let v = check(&handover(12), &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn reprocessing_committed_records_is_caught() {
        let v = check(&handover(10), &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.iter().any(|v| v.contains("processed twice")), "{v:?}");
    }

    #[test]
    fn a_gap_is_caught() {
        let v = check(&handover(14), &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.iter().any(|v| v.contains("from offset 12")), "{v:?}");
    }

    #[test]
    fn overlapping_ownership_is_caught() {
        let mut logs = handover(12);
        if let Some(Event::Assigned { t, .. }) = logs.get_mut("b").unwrap().events.first_mut() {
            *t = 3; // before a's revocation at 4
        }
        let v = check(&logs, &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.iter().any(|v| v.contains("at once")), "{v:?}");
    }

    #[test]
    fn a_killed_members_unreported_commit_is_allowed_only_for_a_java_kill() {
        let mut logs = handover(15);
        let a = &mut logs.get_mut("a").unwrap().events;
        // a processed 12..15, committed 15 (unreported), and was killed.
        a.truncate(a.len() - 2);
        a.extend(records(0, 12, 15));
        a.push(Event::Crashed { t: 5 });
        let v = check(&logs, &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.iter().any(|v| v.contains("from offset 12")), "{v:?}");
        logs.get_mut("a").unwrap().may_hide_last_commit = true;
        let v = check(&logs, &[(0, 20)].into(), &[(0, 20)].into(), value);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_wrong_final_commit_or_value_is_caught() {
        let v = check(&handover(12), &[(0, 20)].into(), &[(0, 19)].into(), value);
        assert!(v.iter().any(|v| v.contains("committed offset")), "{v:?}");
        let v = check(
            &handover(12),
            &[(0, 20)].into(),
            &[(0, 20)].into(),
            |p, o| format!("{p}:{o}"),
        );
        assert!(v.iter().any(|v| v.contains("produced as")), "{v:?}");
    }
}
