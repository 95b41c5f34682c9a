//! The server-side assignors of KIP-848 consumer groups: `uniform` (the default) and `range`.
//!
//! `uniform` balances all partitions over the members, keeping each partition with its current
//! target owner where balance allows, so a membership change moves as few partitions as it can.
//! When every member subscribes to the same topics the counts differ by at most one; otherwise
//! each partition goes to the least loaded of its subscribers, its previous owner first.
//! `range` gives each topic's subscribers contiguous ranges of its partitions, the first
//! members (by id) one more when the count does not divide evenly.

use std::collections::{BTreeMap, BTreeSet};

use super::consumer_group::Partitions;

/// The assignor used when no member names one.
pub(crate) const DEFAULT: &str = "uniform";

/// The assignor's canonical name, if it is one this cluster offers.
pub(crate) fn known(name: &str) -> Option<&'static str> {
    match name {
        "uniform" => Some("uniform"),
        "range" => Some("range"),
        _ => None,
    }
}

/// The target assignment of every member: `subscriptions` maps member ids to their topics,
/// `sizes` the existing topics to their partition counts, `previous` is the last target.
pub(crate) fn assign(
    assignor: &str,
    subscriptions: &BTreeMap<String, Vec<String>>,
    sizes: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = subscriptions
        .keys()
        .map(|m| (m.clone(), Partitions::new()))
        .collect();
    if assignor == "range" {
        range(subscriptions, sizes, &mut out);
    } else {
        uniform(subscriptions, sizes, previous, &mut out);
    }
    out.values_mut()
        .for_each(|a| a.retain(|_, ps| !ps.is_empty()));
    out
}

fn range(
    subscriptions: &BTreeMap<String, Vec<String>>,
    sizes: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, Partitions>,
) {
    for (topic, &n) in sizes {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (per, extra) = (n as usize / members.len(), n as usize % members.len());
        let mut next = 0i32;
        for (i, m) in members.iter().enumerate() {
            let count = per + usize::from(i < extra);
            let ps: BTreeSet<i32> = (next..next + count as i32).collect();
            next += count as i32;
            if let Some(a) = out.get_mut(*m) {
                a.insert(topic.clone(), ps);
            }
        }
    }
}

fn uniform(
    subscriptions: &BTreeMap<String, Vec<String>>,
    sizes: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, Partitions>,
    out: &mut BTreeMap<String, Partitions>,
) {
    // Every partition with the members that may own it.
    let mut partitions: Vec<(&String, i32, Vec<&String>)> = Vec::new();
    for (topic, &n) in sizes {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if !members.is_empty() {
            partitions.extend((0..n).map(|p| (topic, p, members.clone())));
        }
    }
    let owner_before = |topic: &str, p: i32| -> Option<&String> {
        previous
            .iter()
            .find(|(_, a)| a.get(topic).is_some_and(|ps| ps.contains(&p)))
            .map(|(m, _)| m)
    };
    let mut counts: BTreeMap<&String, usize> = subscriptions.keys().map(|m| (m, 0)).collect();
    let homogeneous = subscriptions
        .values()
        .map(|ts| ts.iter().collect::<BTreeSet<_>>())
        .collect::<BTreeSet<_>>()
        .len()
        <= 1;
    if homogeneous {
        let members = subscriptions.len().max(1);
        let (quota, mut extra) = (partitions.len() / members, partitions.len() % members);
        // Each member keeps what it had, up to its quota (one more while extras last).
        let mut kept: BTreeMap<&String, Vec<(&String, i32)>> = BTreeMap::new();
        for (topic, p, _) in &partitions {
            if let Some(m) = owner_before(topic, *p).filter(|m| subscriptions.contains_key(*m)) {
                kept.entry(m).or_default().push((topic, *p));
            }
        }
        let mut free: Vec<(&String, i32)> = Vec::new();
        for (m, mut ps) in kept {
            let mut limit = quota;
            if ps.len() > quota && extra > 0 {
                limit += 1;
                extra -= 1;
            }
            for (topic, p) in ps.drain(limit.min(ps.len())..) {
                free.push((topic, p));
            }
            for (topic, p) in ps {
                give(out, m, topic, p);
            }
        }
        let owned: BTreeSet<(&String, i32)> = out
            .values()
            .flat_map(|a| a.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t, *p))))
            .collect();
        for (topic, p, _) in &partitions {
            if !owned.contains(&(*topic, *p)) && !free.contains(&(*topic, *p)) {
                free.push((topic, *p));
            }
        }
        free.sort();
        // Fill members below quota first, then hand the extras out one each.
        for (topic, p) in free {
            let counts_now: Vec<(&String, usize)> = out
                .iter()
                .map(|(m, a)| (m, a.values().map(BTreeSet::len).sum()))
                .collect();
            let below = counts_now.iter().find(|(_, c)| *c < quota);
            let target = match below {
                Some((m, _)) => Some(*m),
                None if extra > 0 => {
                    extra -= 1;
                    counts_now
                        .iter()
                        .find(|(_, c)| *c == quota)
                        .map(|(m, _)| *m)
                }
                None => counts_now.iter().min_by_key(|(_, c)| *c).map(|(m, _)| *m),
            };
            if let Some(m) = target.cloned() {
                give(out, &m, topic, p);
            }
        }
        return;
    }
    // Heterogeneous: the most constrained partitions first, each to its least loaded
    // subscriber, keeping the previous owner when it is among the least loaded.
    partitions.sort_by_key(|(t, p, ms)| (ms.len(), (*t).clone(), *p));
    for (topic, p, members) in &partitions {
        let least = members
            .iter()
            .map(|m| counts.get(*m).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        let chosen = owner_before(topic, *p)
            .filter(|m| members.contains(m) && counts.get(*m).copied().unwrap_or(0) <= least)
            .or_else(|| {
                members
                    .iter()
                    .find(|m| counts.get(**m).copied().unwrap_or(0) == least)
                    .copied()
            });
        if let Some(m) = chosen {
            give(out, m, topic, *p);
            if let Some(c) = counts.get_mut(m) {
                *c += 1;
            }
        }
    }
}

fn give(out: &mut BTreeMap<String, Partitions>, member: &str, topic: &str, p: i32) {
    if let Some(a) = out.get_mut(member) {
        a.entry(topic.to_owned()).or_default().insert(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn count(a: &Partitions) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    /// Every partition once, counts within one; a joining member takes partitions only from
    /// those over quota, the rest stay put.
    #[test]
    fn uniform_balances_and_sticks() {
        let sizes: BTreeMap<String, i32> = [("a".into(), 5), ("b".into(), 4)].into();
        let two = subs(&[("m1", &["a", "b"]), ("m2", &["a", "b"])]);
        let first = assign("uniform", &two, &sizes, &BTreeMap::new());
        assert_eq!(first.values().map(count).sum::<usize>(), 9);
        let three = subs(&[
            ("m1", &["a", "b"]),
            ("m2", &["a", "b"]),
            ("m3", &["a", "b"]),
        ]);
        let second = assign("uniform", &three, &sizes, &first);
        assert!(second.values().all(|a| count(a) == 3), "{second:?}");
        for m in ["m1", "m2"] {
            for (t, ps) in &second[m] {
                assert!(ps.is_subset(&first[m][t]), "{m} gained {t}:{ps:?}");
            }
        }
        let all: BTreeSet<(String, i32)> = second
            .values()
            .flat_map(|a| {
                a.iter()
                    .flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), *p)))
            })
            .collect();
        assert_eq!(all.len(), 9);
    }

    /// Members get only topics they subscribe to.
    #[test]
    fn uniform_respects_subscriptions() {
        let sizes: BTreeMap<String, i32> = [("a".into(), 4), ("b".into(), 2)].into();
        let s = subs(&[("m1", &["a"]), ("m2", &["a", "b"])]);
        let out = assign("uniform", &s, &sizes, &BTreeMap::new());
        assert!(!out["m1"].contains_key("b"));
        assert_eq!(out.values().map(count).sum::<usize>(), 6);
        assert_eq!(count(&out["m1"]), 3);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let sizes: BTreeMap<String, i32> = [("a".into(), 5)].into();
        let s = subs(&[("m1", &["a"]), ("m2", &["a"])]);
        let out = assign("range", &s, &sizes, &BTreeMap::new());
        assert_eq!(out["m1"]["a"], [0, 1, 2].into());
        assert_eq!(out["m2"]["a"], [3, 4].into());
    }
}
