//! The other naive baseline: an ordered map from `(deadline, seq)` to timer.
//!
//! `async-io` keeps its timers this way, and it is the simplest correct timer
//! queue there is: the map is sorted by deadline (the seq makes each key
//! unique and breaks ties in insertion order), `next_deadline` is the first
//! key, `advance` pops from the front, and `remove` deletes by key, freeing
//! the timer at once. Everything is O(log n), with a cache miss or so per
//! tree level once the map outgrows the cache.
//!
//! The one wrinkle is the [`TimerKey`]: it names a timer by slab index and
//! seq, but the map needs the deadline to find it. So a small slab maps each
//! key's index to its `(deadline, seq)` map key, and each map value carries
//! its slab index back, so an expired timer can report its key. That second
//! lookup is part of the honest price of this baseline.

use std::collections::BTreeMap;

use slab::Slab;

use crate::time::queue::{Expired, TimerKey, TimerQueue};

/// A timer queue on `std::collections::BTreeMap`.
#[derive(Clone, Debug)]
pub struct BTreeQueue<T> {
    /// Pending timers in firing order: `(deadline, seq)` to `(slab index, value)`.
    timers: BTreeMap<(u64, u64), (usize, T)>,
    /// For each pending timer, at its key's index: its map key `(deadline, seq)`.
    keys: Slab<(u64, u64)>,
    /// The current tick.
    now: u64,
    /// The sequence number the next insert gets.
    next_seq: u64,
}

impl<T> BTreeQueue<T> {
    /// An empty queue at tick 0.
    pub fn new() -> BTreeQueue<T> {
        BTreeQueue {
            timers: BTreeMap::new(),
            keys: Slab::new(),
            now: 0,
            next_seq: 0,
        }
    }

    /// The map key of the timer `key` names, if it is still pending.
    fn map_key(&self, key: TimerKey) -> Option<(u64, u64)> {
        self.keys
            .get(key.index())
            .copied()
            .filter(|&(_, seq)| seq == key.seq())
    }
}

impl<T> Default for BTreeQueue<T> {
    fn default() -> BTreeQueue<T> {
        BTreeQueue::new()
    }
}

impl<T> TimerQueue<T> for BTreeQueue<T> {
    fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = self.keys.insert((deadline, seq));
        self.timers.insert((deadline, seq), (index, value));
        TimerKey::new(index, seq)
    }

    fn remove(&mut self, key: TimerKey) -> Option<T> {
        let map_key = self.map_key(key)?;
        self.keys.remove(key.index());
        self.timers.remove(&map_key).map(|(_, value)| value)
    }

    fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let map_key = self.map_key(key)?;
        self.timers.get_mut(&map_key).map(|(_, value)| value)
    }

    fn next_deadline(&self) -> Option<u64> {
        self.timers
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    fn advance(&mut self, now: u64, expired: &mut Vec<Expired<T>>) {
        self.now = self.now.max(now);
        while let Some(first) = self.timers.first_entry() {
            let (deadline, seq) = *first.key();
            if deadline > self.now {
                break;
            }
            let (index, value) = first.remove();
            self.keys.remove(index);
            expired.push(Expired {
                key: TimerKey::new(index, seq),
                deadline,
                value,
            });
        }
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.timers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_frees_at_once_and_stale_keys_miss() {
        let mut queue = BTreeQueue::new();
        let a = queue.insert(10, "a");
        assert_eq!(queue.remove(a), Some("a"));
        assert!(queue.timers.is_empty() && queue.keys.is_empty());
        let b = queue.insert(10, "b");
        assert_eq!(a.index(), b.index());
        assert_eq!(queue.get_mut(a), None);
        assert_eq!(queue.remove(a), None);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn u64_max_deadline_neither_overflows_nor_fires_early() {
        let mut queue = BTreeQueue::new();
        queue.insert(u64::MAX, ());
        let mut expired = Vec::new();
        queue.advance(u64::MAX - 1, &mut expired);
        assert!(expired.is_empty());
        queue.advance(u64::MAX, &mut expired);
        assert_eq!(expired.len(), 1);
    }
}
