//! The wheel's geometry: its constants, the two pure index functions, and one
//! level's ring of 64 slots with its occupancy bitmap.
//!
//! Every constant comes from [`BITS_PER_LEVEL`]. With 6 bits, each level has
//! 64 slots and each slot of level `n` spans 64ⁿ ticks:
//!
//! | level | slot span (ticks) | level range (ticks) | range at 1 tick = 1 ms |
//! |------:|------------------:|--------------------:|-----------------------:|
//! |     0 |                 1 |                  64 |                  64 ms |
//! |     1 |                64 |               4,096 |                  ~4 s  |
//! |     2 |             4,096 |             262,144 |                ~4.4 min |
//! |     3 |           262,144 |          16,777,216 |                ~4.7 h  |
//! |     4 |        16,777,216 |       1,073,741,824 |              ~12.4 days |
//! |     5 |     1,073,741,824 |      68,719,476,736 |             ~2.2 years |
//!
//! A level's *window* is the aligned block of `level range` ticks that holds
//! `now`: level 1's window is the 4,096-tick block `now` is in, and so on.

use slab::Slab;

use super::list::{Entry, Home, List};

/// Bits of the deadline each level consumes; everything else follows from it.
pub(crate) const BITS_PER_LEVEL: u32 = 6;

/// Slots per level: 2^BITS_PER_LEVEL = 64, so one `u64` bitmap covers a level.
pub(crate) const SLOTS: usize = 1 << BITS_PER_LEVEL;

/// How many levels the wheel has.
pub(crate) const LEVELS: usize = 6;

/// The coarsest level, where timers beyond the wheel's range are clamped.
pub(crate) const TOP: usize = LEVELS - 1;

/// Ticks the whole wheel spans: the top level's range, 2^36 (≈ 2.2 years).
pub(crate) const RANGE: u64 = level_range(TOP);

/// Masks a slot number out of shifted ticks.
const SLOT_MASK: u64 = SLOTS as u64 - 1;

/// Ticks covered by one slot of `level`: 64^level.
pub(crate) const fn slot_span(level: usize) -> u64 {
    1 << (BITS_PER_LEVEL as usize * level)
}

/// Ticks covered by all 64 slots of `level`: 64^(level + 1).
pub(crate) const fn level_range(level: usize) -> u64 {
    1 << (BITS_PER_LEVEL as usize * (level + 1))
}

/// The level a timer due at `deadline` is filed in when the time is `now`
/// (for `deadline > now`).
///
/// It is the finest level whose window holds both ticks, found from the
/// highest bit in which they differ: bits 0–5 pick level 0, bits 6–11 level
/// 1, and so on. Deadlines differing from `now` at bit 36 or above lie beyond
/// the top window and are clamped to the top level.
pub(crate) fn level_for(now: u64, deadline: u64) -> usize {
    // OR-ing in the slot mask makes "differ only in bits 0-5" (and "equal")
    // land on level 0 rather than on an empty bitmap.
    let differing = (now ^ deadline) | SLOT_MASK;
    let highest_bit = (u64::BITS - 1 - differing.leading_zeros()) as usize;
    (highest_bit / BITS_PER_LEVEL as usize).min(TOP)
}

/// The slot of `level` a timer due at `deadline` sits in: the deadline's
/// 6-bit digit for that level.
pub(crate) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (BITS_PER_LEVEL as usize * level)) & SLOT_MASK) as usize
}

/// The next slot a level must process, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expiration {
    /// The level holding the slot.
    pub(crate) level: usize,
    /// The slot to process.
    pub(crate) slot: usize,
    /// The tick at which the slot starts, and so must be processed.
    pub(crate) tick: u64,
    /// True when the slot is reached only in the next rotation of the top
    /// level: it then holds only timers clamped from beyond the wheel's range.
    pub(crate) wrapped: bool,
}

/// One level: 64 slots, each an intrusive list of entries, plus a bitmap.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    /// This level's number; 0 is the finest.
    level: usize,
    /// Bit `s` is set exactly when `slots[s]` is non-empty, so the next
    /// occupied slot is one `trailing_zeros` away instead of a 64-slot scan.
    occupied: u64,
    /// The slots' lists, threaded through the wheel's slab.
    slots: [List; SLOTS],
}

impl Level {
    /// An empty level number `level`.
    pub(crate) fn new(level: usize) -> Level {
        Level {
            level,
            occupied: 0,
            slots: [List::default(); SLOTS],
        }
    }

    /// Puts entry `index` at the back of `slot`'s list.
    pub(crate) fn push<T>(&mut self, slot: usize, index: usize, entries: &mut Slab<Entry<T>>) {
        let home = Home::Slot {
            level: self.level as u8,
            slot: slot as u8,
        };
        self.slots[slot].push_back(entries, index, home);
        self.occupied |= 1 << slot;
    }

    /// Unlinks entry `index` from `slot`'s list, in O(1).
    pub(crate) fn unlink<T>(&mut self, slot: usize, index: usize, entries: &mut Slab<Entry<T>>) {
        self.slots[slot].unlink(entries, index);
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Empties `slot`, handing its whole list to the caller.
    pub(crate) fn take(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        std::mem::take(&mut self.slots[slot])
    }

    /// The first occupied slot after `now`'s own slot, in rotation order.
    ///
    /// Slots after `now`'s slot start later in the current window. Slots at or
    /// before it (only ever at the top level, holding clamped timers) start in
    /// the next rotation, one level range later; the rotation starting just
    /// past `now`'s slot visits them last, so ticks come out in time order.
    pub(crate) fn next_expiration(&self, now: u64) -> Option<Expiration> {
        if self.occupied == 0 {
            return None;
        }
        let now_slot = slot_for(now, self.level);
        let first = (now_slot + 1) % SLOTS;
        let distance = self.occupied.rotate_right(first as u32).trailing_zeros() as usize;
        let slot = (first + distance) % SLOTS;

        let window_start = now & !(level_range(self.level) - 1);
        let tick = window_start + slot as u64 * slot_span(self.level);
        if slot > now_slot {
            return Some(Expiration {
                level: self.level,
                slot,
                tick,
                wrapped: false,
            });
        }
        debug_assert_eq!(self.level, TOP, "only clamped timers wrap");
        // A clamped timer exists only if its deadline lies in a later top
        // window, so this window is not the last one and the sum fits.
        let tick = tick
            .checked_add(RANGE)
            .expect("clamped timers are never in the last window");
        Some(Expiration {
            level: self.level,
            slot,
            tick,
            wrapped: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, spelled out: the finest level whose window (aligned
    /// block of `level_range` ticks) holds both ticks, else the top level.
    fn reference_level(now: u64, deadline: u64) -> usize {
        (0..LEVELS)
            .find(|&level| now / level_range(level) == deadline / level_range(level))
            .unwrap_or(TOP)
    }

    fn reference_slot(deadline: u64, level: usize) -> usize {
        ((deadline / slot_span(level)) % SLOTS as u64) as usize
    }

    #[test]
    fn constants_follow_from_bits_per_level() {
        assert_eq!(SLOTS, 64);
        assert_eq!(RANGE, 1 << 36);
        for level in 0..LEVELS {
            assert_eq!(slot_span(level) * SLOTS as u64, level_range(level));
        }
    }

    #[test]
    fn level_for_every_level_boundary_from_zero() {
        for level in 0..LEVELS {
            let last = level_range(level) - 1;
            assert_eq!(level_for(0, last), level, "last tick of level {level}");
            assert_eq!(
                level_for(0, last + 1),
                (level + 1).min(TOP),
                "past level {level}"
            );
        }
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, u64::MAX), TOP);
        assert_eq!(level_for(u64::MAX - 1, u64::MAX), 0);
    }

    #[test]
    fn level_for_exhaustive_over_small_ticks() {
        // Crosses the level 0 -> 1 -> 2 boundaries from every starting tick.
        for now in 0..4_200 {
            for deadline in now + 1..4_300 {
                assert_eq!(
                    level_for(now, deadline),
                    reference_level(now, deadline),
                    "{now} {deadline}"
                );
            }
        }
    }

    #[test]
    fn level_for_around_every_boundary() {
        for level in 0..LEVELS + 2 {
            let edge = 1u64 << (BITS_PER_LEVEL as usize * level);
            for k in [1, 2, 63, 64, 65] {
                let base = edge * k;
                for now in base.saturating_sub(3)..=base + 2 {
                    for deadline in [
                        base - 1,
                        base,
                        base + 1,
                        base + edge,
                        base + 64 * edge,
                        u64::MAX,
                    ] {
                        if deadline > now {
                            assert_eq!(level_for(now, deadline), reference_level(now, deadline));
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn level_and_slot_match_the_reference_anywhere(now: u64, delta in 1..u64::MAX, level in 0..LEVELS) {
            let deadline = now.saturating_add(delta >> (delta % 64));
            proptest::prop_assert_eq!(level_for(now, deadline), reference_level(now, deadline));
            proptest::prop_assert_eq!(slot_for(deadline, level), reference_slot(deadline, level));
        }
    }

    #[test]
    fn filed_slot_is_after_now_in_the_same_window() {
        // The invariant the wheel rests on: an in-range timer's slot comes
        // strictly after now's slot in that level's current window.
        for now in 0..300 {
            for deadline in now + 1..now + 9_000 {
                let level = level_for(now, deadline);
                assert_eq!(now / level_range(level), deadline / level_range(level));
                assert!(slot_for(deadline, level) > slot_for(now, level));
            }
        }
    }

    #[test]
    fn slot_for_exhaustive_over_small_ticks_and_extremes() {
        for level in 0..LEVELS {
            let extremes = [RANGE - 1, RANGE, u64::MAX - 70_000];
            let ticks = (0..70_000).chain(extremes.into_iter().flat_map(|t| t..t + 70_000));
            for tick in ticks {
                assert_eq!(slot_for(tick, level), reference_slot(tick, level));
            }
            assert_eq!(slot_for(u64::MAX, level), SLOTS - 1);
        }
    }

    #[test]
    fn next_expiration_walks_the_bitmap() {
        let mut entries = Slab::new();
        let mut level = Level::new(1);
        assert_eq!(level.next_expiration(0), None);
        let index = entries.insert(Entry::new(200, 0, ()));
        level.push(3, index, &mut entries);
        let later = entries.insert(Entry::new(2_600, 0, ()));
        level.push(40, later, &mut entries);
        // now = 70 sits in slot 1 of level 1; slot 3 starts at 3 * 64,
        // and comes before slot 40 (chapter 04 draws this case).
        let expected = Expiration {
            level: 1,
            slot: 3,
            tick: 192,
            wrapped: false,
        };
        assert_eq!(level.next_expiration(70), Some(expected));
        assert!(level.take(3).pop_front(&mut entries) == Some(index));
        // Slot 3 emptied: the next is slot 40, at 40 * 64.
        let expected = Expiration {
            level: 1,
            slot: 40,
            tick: 2_560,
            wrapped: false,
        };
        assert_eq!(level.next_expiration(70), Some(expected));
        assert!(level.take(40).pop_front(&mut entries) == Some(later));
        assert_eq!(level.next_expiration(70), None);
    }

    #[test]
    fn top_level_slots_at_or_before_now_wrap_to_the_next_rotation() {
        let mut entries = Slab::new();
        let mut top = Level::new(TOP);
        let far = entries.insert(Entry::new(u64::MAX, 0, ()));
        top.push(2, far, &mut entries);
        let now = 5 * slot_span(TOP) + 7; // in top slot 5
        let expiration = top.next_expiration(now).unwrap();
        assert_eq!(expiration.tick, RANGE + 2 * slot_span(TOP));
        assert!(expiration.wrapped);
    }
}
