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
//! - [`now`], [`pause`], [`resume`], [`advance`]: the runtime's clock, which
//!   a test can stop, so that an hour of timers runs in no time (see
//!   [`Builder::start_paused`](crate::Builder::start_paused)).
//! - [`driver`]: the loop's side (ticks, rounding up, firing).
//! - [`queue`]: the [`queue::TimerQueue`] trait every backend implements.
//! - [`wheel`]: the hierarchical timing wheel (the default, and the one to read).
//! - [`heap`] and [`btree`]: naive backends for study and comparison, chosen
//!   with [`Builder::timer_backend`](crate::Builder::timer_backend).

//!
//! # A clock that stands still
//!
//! A test of a 30-second idle timeout should not take 30 seconds, nor fail
//! when the machine stalls. A runtime built with
//! [`Builder::start_paused`](crate::Builder::start_paused) (or a task that
//! calls [`pause`]) reads time from a clock that stands still, and moves
//! only when told ([`advance`]) or when the loop has nothing to do but
//! wait for a timer: then it checks sockets without waiting and, if nothing
//! is ready, *jumps* to the timer's deadline instead of sleeping until it.
//!
//! ```
//! use std::time::Duration;
//! let rt = coop::Runtime::builder().start_paused(true).build().unwrap();
//! rt.block_on(async {
//!     let start = coop::time::now();
//!     let mut every_minute = coop::time::interval(Duration::from_secs(60));
//!     for _ in 0..=60 {
//!         every_minute.tick().await; // an hour of ticks, in no time
//!     }
//!     assert_eq!(coop::time::now() - start, Duration::from_secs(3600));
//! });
//! ```
//!
//! Only coop's timers and [`now`] follow the paused clock;
//! `std::time::Instant::now()` keeps the real time. A socket that is ready
//! always wins over the jump, and a `spawn_blocking` job holds the clock
//! back until it ends, awaited or not (it runs in real time). Work on other
//! threads sent through a [`Handle`](crate::runtime::Handle) does not: the
//! clock may jump past a timeout while such work is still on its way, as in
//! tokio. The design is in `src/time/clock.rs`.

pub mod btree;
mod clock;
pub(crate) mod driver;
pub mod heap;
mod interval;
pub mod queue;
mod sleep;
mod timeout;
pub mod wheel;

pub use clock::{advance, now, pause, resume};
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
