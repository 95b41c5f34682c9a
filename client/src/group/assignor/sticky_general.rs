//! The sticky assignors' general algorithm, for members with different subscriptions: Java's
//! `AbstractStickyAssignor.GeneralAssignmentBuilder` and its `PartitionMovements`.
//!
//! Members keep what they owned and still subscribe to; unowned partitions go, topics with the
//! fewest candidate members first, to the least loaded member that can take them; then
//! partitions are moved from members with two or more than a candidate to the least loaded
//! candidate until no such move exists. Partitions are first sent back to the member that held
//! them in an earlier generation, and a move that would undo an earlier move of the same topic
//! between the same two members moves the earlier partition back instead (so that two members
//! do not swap partitions of a topic). If the moves end less balanced than they started, they
//! are undone.
//!
//! Several steps depend on iteration order; each follows Java's (see the comments), including
//! which partition `java.util.HashSet` yields first.

use std::collections::{BTreeSet, HashMap};

use super::java_bucket;
use super::sticky::{remove_first, Model, Tp};

/// Java's `DEFAULT_GENERATION`.
const NO_GENERATION: i32 = -1;

/// Runs the general builder on `owned` (each member's surviving claims) and returns each
/// member's partitions in Java's list order.
pub(super) fn build(model: &Model<'_>, owned: Vec<Vec<Tp>>, max_generation: i32) -> Vec<Vec<Tp>> {
    let n = model.members.len();
    // `topic2AllPotentialConsumers`, filled in the subscriptions map's order like Java's lists
    // (the order is only ever scanned for "is there one").
    let mut candidates: Vec<Vec<usize>> = vec![Vec::new(); model.topics.len()];
    for &member in &model.java_order {
        for &topic in &model.potential[member] {
            candidates[topic as usize].push(member);
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; model.total];
    for (member, tps) in owned.iter().enumerate() {
        for &tp in tps {
            owner[model.flat(tp)] = Some(member);
        }
    }
    // Topics with fewer candidates first, then by name.
    let mut topic_order: Vec<u32> = (0..model.topics.len() as u32).collect();
    topic_order.sort_by_key(|t| (candidates[*t as usize].len(), *t));
    let sorted_all: Vec<Tp> = topic_order
        .iter()
        .flat_map(|t| model.partitions_of(*t))
        .collect();
    let max_size: Vec<usize> = (0..n)
        .map(|m| {
            model.potential[m]
                .iter()
                .map(|t| model.counts[*t as usize] as usize)
                .sum()
        })
        .collect();

    let mut builder = General {
        model,
        candidates,
        max_size,
        current: owned,
        owner,
        by_load: BTreeSet::new(),
        fixed: vec![false; n],
        movements: Movements::default(),
    };
    let previous = builder.previous_owners(max_generation);

    // Keep owned partitions whose topic the member still subscribes to. A dropped one keeps its
    // stale `owner` entry, as in Java, until it is assigned again.
    let mut revocation_required = false;
    let mut assigned = vec![false; model.total];
    for member in 0..n {
        let before = builder.current[member].len();
        builder.current[member].retain(|tp| model.subscribes(member, tp.topic));
        revocation_required |= builder.current[member].len() != before;
        for tp in &builder.current[member] {
            assigned[model.flat(*tp)] = true;
        }
    }
    let unassigned: Vec<Tp> = sorted_all
        .iter()
        .copied()
        .filter(|tp| !assigned[model.flat(*tp)])
        .collect();
    for member in 0..n {
        builder
            .by_load
            .insert((builder.current[member].len(), member));
    }
    builder.balance(sorted_all, unassigned, &previous, revocation_required);
    builder.current
}

struct General<'m> {
    model: &'m Model<'m>,
    candidates: Vec<Vec<usize>>,
    /// How many partitions each member could get at most (all of its topics').
    max_size: Vec<usize>,
    /// `currentAssignment`.
    current: Vec<Vec<Tp>>,
    /// `currentPartitionConsumer`, by flat partition number.
    owner: Vec<Option<usize>>,
    /// `sortedCurrentSubscriptions`: (partition count, member), the participating members by
    /// load then id. Entries are removed before a member's count changes and put back after.
    by_load: BTreeSet<(usize, usize)>,
    /// Members left out of the rebalancing (`fixedAssignments`).
    fixed: Vec<bool>,
    movements: Movements,
}

impl General<'_> {
    /// `prepopulateCurrentAssignments`: for each partition, the member that held it in the
    /// newest generation older than the current one (the first such member in map order wins
    /// a tie).
    fn previous_owners(&self, max_generation: i32) -> HashMap<Tp, (usize, i32)> {
        let mut previous: HashMap<Tp, (usize, i32)> = HashMap::new();
        for &member in &self.model.java_order {
            let generation = match self.model.had_generation[member] {
                Some(g) if g < max_generation => g,
                None if max_generation > NO_GENERATION => NO_GENERATION,
                _ => continue,
            };
            for &tp in &self.model.had[member] {
                let entry = previous.entry(tp).or_insert((member, generation));
                if generation > entry.1 {
                    *entry = (member, generation);
                }
            }
        }
        previous
    }

    fn load(&self, member: usize) -> usize {
        self.current[member].len()
    }

    /// `balance`.
    fn balance(
        &mut self,
        mut sorted_all: Vec<Tp>,
        mut unassigned: Vec<Tp>,
        previous: &HashMap<Tp, (usize, i32)>,
        revocation_required: bool,
    ) {
        let initializing = self.by_load.last().is_none_or(|(load, _)| *load == 0);
        for &tp in &unassigned {
            self.assign_to_least_loaded(tp);
        }

        // Partitions of topics with a single candidate cannot move, nor can members whose
        // partitions all are such and who have all they can get.
        let movable = |c: &Vec<Vec<usize>>, tp: &Tp| c[tp.topic as usize].len() >= 2;
        sorted_all.retain(|tp| movable(&self.candidates, tp));
        unassigned.retain(|tp| movable(&self.candidates, tp));
        for member in 0..self.model.members.len() {
            let participates = self.load(member) < self.max_size[member]
                || self.current[member]
                    .iter()
                    .any(|tp| movable(&self.candidates, tp));
            if !participates {
                self.by_load.remove(&(self.load(member), member));
                self.fixed[member] = true;
            }
        }

        let before = (self.current.clone(), self.owner.clone());
        if !revocation_required {
            // Nothing was taken away for subscription changes: try moving only what was new.
            self.perform_reassignments(&unassigned, previous);
        }
        // Java only looks at whether this second pass moved anything.
        let moved = self.perform_reassignments(&sorted_all, previous);
        if !initializing
            && moved
            && self.balance_score(&self.current) >= self.balance_score(&before.0)
        {
            (self.current, self.owner) = before;
        }
    }

    /// `maybeAssignPartition`: to the least loaded member subscribed to its topic.
    fn assign_to_least_loaded(&mut self, tp: Tp) {
        let chosen = self
            .by_load
            .iter()
            .map(|(_, m)| *m)
            .find(|m| self.model.subscribes(*m, tp.topic));
        if let Some(member) = chosen {
            self.by_load.remove(&(self.load(member), member));
            self.current[member].push(tp);
            self.owner[self.model.flat(tp)] = Some(member);
            self.by_load.insert((self.load(member), member));
        }
    }

    /// `performReassignments`: passes over `partitions` until one moves nothing, each pass
    /// stopping as soon as the assignment is balanced. Returns whether anything moved.
    fn perform_reassignments(
        &mut self,
        partitions: &[Tp],
        previous: &HashMap<Tp, (usize, i32)>,
    ) -> bool {
        let mut moved = false;
        loop {
            let mut modified = false;
            for &tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let Some(holder) = self.owner[self.model.flat(tp)] else {
                    continue;
                };
                // Back to its previous owner if that one has two fewer. Java does not check that
                // the previous owner still subscribes to the topic (it would hand it a partition
                // it did not ask for) nor that it takes part (a NullPointerException there); we
                // skip the rule in both cases.
                if let Some(&(prev, _)) = previous.get(&tp) {
                    if !self.fixed[prev]
                        && self.model.subscribes(prev, tp.topic)
                        && self.load(holder) > self.load(prev) + 1
                    {
                        self.reassign(tp, prev);
                        moved = true;
                        modified = true;
                        continue;
                    }
                }
                let holder_load = self.load(holder);
                if self.candidates[tp.topic as usize]
                    .iter()
                    .any(|c| holder_load > self.load(*c) + 1)
                {
                    // To the least loaded candidate, whichever triggered the move.
                    let target = self
                        .by_load
                        .iter()
                        .map(|(_, m)| *m)
                        .find(|m| self.model.subscribes(*m, tp.topic));
                    if let Some(target) = target {
                        self.reassign(tp, target);
                        moved = true;
                        modified = true;
                    }
                }
            }
            if !modified {
                return moved;
            }
        }
    }

    /// `isBalanced`: loads within one of each other, or no member could take a partition from
    /// one with two more.
    fn is_balanced(&self) -> bool {
        let (Some(&(min, _)), Some(&(max, _))) = (self.by_load.first(), self.by_load.last()) else {
            return true;
        };
        if min + 1 >= max {
            return true;
        }
        for &(load, member) in &self.by_load {
            if load == self.max_size[member] {
                continue;
            }
            for &topic in &self.model.potential[member] {
                for tp in self.model.partitions_of(topic) {
                    match self.owner[self.model.flat(tp)] {
                        Some(other) if other != member && load + 1 < self.load(other) => {
                            return false
                        }
                        _ => {}
                    }
                }
            }
        }
        true
    }

    /// `getBalanceScore`: the sum of load differences over all pairs of participating members.
    fn balance_score(&self, assignment: &[Vec<Tp>]) -> usize {
        let mut loads: Vec<usize> = (0..assignment.len())
            .filter(|m| !self.fixed[*m])
            .map(|m| assignment[m].len())
            .collect();
        loads.sort_unstable();
        let n = loads.len();
        // In sorted order the k-th load is subtracted by the k before it and subtracts the rest.
        loads.iter().enumerate().map(|(k, l)| l * k).sum::<usize>()
            - loads
                .iter()
                .enumerate()
                .map(|(k, l)| l * (n - 1 - k))
                .sum::<usize>()
    }

    /// `reassignPartition(partition, newConsumer)`: moves `tp`, or the partition that undoes an
    /// earlier move in the opposite direction.
    fn reassign(&mut self, tp: Tp, to: usize) {
        let Some(holder) = self.owner[self.model.flat(tp)] else {
            return;
        };
        let actual = self.movements.partition_to_move(self.model, tp, holder, to);
        let Some(from) = self.owner[self.model.flat(actual)] else {
            return;
        };
        self.by_load.remove(&(self.load(from), from));
        self.by_load.remove(&(self.load(to), to));
        self.movements.record(self.model, actual, from, to);
        remove_first(&mut self.current[from], actual);
        self.current[to].push(actual);
        self.owner[self.model.flat(actual)] = Some(to);
        self.by_load.insert((self.load(to), to));
        self.by_load.insert((self.load(from), from));
    }
}

/// Java's `PartitionMovements`: for each partition moved in this run, its original holder and
/// its current one; and per topic, per such (source, destination) pair, the partitions.
#[derive(Default)]
struct Movements {
    by_partition: HashMap<Tp, (usize, usize)>,
    by_topic: HashMap<u32, HashMap<(usize, usize), JavaTpSet>>,
}

impl Movements {
    /// `getTheActualPartitionToBeMoved`: when a partition of this topic already moved the other
    /// way (from `to` to `from`'s original holder), move that one back instead.
    fn partition_to_move(&self, model: &Model<'_>, tp: Tp, from: usize, to: usize) -> Tp {
        let Some(pairs) = self.by_topic.get(&tp.topic) else {
            return tp;
        };
        let source = self.by_partition.get(&tp).map_or(from, |(src, _)| *src);
        pairs
            .get(&(to, source))
            .and_then(|set| set.first(model))
            .unwrap_or(tp)
    }

    /// `movePartition`.
    fn record(&mut self, model: &Model<'_>, tp: Tp, from: usize, to: usize) {
        match self.by_partition.remove(&tp) {
            Some((src, dst)) => {
                self.forget(model, tp, (src, dst));
                if src != to {
                    self.add(model, tp, (src, to));
                }
            }
            None => self.add(model, tp, (from, to)),
        }
    }

    fn add(&mut self, model: &Model<'_>, tp: Tp, pair: (usize, usize)) {
        self.by_partition.insert(tp, pair);
        self.by_topic
            .entry(tp.topic)
            .or_default()
            .entry(pair)
            .or_default()
            .insert(model, tp);
    }

    /// The topic-side half of `removeMovementRecordOfPartition`.
    fn forget(&mut self, model: &Model<'_>, tp: Tp, pair: (usize, usize)) {
        if let Some(pairs) = self.by_topic.get_mut(&tp.topic) {
            if let Some(set) = pairs.get_mut(&pair) {
                set.remove(model, tp);
                if set.items.is_empty() {
                    pairs.remove(&pair);
                }
            }
            if pairs.is_empty() {
                self.by_topic.remove(&tp.topic);
            }
        }
    }
}

/// A `java.util.HashSet<TopicPartition>` as far as which element its iterator yields first:
/// table order of `TopicPartition.hashCode` buckets, insertion order within a bucket, the table
/// growing as Java's does (see [`super::java_hash_order`]; it never shrinks).
#[derive(Default)]
struct JavaTpSet {
    items: Vec<Tp>,
    /// 0 until the first insertion, as Java allocates the table lazily.
    capacity: usize,
}

impl JavaTpSet {
    fn insert(&mut self, model: &Model<'_>, tp: Tp) {
        if self.capacity == 0 {
            self.capacity = 16;
        }
        let bucket = java_bucket(model.tp_hash(tp), self.capacity);
        let in_bucket = self
            .items
            .iter()
            .filter(|x| java_bucket(model.tp_hash(**x), self.capacity) == bucket)
            .count();
        if in_bucket >= 8 && self.capacity < 64 {
            self.capacity *= 2;
        }
        self.items.push(tp);
        if self.items.len() > self.capacity / 4 * 3 {
            self.capacity *= 2;
        }
    }

    fn remove(&mut self, _model: &Model<'_>, tp: Tp) {
        if let Some(i) = self.items.iter().position(|x| *x == tp) {
            self.items.remove(i);
        }
    }

    fn first(&self, model: &Model<'_>) -> Option<Tp> {
        let bucket = |tp: Tp| java_bucket(model.tp_hash(tp), self.capacity);
        self.items
            .iter()
            .enumerate()
            .min_by_key(|(i, tp)| (bucket(**tp), *i))
            .map(|(_, tp)| *tp)
    }
}
