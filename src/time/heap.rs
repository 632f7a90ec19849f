//! The naive baseline: a binary min-heap of deadlines.
//!
//! This is the structure most people reach for first, and it is a fine one:
//! O(log n) insert, O(log n) to pop the earliest timer, and `next_deadline`
//! is a peek. Its weak spot is cancellation. A `BinaryHeap` cannot remove an
//! item from the middle, so `remove` takes the shortcut every such timer
//! queue takes: it frees the timer's slab entry (and so drops its value) at
//! once, and leaves the heap item behind as a *tombstone*, recognisable
//! because its `(index, seq)` no longer matches a live entry. Tombstones are
//! skipped when they reach the top.
//!
//! Left alone, tombstones would pile up: a server that sets and cancels a
//! read timeout per request would grow the heap without bound. So whenever
//! tombstones outnumber live timers, the heap is rebuilt from the live ones
//! (`retain`, O(n)). That bounds the heap to about twice the live timers and
//! costs O(1) amortised per removal, but it is a pause proportional to the
//! heap's size every so often; the wheel has no such pause.
//!
//! # Ground rules
//!
//! 1. Every live timer has exactly one heap item `(deadline, seq, index)`.
//! 2. The top of the heap, if any, is a live timer's item (so `&self` can
//!    peek it for `next_deadline`).
//! 3. `tombstones` counts the heap items whose timer is gone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use slab::Slab;

use crate::time::queue::{Expired, TimerKey, TimerQueue};

/// One heap item: `(deadline, seq, slab index)`, ordered earliest first by
/// `Reverse` (the seq breaks ties in insertion order).
type Item = Reverse<(u64, u64, usize)>;

/// A timer as the heap queue stores it.
#[derive(Clone, Debug)]
struct Entry<T> {
    /// The insert's sequence number; a key or heap item must match it.
    seq: u64,
    /// The caller's value.
    value: T,
}

/// A timer queue on `std::collections::BinaryHeap`, with lazy deletion.
#[derive(Clone, Debug)]
pub struct HeapQueue<T> {
    /// Live timers; a [`TimerKey`] is an index in here plus a seq.
    entries: Slab<Entry<T>>,
    /// Min-heap of every live timer's item, plus tombstones.
    heap: BinaryHeap<Item>,
    /// How many heap items are tombstones.
    tombstones: usize,
    /// The current tick.
    now: u64,
    /// The sequence number the next insert gets.
    next_seq: u64,
}

impl<T> HeapQueue<T> {
    /// An empty queue at tick 0.
    pub fn new() -> HeapQueue<T> {
        HeapQueue {
            entries: Slab::new(),
            heap: BinaryHeap::new(),
            tombstones: 0,
            now: 0,
            next_seq: 0,
        }
    }

    /// Whether `item` belongs to a live timer rather than being a tombstone.
    fn is_live(entries: &Slab<Entry<T>>, &Reverse((_, seq, index)): &Item) -> bool {
        entries.get(index).is_some_and(|entry| entry.seq == seq)
    }

    /// Restores ground rule 2 by popping tombstones off the top.
    fn pop_tombstones(&mut self) {
        while let Some(top) = self.heap.peek() {
            if Self::is_live(&self.entries, top) {
                break;
            }
            self.heap.pop();
            self.tombstones -= 1;
        }
    }
}

impl<T> Default for HeapQueue<T> {
    fn default() -> HeapQueue<T> {
        HeapQueue::new()
    }
}

impl<T> TimerQueue<T> for HeapQueue<T> {
    fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = self.entries.insert(Entry { seq, value });
        self.heap.push(Reverse((deadline, seq, index)));
        TimerKey::new(index, seq)
    }

    fn remove(&mut self, key: TimerKey) -> Option<T> {
        let entry = self.entries.get(key.index())?;
        if entry.seq != key.seq() {
            return None;
        }
        let value = self.entries.remove(key.index()).value;
        self.tombstones += 1;
        if self.tombstones * 2 > self.heap.len() {
            let entries = &self.entries;
            self.heap.retain(|item| Self::is_live(entries, item));
            self.tombstones = 0;
        } else {
            self.pop_tombstones();
        }
        Some(value)
    }

    fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let entry = self.entries.get_mut(key.index())?;
        (entry.seq == key.seq()).then_some(&mut entry.value)
    }

    fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|&Reverse((deadline, _, _))| deadline)
    }

    fn advance(&mut self, now: u64, expired: &mut Vec<Expired<T>>) {
        self.now = self.now.max(now);
        while let Some(&Reverse((deadline, seq, index))) = self.heap.peek() {
            if deadline > self.now {
                break;
            }
            self.heap.pop();
            let entry = self.entries.remove(index);
            debug_assert_eq!(entry.seq, seq, "the top is never a tombstone");
            let key = TimerKey::new(index, seq);
            expired.push(Expired {
                key,
                deadline,
                value: entry.value,
            });
            self.pop_tombstones();
        }
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_frees_at_once_and_tombstones_stay_bounded() {
        let mut queue = HeapQueue::new();
        let keys: Vec<TimerKey> = (0..1_000u64).map(|i| queue.insert(1_000 - i, i)).collect();
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(queue.remove(key), Some(i as u64));
            assert_eq!(queue.entries.len(), 1_000 - i - 1, "the value is freed now");
            assert!(
                queue.heap.len() <= 2 * queue.len() + 1,
                "tombstones bounded"
            );
        }
        assert_eq!(queue.next_deadline(), None);
        assert_eq!(queue.remove(keys[0]), None);
    }

    #[test]
    fn the_top_is_always_live() {
        let mut queue = HeapQueue::new();
        let early = queue.insert(5, 'a');
        queue.insert(9, 'b');
        queue.insert(7, 'c');
        queue.remove(early);
        assert_eq!(queue.next_deadline(), Some(7));
        let mut expired = Vec::new();
        queue.advance(8, &mut expired);
        assert_eq!(expired.len(), 1);
        assert_eq!((expired[0].deadline, expired[0].value), (7, 'c'));
    }

    #[test]
    fn u64_max_deadline_neither_overflows_nor_fires_early() {
        let mut queue = HeapQueue::new();
        queue.insert(u64::MAX, ());
        let mut expired = Vec::new();
        queue.advance(u64::MAX - 1, &mut expired);
        assert!(expired.is_empty());
        queue.advance(u64::MAX, &mut expired);
        assert_eq!(expired.len(), 1);
    }
}
