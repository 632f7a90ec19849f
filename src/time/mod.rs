//! Time: sleeping, timeouts, intervals, and the timer wheel behind them.
//!
//! A task that wants to wait 50 ms must not block the thread (every other
//! task would stop too). Instead [`sleep()`] registers a *timer*: a deadline
//! and the task's waker. The loop keeps every timer in a queue, asks the
//! queue each turn for the next deadline to size its wait in `mio::Poll`,
//! and after the wait fires whatever came due, waking those tasks.
//!
//! - [`sleep()`], [`sleep_until`] → [`Sleep`]; [`timeout()`] → `Result<T, Elapsed>`;
//!   [`interval()`] → [`Interval`] with a [`MissedTickBehavior`].
//! - [`driver`]: the loop's side (ticks, rounding up, firing).
//! - [`queue`]: the [`queue::TimerQueue`] trait every backend implements.
//! - [`wheel`]: the hierarchical timing wheel (the default, and the one to read).
//! - [`heap`] and [`btree`]: naive backends for study and comparison, chosen
//!   with [`Builder::timer_backend`](crate::Builder::timer_backend).

pub mod btree;
pub(crate) mod driver;
pub mod heap;
mod interval;
pub mod queue;
mod sleep;
mod timeout;
pub mod wheel;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, timeout, timeout_at};

use std::task::Waker;

use queue::TimerQueue;

/// Which data structure keeps the runtime's timers. The same program runs
/// on each; only speed differs (see `benches/timers.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimerBackend {
    /// The hierarchical timing wheel: O(1) insert and cancel.
    #[default]
    Wheel,
    /// A binary heap: O(log n) insert; cancel leaves a tombstone.
    Heap,
    /// A B-tree map keyed by deadline: O(log n) insert and cancel.
    BTree,
}

impl TimerBackend {
    pub(crate) fn new_queue(self) -> Box<dyn TimerQueue<Waker>> {
        match self {
            TimerBackend::Wheel => Box::new(wheel::Wheel::new()),
            TimerBackend::Heap => Box::new(heap::HeapQueue::new()),
            TimerBackend::BTree => Box::new(btree::BTreeQueue::new()),
        }
    }
}
