//! The timer queue contract, shared by the wheel and its two baselines.
//!
//! A runtime keeps one timer queue. Each pass of its loop it asks the queue
//! [`next_deadline`](TimerQueue::next_deadline) to size the `mio::Poll` timeout,
//! then calls [`advance`](TimerQueue::advance) with the current time and wakes
//! every task whose timer came back in the `expired` list. A `Sleep` future
//! holds the [`TimerKey`] it got from [`insert`](TimerQueue::insert): to change
//! its waker ([`get_mut`](TimerQueue::get_mut)) or to cancel itself when dropped
//! early ([`remove`](TimerQueue::remove)).
//!
//! # Ticks, and why the caller rounds up
//!
//! The queue knows nothing of [`Instant`](std::time::Instant): time is a `u64`
//! count of ticks (1 tick = 1 ms) since the queue was created, and
//! [`now`](TimerQueue::now) starts at 0. Turning an `Instant` into a tick is the
//! caller's job, and the caller **must round up**:
//!
//! ```
//! # use std::time::{Duration, Instant};
//! fn deadline_tick(start: Instant, deadline: Instant) -> u64 {
//!     let nanos = deadline.saturating_duration_since(start).as_nanos();
//!     u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
//! }
//! let start = Instant::now();
//! assert_eq!(deadline_tick(start, start + Duration::from_micros(1)), 1);
//! ```
//!
//! A sleep of 1.2 ms becomes tick 2, never tick 1: the queue fires a timer when
//! `now >= deadline`, so rounding down would wake the task up to a tick early
//! and it would see its `Instant` not yet reached. Rounding up costs at most a
//! millisecond of lateness, which a timer is always allowed; earliness it is not.
//! (mio rounds its poll timeout up to whole milliseconds for the same reason.)
//! For the same reason, `now` passed to `advance` should be rounded *down*.
//!
//! # Keys go stale
//!
//! A timer's storage slot is reused as soon as it fires or is removed. Each key
//! therefore also carries a sequence number, unique for the queue's lifetime;
//! a key whose timer is gone is *stale*, and every method answers `None` for it
//! instead of touching whichever newer timer now lives in that slot.

/// Names one timer: its slab index plus a sequence number unique for the queue's lifetime,
/// so a key whose timer already fired or was removed is recognised as stale and never
/// touches a newer timer that reused the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    /// Where the timer lives in its queue's slab.
    index: usize,
    /// Which insert made it: the slot at `index` must still hold this one.
    seq: u64,
}

impl TimerKey {
    /// Builds a key; only queues make keys.
    pub(crate) fn new(index: usize, seq: u64) -> TimerKey {
        TimerKey { index, seq }
    }

    /// The slab index the timer was stored at.
    pub(crate) fn index(self) -> usize {
        self.index
    }

    /// The sequence number the timer was given at insert.
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

/// A timer that came due in `advance`.
#[derive(Debug)]
pub struct Expired<T> {
    /// The key `insert` returned; stale from now on.
    pub key: TimerKey,
    /// The deadline the timer was inserted with (not the tick it was noticed at).
    pub deadline: u64,
    /// The value given to `insert`, typically a `Waker`.
    pub value: T,
}

/// Time is counted in ticks (1 tick = 1 ms) from the queue's creation; `now` starts at 0.
///
/// The trait is object safe: the runtime holds a `Box<dyn TimerQueue<Waker>>`
/// so a builder option can pick the implementation.
pub trait TimerQueue<T> {
    /// Files `value` to fire at tick `deadline`. A deadline at or before `now()` fires on the next `advance`. Any u64 deadline is accepted (far ones are clamped/re-filed, never lost, never overflow).
    fn insert(&mut self, deadline: u64, value: T) -> TimerKey;

    /// Removes a pending timer at once (the value is dropped now; the heap backend keeps a 24-byte tombstone until it is popped or the heap is rebuilt). None if the key is stale.
    fn remove(&mut self, key: TimerKey) -> Option<T>;

    /// The pending timer's value, to update it in place (e.g. replace a waker). None if stale.
    fn get_mut(&mut self, key: TimerKey) -> Option<&mut T>;

    /// A tick at or before the earliest pending deadline (the wheel may answer an earlier tick at which it must cascade); never later than the earliest deadline, and never earlier than now() unless something is already due. None when empty.
    fn next_deadline(&self) -> Option<u64>;

    /// Moves time forward to `now` (a `now` earlier than the current time is ignored) and pushes every timer whose deadline <= now into `expired`, by deadline, and timers with the same deadline in the order they were inserted (so tasks woken together run in the same order on every backend). Keys of expired timers become stale.
    fn advance(&mut self, now: u64, expired: &mut Vec<Expired<T>>);

    /// The current tick: the largest `now` ever passed to `advance`, or 0.
    fn now(&self) -> u64;

    /// How many timers are pending.
    fn len(&self) -> usize;

    /// Whether no timer is pending.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
