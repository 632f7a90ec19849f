//! Model-based tests: random operation sequences run against the wheel, the
//! heap and the B-tree queue side by side with a reference model that is
//! obviously correct (a `BTreeMap` of pending timers and a clock). Every
//! answer must match the model's, after every operation.

use std::collections::BTreeMap;

use coop::time::btree::BTreeQueue;
use coop::time::heap::HeapQueue;
use coop::time::queue::{Expired, TimerKey, TimerQueue};
use coop::time::wheel::Wheel;
use proptest::prelude::*;
use proptest::sample::Index;

/// A timer's value: which insert made it, and how often `get_mut` touched it.
type Value = (usize, u32);

/// Ticks at which the wheel changes level (64^k) and where it runs out (2^36).
const EDGES: [u64; 6] = [64, 4_096, 262_144, 16_777_216, 1 << 30, 1 << 36];

#[derive(Clone, Debug)]
enum When {
    /// `now + n`, saturating.
    After(u64),
    /// An absolute tick, possibly in the past.
    At(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Insert(When),
    /// Remove the timer of some earlier insert (its key may be stale).
    Remove(Index),
    GetMut(Index),
    Advance(When),
    /// Advance to what one of the queues answers for `next_deadline`.
    AdvanceToNextDeadline(Index),
}

/// Offsets that probe the wheel: 0, small, each level edge ± 1, and huge.
fn offset() -> impl Strategy<Value = u64> {
    let edge =
        (prop::sample::select(&EDGES[..]), -1i64..=1).prop_map(|(e, d)| e.wrapping_add_signed(d));
    prop_oneof![
        2 => Just(0u64),
        4 => 1..100u64,
        3 => edge,
        2 => 100..(1u64 << 40),
        1 => any::<u64>(),
        1 => Just(u64::MAX),
    ]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![5 => offset().prop_map(When::After), 1 => any::<u64>().prop_map(When::At)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => when().prop_map(Op::Insert),
        3 => any::<Index>().prop_map(Op::Remove),
        1 => any::<Index>().prop_map(Op::GetMut),
        4 => offset().prop_map(|n| Op::Advance(When::After(n >> (n % 3 * 20)))),
        1 => any::<u64>().prop_map(|t| Op::Advance(When::At(t))),
        2 => any::<Index>().prop_map(Op::AdvanceToNextDeadline),
    ]
}

/// The reference: pending timers by insert number, and the clock.
#[derive(Default)]
struct Model {
    now: u64,
    pending: BTreeMap<usize, (u64, Value)>,
    inserts: usize,
}

impl Model {
    fn tick(&self, when: &When) -> u64 {
        match *when {
            When::After(n) => self.now.saturating_add(n),
            When::At(tick) => tick,
        }
    }

    fn earliest(&self) -> Option<u64> {
        self.pending.values().map(|&(deadline, _)| deadline).min()
    }

    /// Every `(insert, deadline, value)` due by `now`, in the order every
    /// queue must fire them: by deadline, and timers with the same
    /// deadline in the order they were inserted.
    fn advance(&mut self, now: u64) -> Vec<(usize, u64, Value)> {
        self.now = self.now.max(now);
        let mut due: Vec<(u64, usize)> = self
            .pending
            .iter()
            .filter(|(_, (d, _))| *d <= self.now)
            .map(|(&id, &(d, _))| (d, id))
            .collect();
        due.sort_unstable();
        due.into_iter()
            .map(|(_, id)| {
                let (deadline, value) = self.pending.remove(&id).unwrap();
                (id, deadline, value)
            })
            .collect()
    }
}

/// A queue under test and the key it returned for each insert.
struct Subject {
    name: &'static str,
    queue: Box<dyn TimerQueue<Value>>,
    keys: Vec<TimerKey>,
}

impl Subject {
    fn advance(&mut self, now: u64) -> Vec<(usize, u64, Value)> {
        let mut expired: Vec<Expired<Value>> = Vec::new();
        self.queue.advance(now, &mut expired);
        // In the order fired: the order of the wakes in the runtime.
        expired
            .into_iter()
            .map(|e| {
                assert!(
                    e.deadline <= self.queue.now(),
                    "{}: fired before its deadline",
                    self.name
                );
                assert_eq!(
                    e.key, self.keys[e.value.0],
                    "{}: expired with another key",
                    self.name
                );
                (e.value.0, e.deadline, e.value)
            })
            .collect()
    }
}

fn run(ops: Vec<Op>) {
    let mut model = Model::default();
    let mut subjects = [
        Subject {
            name: "wheel",
            queue: Box::new(Wheel::new()),
            keys: Vec::new(),
        },
        Subject {
            name: "heap",
            queue: Box::new(HeapQueue::new()),
            keys: Vec::new(),
        },
        Subject {
            name: "btree",
            queue: Box::new(BTreeQueue::new()),
            keys: Vec::new(),
        },
    ];
    for op in ops {
        match op {
            Op::Insert(when) => {
                let (deadline, id) = (model.tick(&when), model.inserts);
                model.inserts += 1;
                model.pending.insert(id, (deadline, (id, 0)));
                for s in &mut subjects {
                    let key = s.queue.insert(deadline, (id, 0));
                    s.keys.push(key);
                }
            }
            Op::Remove(_) | Op::GetMut(_) if model.inserts == 0 => {}
            Op::Remove(pick) => {
                let id = pick.index(model.inserts);
                let expected = model.pending.remove(&id).map(|(_, value)| value);
                for s in &mut subjects {
                    assert_eq!(s.queue.remove(s.keys[id]), expected, "{}: remove", s.name);
                }
            }
            Op::GetMut(pick) => {
                let id = pick.index(model.inserts);
                let expected = model.pending.get_mut(&id).map(|(_, value)| {
                    value.1 += 1;
                    *value
                });
                for s in &mut subjects {
                    let got = s.queue.get_mut(s.keys[id]).map(|value| {
                        value.1 += 1;
                        *value
                    });
                    assert_eq!(got, expected, "{}: get_mut", s.name);
                }
            }
            Op::Advance(when) => {
                let now = model.tick(&when);
                let expected = model.advance(now);
                for s in &mut subjects {
                    assert_eq!(s.advance(now), expected, "{}: advance to {now}", s.name);
                }
            }
            Op::AdvanceToNextDeadline(pick) => {
                let chosen = &subjects[pick.index(subjects.len())];
                let Some(now) = chosen.queue.next_deadline() else {
                    continue;
                };
                let expected = model.advance(now);
                for s in &mut subjects {
                    assert_eq!(
                        s.advance(now),
                        expected,
                        "{}: advance to next deadline {now}",
                        s.name
                    );
                }
            }
        }
        check_invariants(&model, &subjects);
    }
}

fn check_invariants(model: &Model, subjects: &[Subject]) {
    let earliest = model.earliest();
    for s in subjects {
        assert_eq!(s.queue.now(), model.now, "{}: now", s.name);
        assert_eq!(s.queue.len(), model.pending.len(), "{}: len", s.name);
        assert_eq!(
            s.queue.is_empty(),
            model.pending.is_empty(),
            "{}: is_empty",
            s.name
        );
        let next = s.queue.next_deadline();
        assert_eq!(
            next.is_some(),
            earliest.is_some(),
            "{}: next_deadline when empty",
            s.name
        );
        if let (Some(next), Some(earliest)) = (next, earliest) {
            assert!(
                next <= earliest,
                "{}: next_deadline {next} after the earliest {earliest}",
                s.name
            );
            if earliest > model.now {
                assert!(
                    next >= model.now,
                    "{}: next_deadline {next} before now with nothing due",
                    s.name
                );
            }
            if s.name != "wheel" {
                assert_eq!(next, earliest, "{}: baselines answer exactly", s.name);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn all_queues_agree_with_the_model(ops in prop::collection::vec(op(), 1..300)) {
        run(ops);
    }
}

#[test]
fn a_timer_at_every_edge_fires_exactly_on_time() {
    // Deterministic companion to the random test: one timer at each edge ± 1
    // from a few starting times, then tick through each deadline.
    for start in [0, 1, 63, 4_095, (1 << 36) - 1, u64::MAX - (1 << 37)] {
        let mut ops = vec![Op::Advance(When::At(start))];
        for &edge in &EDGES {
            for d in [edge - 1, edge, edge + 1] {
                ops.push(Op::Insert(When::After(d)));
            }
        }
        let mut deadlines: Vec<u64> = EDGES
            .iter()
            .flat_map(|&e| [e - 1, e, e + 1])
            .map(|d| start + d)
            .collect();
        deadlines.sort_unstable();
        for d in deadlines {
            ops.push(Op::Advance(When::At(d - 1)));
            ops.push(Op::Advance(When::At(d)));
        }
        run(ops);
    }
}
