//! Intrusive doubly linked lists threaded through the wheel's slab.
//!
//! Every slot of every level is a list of timers, and so is the "due now"
//! list. A list owns nothing: it is just the slab indices of its first and
//! last entries. Each entry carries the indices of its neighbours, so an
//! entry can be unlinked in O(1) when its timer is cancelled, knowing only
//! its own index; no slot is ever scanned, and no `unsafe` pointer is
//! needed, because a slab index plays the part of a pointer.
//!
//! ```text
//!   List { head: Some(7), tail: Some(2) }
//!            |                      |
//!            v                      v
//!   slab[7] { prev: None, next: Some(2) }  <->  slab[2] { prev: Some(7), next: None }
//! ```
//!
//! A list is a queue: entries join at the back ([`List::push_back`]) and
//! leave from the front ([`List::pop_front`]). So timers due at the same
//! tick fire in the order they were inserted, however many times they
//! cascaded on the way, which is the order the heap and the B-tree fire
//! them in (their seq breaks ties). With the tail kept, that costs no more
//! than a stack would; a stack (push and pop at the front) reversed the
//! order at every list a timer passed through.

use slab::Slab;

/// Which list an entry is on, so `remove` can reach that list's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// The wheel's list of timers whose deadline had already passed when filed.
    Due,
    /// Slot `slot` of level `level` (both below 64, hence `u8`, which keeps
    /// an entry small: 64 bytes with a `u64` payload, 72 with a `Waker`).
    Slot {
        /// The level, 0 to 5.
        level: u8,
        /// The slot within the level, 0 to 63.
        slot: u8,
    },
}

/// One timer as the wheel stores it in its slab.
#[derive(Clone, Debug)]
pub(crate) struct Entry<T> {
    /// The tick at which the timer is due, exactly as inserted.
    pub(crate) deadline: u64,
    /// The insert's sequence number; a key must match it to be fresh.
    pub(crate) seq: u64,
    /// The caller's value, typically a `Waker`.
    pub(crate) value: T,
    /// The list this entry is linked into.
    pub(crate) home: Home,
    /// Slab index of the previous entry in that list; `None` at the head.
    prev: Option<usize>,
    /// Slab index of the next entry in that list; `None` at the tail.
    next: Option<usize>,
}

impl<T> Entry<T> {
    /// A new entry, not yet on any list (the wheel files it next).
    pub(crate) fn new(deadline: u64, seq: u64, value: T) -> Entry<T> {
        Entry {
            deadline,
            seq,
            value,
            home: Home::Due,
            prev: None,
            next: None,
        }
    }
}

/// A list of entries: the slab indices of its two ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct List {
    /// The first entry (the next to leave), or `None` for an empty list.
    head: Option<usize>,
    /// The last entry (the latest to join), or `None` for an empty list.
    tail: Option<usize>,
}

impl List {
    /// Whether the list has no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Links entry `index` (on no other list) in at the back, recording
    /// `home` as the name of this list.
    pub(crate) fn push_back<T>(&mut self, entries: &mut Slab<Entry<T>>, index: usize, home: Home) {
        match self.tail {
            Some(old_tail) => entries[old_tail].next = Some(index),
            None => self.head = Some(index),
        }
        let entry = &mut entries[index];
        entry.home = home;
        entry.prev = self.tail;
        entry.next = None;
        self.tail = Some(index);
    }

    /// Unlinks entry `index`, which must be on this list, by joining its
    /// neighbours to each other.
    pub(crate) fn unlink<T>(&mut self, entries: &mut Slab<Entry<T>>, index: usize) {
        let Entry { prev, next, .. } = entries[index];
        match prev {
            Some(prev) => entries[prev].next = next,
            None => {
                debug_assert_eq!(self.head, Some(index), "an entry without prev is the head");
                self.head = next;
            }
        }
        match next {
            Some(next) => entries[next].prev = prev,
            None => {
                debug_assert_eq!(self.tail, Some(index), "an entry without next is the tail");
                self.tail = prev;
            }
        }
        let entry = &mut entries[index];
        entry.prev = None;
        entry.next = None;
    }

    /// Unlinks and returns the first entry's index.
    pub(crate) fn pop_front<T>(&mut self, entries: &mut Slab<Entry<T>>) -> Option<usize> {
        let head = self.head?;
        self.unlink(entries, head);
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(list: &mut List, entries: &mut Slab<Entry<u32>>) -> Vec<u32> {
        let mut values = Vec::new();
        while let Some(index) = list.pop_front(entries) {
            values.push(entries[index].value);
        }
        values
    }

    #[test]
    fn unlink_from_head_middle_and_tail() {
        for victim in 0..3 {
            let mut entries = Slab::new();
            let mut list = List::default();
            let indices: Vec<usize> = (0..3)
                .map(|v| entries.insert(Entry::new(0, 0, v)))
                .collect();
            for &index in &indices {
                list.push_back(&mut entries, index, Home::Due);
            }
            list.unlink(&mut entries, indices[victim]);
            let mut expected = vec![0, 1, 2];
            expected.retain(|&v| v != victim as u32);
            assert_eq!(drain(&mut list, &mut entries), expected);
            assert!(list.is_empty());
        }
    }
}
