//! A hierarchical timing wheel: O(1) insert and remove, and `advance` that
//! leaps over idle time.
//!
//! # The idea
//!
//! Varghese and Lauck ("Hashed and Hierarchical Timing Wheels", SOSP 1987)
//! observed that timers are mostly *cancelled*, not fired: a read timeout is
//! set, the data arrives, the timeout is dropped. A sorted structure pays
//! O(log n) for each of those; a wheel pays O(1). This is tokio's design:
//!
//! * Time moves in ticks of 1 ms. There are 6 **levels** of 64 **slots**. A
//!   slot of level 0 is one tick wide; a slot of level `n` is 64ⁿ ticks wide,
//!   so the whole wheel reaches 2^36 ticks (≈ 2.2 years). The table of spans
//!   is in `wheel/level.rs`.
//! * A timer is filed at the finest level whose current window still holds
//!   its deadline: due within this 64-tick block, level 0; within this
//!   4,096-tick block, level 1; and so on. Its slot is its deadline's 6-bit
//!   digit for that level (the pure functions `level_for` and `slot_for`).
//! * When time reaches the start of a coarse slot, its timers **cascade**:
//!   each is filed again, now landing at a finer level, until at level 0 the
//!   slot *is* the deadline and the timer fires. An in-range timer cascades
//!   at most five times, however many timers there are.
//! * Each level keeps a `u64` bitmap of its non-empty slots, so `advance`
//!   finds the next slot to visit with one `trailing_zeros` and jumps straight
//!   to it: an idle hour costs a handful of steps, not 3.6 million.
//! * Timers live in a `Slab`; every slot is a doubly linked list threaded
//!   through it by index (`wheel/list.rs`), so removing one is O(1). Each
//!   list is first in, first out, so timers due at one tick fire in the
//!   order they were inserted, as on the heap and the B-tree.
//!
//! # A timer cascading from level 2 to level 0
//!
//! At `now = 0` a timer is inserted for tick 5,000. In base 64, 5,000 has
//! the digits `1, 14, 8` (1·4096 + 14·64 + 8). Its highest digit differing
//! from `now`'s is digit 2, so it goes to **level 2, slot 1**, which starts
//! at tick 4,096. Then `advance(6_000)`:
//!
//! 1. The bitmaps say the first occupied slot is level 2, slot 1, at tick
//!    4,096. Time jumps there (ticks 1..4,095 are never visited) and the slot
//!    is emptied. Filed again from 4,096, the timer differs only in digit 1:
//!    **level 1, slot 14**, starting at 4,096 + 14·64 = 4,992.
//! 2. Time jumps to 4,992; filed again, it differs only in digit 0: **level
//!    0, slot 8**, which is tick 5,000 itself.
//! 3. Time jumps to 5,000; the deadline has come, so the timer is pushed to
//!    `expired`. No slot is occupied any more, so time jumps to 6,000.
//!
//! # Deadlines in the past, and far in the future
//!
//! A deadline at or before `now` goes to the *due* list, emptied by the next
//! `advance`. A deadline beyond the top level's current window is *clamped*
//! into the top level, at the slot its deadline will have when its window
//! comes round (tokio's trick). That slot is visited within 2^36 ticks,
//! earlier than the deadline; the timer is simply filed again, and is never
//! lost. So that a leap of centuries does not re-file it once per 2.2-year
//! rotation, `advance` notices when only clamped timers are left and leaps
//! to the end of the window before the earliest of them.
//!
//! # Rounding is the caller's job
//!
//! The wheel fires a timer once `now >= deadline`; it never rounds. The
//! runtime turns an `Instant` into a tick by rounding **up** (and the current
//! time by rounding down), so the rounding makes a timer up to one tick
//! late but never early (the wait's own rounding, the kernel's wake-up and
//! busy tasks add more: chapter 04, "How late?"). See
//! [`queue`](crate::time::queue) for the conversion.
//!
//! # Ground rules
//!
//! These hold whenever no method is running:
//!
//! 1. Every pending timer is on exactly one list: the due list or one slot;
//!    its `Home` names which. A level's bitmap bit is set exactly when that
//!    slot's list is non-empty.
//! 2. An in-range timer in level `L`, slot `s` has its deadline in the same
//!    level-`L` window as `now`, and `s` comes *after* `now`'s own slot at
//!    that level. So the slot starts after `now` and no later than the
//!    deadline: visiting it never fires early.
//! 3. A clamped timer sits in the top level at `slot_for(deadline, TOP)`;
//!    that slot's next start (maybe in the next rotation) is after `now` and
//!    before the deadline. Only clamped timers sit at or before `now`'s slot.
//! 4. Hence every occupied slot of level `L` starts before every occupied slot
//!    of level `L + 1`: the next slot to visit is the first occupied slot of
//!    the lowest non-empty level.
//! 5. `advance` never lets `now` pass a slot's start without visiting it,
//!    which is what keeps rules 2 and 3 true as time moves.
//! 6. `advance` reports timers by deadline, and timers with one deadline
//!    in insertion order (the [`TimerQueue::advance`] contract). Slots are
//!    visited in time order, and timers with one deadline always share a
//!    list (where a timer sits depends only on `now` and its deadline), in
//!    which each joins at the back and a cascade moves them front first.

mod level;
mod list;
#[cfg(test)]
mod tests;

use slab::Slab;

use self::level::{Expiration, LEVELS, Level, RANGE, level_for, slot_for};
use self::list::{Entry, Home, List};
use crate::time::queue::{Expired, TimerKey, TimerQueue};

/// A hierarchical timing wheel of 6 levels × 64 slots at 1 tick = 1 ms.
#[derive(Clone)]
pub struct Wheel<T> {
    /// Every pending timer; a [`TimerKey`] is an index in here plus a seq.
    entries: Slab<Entry<T>>,
    /// The six levels, finest first.
    levels: [Level; LEVELS],
    /// Timers inserted with a deadline already at or before `now`.
    due: List,
    /// No later than the earliest deadline on `due` (removals may leave it
    /// lower, which is still a correct answer for `next_deadline`).
    due_min: u64,
    /// The current tick: how far `advance` has moved time.
    now: u64,
    /// The sequence number the next insert gets.
    next_seq: u64,
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub fn new() -> Wheel<T> {
        Wheel {
            entries: Slab::new(),
            levels: std::array::from_fn(Level::new),
            due: List::default(),
            due_min: u64::MAX,
            now: 0,
            next_seq: 0,
        }
    }

    /// Puts entry `index`, due at `deadline`, on the list that calls for.
    fn file(&mut self, index: usize, deadline: u64) {
        if deadline <= self.now {
            self.due_min = self.due_min.min(deadline);
            self.due.push_back(&mut self.entries, index, Home::Due);
        } else {
            let level = level_for(self.now, deadline);
            let slot = slot_for(deadline, level);
            self.levels[level].push(slot, index, &mut self.entries);
        }
    }

    /// The next slot to visit: by ground rule 4, the lowest level's first.
    fn next_expiration(&self) -> Option<Expiration> {
        let next = self
            .levels
            .iter()
            .find_map(|level| level.next_expiration(self.now));
        debug_assert!(
            self.levels
                .iter()
                .filter_map(|level| level.next_expiration(self.now))
                .all(|later| later.tick >= next.map_or(0, |next| next.tick)),
            "a finer level never expires after a coarser one"
        );
        next
    }

    /// Visits a slot whose start tick `now` has just reached: every timer in
    /// it either fires or is filed again at a finer level.
    fn cascade(&mut self, level: usize, slot: usize, expired: &mut Vec<Expired<T>>) {
        let mut list = self.levels[level].take(slot);
        while let Some(index) = list.pop_front(&mut self.entries) {
            let deadline = self.entries[index].deadline;
            if deadline <= self.now {
                self.fire(index, expired);
            } else {
                self.file(index, deadline);
            }
        }
    }

    /// Removes entry `index` (already unlinked) and reports it expired.
    fn fire(&mut self, index: usize, expired: &mut Vec<Expired<T>>) {
        let entry = self.entries.remove(index);
        let key = TimerKey::new(index, entry.seq);
        expired.push(Expired {
            key,
            deadline: entry.deadline,
            value: entry.value,
        });
    }

    /// Called when the next slot is a wrapped top-level slot, so only clamped
    /// timers are left. Rather than re-file them once per rotation, moves
    /// `now` straight to the last tick before the top window holding the
    /// earliest deadline, or to `target` if that comes first. This scans all
    /// timers, but only ever runs when every timer lies beyond the top
    /// level's current window, i.e. when the wheel is idle for years.
    /// Returns false, changing nothing, if that would not move time forward.
    fn leap(&mut self, target: u64) -> bool {
        let earliest = self.entries.iter().map(|(_, entry)| entry.deadline).min();
        let window = earliest.expect("a wrapped slot holds timers") & !(RANGE - 1);
        // `window` is a later top window than `now`'s, so it is not 0.
        let leap_to = target.min(window - 1);
        if leap_to <= self.now {
            return false;
        }
        self.now = leap_to;
        true
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Wheel<T> {
        Wheel::new()
    }
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<T> TimerQueue<T> for Wheel<T> {
    fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = self.entries.insert(Entry::new(deadline, seq, value));
        self.file(index, deadline);
        TimerKey::new(index, seq)
    }

    fn remove(&mut self, key: TimerKey) -> Option<T> {
        let entry = self
            .entries
            .get(key.index())
            .filter(|entry| entry.seq == key.seq())?;
        match entry.home {
            Home::Due => self.due.unlink(&mut self.entries, key.index()),
            Home::Slot { level, slot } => {
                let level = &mut self.levels[usize::from(level)];
                level.unlink(usize::from(slot), key.index(), &mut self.entries);
            }
        }
        Some(self.entries.remove(key.index()).value)
    }

    fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let entry = self
            .entries
            .get_mut(key.index())
            .filter(|entry| entry.seq == key.seq())?;
        Some(&mut entry.value)
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.entries.is_empty() {
            return None; // the loop asks every time it sleeps: answer fast
        }
        if !self.due.is_empty() {
            return Some(self.due_min);
        }
        self.next_expiration().map(|expiration| expiration.tick)
    }

    fn advance(&mut self, now: u64, expired: &mut Vec<Expired<T>>) {
        let target = now.max(self.now);
        // 1. Timers that were already due when inserted, all due before any
        //    timer in a slot. The list holds them in insertion order, their
        //    deadlines in any order: a stable sort by deadline puts them in
        //    firing order (ground rule 6).
        let first = expired.len();
        while let Some(index) = self.due.pop_front(&mut self.entries) {
            self.fire(index, expired);
        }
        expired[first..].sort_by_key(|timer| timer.deadline);
        self.due_min = u64::MAX;

        // 2. Occupied slots in time order, jumping over the empty ones.
        while let Some(next) = self.next_expiration() {
            if next.tick > target {
                break;
            }
            if next.wrapped && self.leap(target) {
                continue;
            }
            self.now = next.tick;
            self.cascade(next.level, next.slot, expired);
        }
        self.now = target;
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}
