//! The leader's assignment of connectors and tasks to workers: incremental cooperative
//! (KIP-415), as Kafka Connect's `compatible` and `sessioned` protocols do it.
//!
//! - **Sticky**: every member keeps what it runs (its reported allocation) unless that
//!   work is gone from the config or must move for balance.
//! - **Balanced**: connector instances and tasks are spread separately, each member
//!   ending with the floor or the ceiling of the average.
//! - **Revokes only what must move**, in a first round; the members stop it and rejoin at
//!   once, and the freed work is placed in the follow-up round (never assigned to one
//!   member while another may still run it).
//! - **Waits for departed workers**: work that was assigned in the previous round and that
//!   no member holds now is *lost*; it is held back for `scheduled.rebalance.max.delay.ms`
//!   (the members are told how long, and rejoin then) unless a member with nothing to run
//!   is there to take it, then spread over everyone.
//!
//! Eager (`default`) rounds use the same function with no allocations and no memory: a
//! fresh balanced assignment.
//!
//! The leader's memory ([`AssignorState`]) lives only in the leader; a new leader starts
//! without it, so work lost with the old leader is reassigned at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::protocol::{CONNECTOR_TASK, Work};

/// One unit of work: a connector instance (`task == -1`) or one of its tasks.
pub type Item = (String, i32);

/// What the leader remembers between rounds.
#[derive(Debug, Default)]
pub struct AssignorState {
    /// Every item assigned (or held back as lost) after the previous round.
    previous: BTreeSet<Item>,
    /// What the previous round revoked: free to place now, not lost.
    revoked: BTreeSet<Item>,
    /// When held-back lost work is reassigned.
    deadline: Option<Instant>,
}

/// One member as the leader sees it.
#[derive(Debug, Clone)]
pub struct MemberWork {
    pub member_id: String,
    /// What it runs now.
    pub allocation: BTreeSet<Item>,
}

/// The plan for one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub assigned: BTreeSet<Item>,
    pub revoked: BTreeSet<Item>,
}

/// The outcome of a round: a plan per member and the delay to announce.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub plans: BTreeMap<String, Plan>,
    pub delay: Duration,
}

/// Items as the protocol lists them.
pub fn to_work(items: &BTreeSet<Item>) -> Work {
    let mut work = Work::new();
    for (c, t) in items {
        work.entry(c.clone()).or_default().push(*t);
    }
    work
}

/// The protocol's lists as items.
pub fn from_work(work: &Work) -> BTreeSet<Item> {
    work.iter()
        .flat_map(|(c, ts)| ts.iter().map(move |t| (c.clone(), *t)))
        .collect()
}

/// Every item of a config snapshot: each connector's instance and its task ids.
pub fn configured_items<'a>(connectors: impl Iterator<Item = (&'a str, usize)>) -> BTreeSet<Item> {
    let mut out = BTreeSet::new();
    for (name, tasks) in connectors {
        out.insert((name.to_owned(), CONNECTOR_TASK));
        for t in 0..tasks {
            out.insert((name.to_owned(), t as i32));
        }
    }
    out
}

/// Compute a round. `members` is every member of the generation (sorted by id for a
/// deterministic outcome); `configured` the work the config topic defines.
pub fn assign(
    state: &mut AssignorState,
    members: &[MemberWork],
    configured: &BTreeSet<Item>,
    max_delay: Duration,
    now: Instant,
) -> Round {
    let mut members: Vec<&MemberWork> = members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    // What each member keeps: its allocation still configured, each item held once.
    let mut held: BTreeSet<Item> = BTreeSet::new();
    let mut keep: BTreeMap<String, BTreeSet<Item>> = BTreeMap::new();
    for m in &members {
        let plan = plans.entry(m.member_id.clone()).or_default();
        let kept = keep.entry(m.member_id.clone()).or_default();
        for item in &m.allocation {
            if configured.contains(item) && held.insert(item.clone()) {
                kept.insert(item.clone());
            } else {
                plan.revoked.insert(item.clone());
            }
        }
    }
    let unassigned: BTreeSet<Item> = configured.difference(&held).cloned().collect();
    let lost: BTreeSet<Item> = unassigned
        .intersection(&state.previous)
        .filter(|i| !state.revoked.contains(*i))
        .cloned()
        .collect();
    let mut to_place: BTreeSet<Item> = unassigned.difference(&lost).cloned().collect();
    let mut delay = Duration::ZERO;
    let mut held_back = BTreeSet::new();
    let idle: Vec<String> = members
        .iter()
        .filter(|m| keep.get(&m.member_id).is_none_or(BTreeSet::is_empty))
        .map(|m| m.member_id.clone())
        .collect();
    if lost.is_empty() {
        state.deadline = None;
    } else if max_delay.is_zero() || !idle.is_empty() {
        // Nothing to wait for, or a member (perhaps the departed one, back) to take it.
        state.deadline = None;
        to_place.extend(lost);
    } else {
        let deadline = *state.deadline.get_or_insert(now + max_delay);
        if now >= deadline {
            state.deadline = None;
            to_place.extend(lost);
        } else {
            delay = deadline - now;
            held_back = lost;
        }
    }
    // Place new work on the least loaded, connectors and tasks counted apart.
    let mut load: BTreeMap<String, BTreeSet<Item>> = keep.clone();
    for item in &to_place {
        let is_connector = item.1 == CONNECTOR_TASK;
        let Some(target) = members
            .iter()
            .map(|m| &m.member_id)
            .min_by_key(|id| {
                let l = &load[*id];
                let same = l.iter().filter(|i| (i.1 == CONNECTOR_TASK) == is_connector);
                (same.count(), l.len())
            })
            .cloned()
        else {
            break;
        };
        if let Some(l) = load.get_mut(&target) {
            l.insert(item.clone());
        }
    }
    // Balance: a member over the ceiling gives back its excess, unless work is still
    // held back for a departed member (it would move twice).
    if held_back.is_empty() && !members.is_empty() {
        let mut spill: Vec<Item> = Vec::new();
        for is_connector in [true, false] {
            let count = |set: &BTreeSet<Item>| {
                set.iter()
                    .filter(|i| (i.1 == CONNECTOR_TASK) == is_connector)
                    .count()
            };
            let total: usize = load.values().map(count).sum();
            let n = members.len();
            let (floor, ceil) = (total / n, total.div_ceil(n));
            if load.values().all(|s| (floor..=ceil).contains(&count(s))) {
                continue;
            }
            // The most loaded keep the ceiling (as many as the remainder allows), the
            // others come down to the floor; each gives back its last items.
            let mut order: Vec<String> = members.iter().map(|m| m.member_id.clone()).collect();
            order.sort_by_key(|id| std::cmp::Reverse(count(&load[id])));
            for (rank, id) in order.iter().enumerate() {
                let limit = if rank < total % n { ceil } else { floor };
                let Some(set) = load.get_mut(id) else {
                    continue;
                };
                let mut have = count(set);
                while have > limit {
                    let Some(victim) = set
                        .iter()
                        .rev()
                        .find(|i| (i.1 == CONNECTOR_TASK) == is_connector)
                        .cloned()
                    else {
                        break;
                    };
                    set.remove(&victim);
                    if keep[id].contains(&victim) {
                        if let Some(p) = plans.get_mut(id) {
                            p.revoked.insert(victim);
                        }
                    } else {
                        // Placed this round, not running yet: it can go elsewhere now.
                        spill.push(victim);
                    }
                    have -= 1;
                }
            }
            for item in spill.drain(..) {
                if let Some(target) = order.iter().min_by_key(|id| count(&load[*id])).cloned()
                    && let Some(l) = load.get_mut(&target)
                {
                    l.insert(item);
                }
            }
        }
    }
    for (id, set) in &load {
        if let Some(p) = plans.get_mut(id) {
            // A revoked item is never also assigned in the same round.
            p.assigned = set.difference(&p.revoked).cloned().collect();
        }
    }
    state.revoked = plans
        .values()
        .flat_map(|p| p.revoked.iter().cloned())
        .filter(|i| configured.contains(i))
        .collect();
    state.previous = plans
        .values()
        .flat_map(|p| p.assigned.iter().cloned())
        .chain(held_back)
        .chain(state.revoked.iter().cloned())
        .collect();
    Round { plans, delay }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(spec: &[(&str, &[i32])]) -> BTreeSet<Item> {
        spec.iter()
            .flat_map(|(c, ts)| ts.iter().map(move |t| (c.to_string(), *t)))
            .collect()
    }

    fn member(id: &str, allocation: BTreeSet<Item>) -> MemberWork {
        MemberWork {
            member_id: id.into(),
            allocation,
        }
    }

    fn counts(round: &Round) -> Vec<(usize, usize)> {
        round
            .plans
            .values()
            .map(|p| {
                let c = p.assigned.iter().filter(|i| i.1 == -1).count();
                (c, p.assigned.len() - c)
            })
            .collect()
    }

    /// Rounds until nothing is revoked, each member's allocation the last assignment.
    fn settle(
        state: &mut AssignorState,
        ids: &[&str],
        mut alloc: BTreeMap<String, BTreeSet<Item>>,
        configured: &BTreeSet<Item>,
        now: Instant,
    ) -> (Round, BTreeMap<String, BTreeSet<Item>>, usize) {
        for rounds in 1..10 {
            let members: Vec<MemberWork> = ids
                .iter()
                .map(|id| member(id, alloc.get(*id).cloned().unwrap_or_default()))
                .collect();
            let round = assign(state, &members, configured, Duration::ZERO, now);
            for (id, p) in &round.plans {
                alloc.insert(id.clone(), p.assigned.clone());
            }
            if round.plans.values().all(|p| p.revoked.is_empty()) {
                return (round, alloc, rounds);
            }
        }
        panic!("no settled assignment in 10 rounds");
    }

    #[test]
    fn first_round_spreads_everything_evenly() {
        let configured = items(&[("a", &[-1, 0, 1, 2]), ("b", &[-1, 0, 1]), ("c", &[-1])]);
        let mut state = AssignorState::default();
        let members = [
            member("m1", BTreeSet::new()),
            member("m2", BTreeSet::new()),
            member("m3", BTreeSet::new()),
        ];
        let r = assign(
            &mut state,
            &members,
            &configured,
            Duration::ZERO,
            Instant::now(),
        );
        let mut c = counts(&r);
        c.sort();
        assert_eq!(c, vec![(1, 1), (1, 2), (1, 2)]);
        let all: BTreeSet<Item> = r.plans.values().flat_map(|p| p.assigned.clone()).collect();
        assert_eq!(all, configured);
        assert!(r.plans.values().all(|p| p.revoked.is_empty()));
    }

    #[test]
    fn a_new_member_takes_only_what_must_move() {
        let configured = items(&[("a", &[-1, 0, 1, 2, 3, 4, 5])]);
        let mut state = AssignorState::default();
        let now = Instant::now();
        let (_, alloc, _) = settle(&mut state, &["m1", "m2"], BTreeMap::new(), &configured, now);
        let before = alloc.clone();
        let (round, after, rounds) =
            settle(&mut state, &["m1", "m2", "m3"], alloc, &configured, now);
        assert_eq!(rounds, 2, "one revoking round, one placing round");
        assert_eq!(counts(&round).iter().map(|c| c.0 + c.1).sum::<usize>(), 7);
        for (id, set) in &after {
            if let Some(old) = before.get(id) {
                // Each old member kept most of what it ran.
                assert!(old.intersection(set).count() >= 2, "{id} lost too much");
            }
            assert!((2..=3).contains(&set.len()), "{id}: {set:?}");
        }
    }

    #[test]
    fn departed_work_waits_for_the_delay_then_moves() {
        let configured = items(&[("a", &[-1, 0, 1]), ("b", &[-1, 0, 1])]);
        let mut state = AssignorState::default();
        let t0 = Instant::now();
        let (_, alloc, _) = settle(
            &mut state,
            &["m1", "m2", "m3"],
            BTreeMap::new(),
            &configured,
            t0,
        );
        // m3 dies: m1 and m2 keep theirs; m3's work is held back.
        let survivors = [
            member("m1", alloc["m1"].clone()),
            member("m2", alloc["m2"].clone()),
        ];
        let delay = Duration::from_secs(10);
        let r = assign(&mut state, &survivors, &configured, delay, t0);
        assert_eq!(r.delay, delay);
        assert_eq!(r.plans["m1"].assigned, alloc["m1"]);
        assert_eq!(r.plans["m2"].assigned, alloc["m2"]);
        // Later, still waiting, with less delay left.
        let r = assign(
            &mut state,
            &survivors,
            &configured,
            delay,
            t0 + Duration::from_secs(4),
        );
        assert_eq!(r.delay, Duration::from_secs(6));
        // After the deadline the lost work is spread over the survivors.
        let r = assign(
            &mut state,
            &survivors,
            &configured,
            delay,
            t0 + Duration::from_secs(11),
        );
        assert_eq!(r.delay, Duration::ZERO);
        let all: BTreeSet<Item> = r.plans.values().flat_map(|p| p.assigned.clone()).collect();
        assert_eq!(all, configured);
        assert!(r.plans["m1"].assigned.is_superset(&alloc["m1"]));
    }

    #[test]
    fn a_returning_member_gets_the_lost_work_at_once() {
        let configured = items(&[("a", &[-1, 0, 1]), ("b", &[-1, 0, 1])]);
        let mut state = AssignorState::default();
        let t0 = Instant::now();
        let (_, alloc, _) = settle(
            &mut state,
            &["m1", "m2", "m3"],
            BTreeMap::new(),
            &configured,
            t0,
        );
        let delay = Duration::from_secs(60);
        let survivors = [
            member("m1", alloc["m1"].clone()),
            member("m2", alloc["m2"].clone()),
        ];
        assign(&mut state, &survivors, &configured, delay, t0);
        let back = [
            member("m1", alloc["m1"].clone()),
            member("m2", alloc["m2"].clone()),
            member("m4", BTreeSet::new()),
        ];
        let r = assign(
            &mut state,
            &back,
            &configured,
            delay,
            t0 + Duration::from_secs(1),
        );
        assert_eq!(r.delay, Duration::ZERO);
        assert_eq!(r.plans["m4"].assigned, alloc["m3"]);
        assert!(r.plans.values().all(|p| p.revoked.is_empty()));
    }

    #[test]
    fn deleted_work_is_revoked_and_new_work_placed() {
        let mut state = AssignorState::default();
        let now = Instant::now();
        let configured = items(&[("a", &[-1, 0]), ("b", &[-1, 0])]);
        let (_, alloc, _) = settle(&mut state, &["m1", "m2"], BTreeMap::new(), &configured, now);
        let configured = items(&[("a", &[-1, 0]), ("c", &[-1, 0, 1])]);
        let members: Vec<MemberWork> = ["m1", "m2"]
            .iter()
            .map(|id| member(id, alloc[*id].clone()))
            .collect();
        let r = assign(
            &mut state,
            &members,
            &configured,
            Duration::from_secs(5),
            now,
        );
        let revoked: BTreeSet<Item> = r.plans.values().flat_map(|p| p.revoked.clone()).collect();
        assert_eq!(revoked, items(&[("b", &[-1, 0])]));
        let all: BTreeSet<Item> = r.plans.values().flat_map(|p| p.assigned.clone()).collect();
        assert_eq!(all, configured);
    }
}
