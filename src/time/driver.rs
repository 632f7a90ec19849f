//! The timer driver: the loop's side of time.
//!
//! The loop talks to timers in two places (see [`crate::runtime`]), and a
//! third with a paused clock:
//!
//! - step 2 of every turn, [`Timers::fire_due`]: advance the queue to the
//!   current tick and wake every task whose timer came due;
//! - step 3, [`Timers::next_timeout`]: how long `mio::Poll` may sleep before
//!   the next timer needs attention;
//! - step 5, [`Timers::auto_advance`], only when the clock is paused: jump
//!   to that moment instead of sleeping until it (see `clock.rs`).
//!
//! # Ticks, and why deadlines round up
//!
//! Queues count time in whole milliseconds ("ticks") since the runtime
//! started. An `Instant` deadline becomes a tick by rounding **up**, and the
//! current time becomes a tick by rounding **down**. A timer fires when
//! `now_tick >= deadline_tick`, so it fires at or after its deadline, never
//! before. (mio rounds poll timeouts up to whole milliseconds too, so the loop
//! never wakes a fraction of a tick too early and spins.)

use std::cell::RefCell;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::TimerBackend;
use super::clock::Clock;
use super::queue::{Expired, TimerKey, TimerQueue};
use crate::runtime::executor::wake_quietly;
use crate::runtime::histogram::Histogram;

/// The runtime's timers, shared (by `Rc`) with every registered `Sleep`.
pub(crate) struct Timers {
    /// The queue chosen by the builder: wheel, heap or B-tree.
    queue: RefCell<Box<dyn TimerQueue<Waker>>>,
    /// Tick 0: the clock's time when the runtime was built.
    start: Instant,
    /// Where "now" comes from: the real clock, or a paused one (tests).
    clock: Clock,
    /// Set by step 3 on a paused clock, read by step 5: jump to the next
    /// timer if the wait brought nothing (see [`auto_advance`]).
    ///
    /// [`auto_advance`]: Timers::auto_advance
    jump_planned: std::cell::Cell<bool>,
    /// How late sleeps woke: the moment a sleep's task saw it complete,
    /// minus its deadline.
    lateness: RefCell<Histogram>,
    /// Reused buffer for timers that came due in one advance.
    fired: RefCell<Vec<Expired<Waker>>>,
    /// Timers fired so far (for metrics).
    pub(crate) fired_total: std::cell::Cell<u64>,
    /// Timers pending now: the queue's `len()`, kept beside it so that a
    /// turn with no timer (a busy server's usual turn) learns that from
    /// one `Cell` instead of a borrow and a dynamic call.
    pending: std::cell::Cell<usize>,
    /// Set while this runtime's `block_on` runs on its thread: then, and
    /// only then, a loop advances these timers. A `Sleep` reads it before
    /// each wait, and one filed here while it is clear (polled under
    /// another runtime) moves to the current runtime's timers. A field of
    /// the timers the sleep already holds, so the usual poll asks no
    /// thread-local.
    looping: std::cell::Cell<bool>,
}

impl Timers {
    pub(crate) fn new(backend: TimerBackend, paused: bool) -> Timers {
        let clock = Clock::new(paused);
        Timers {
            queue: RefCell::new(backend.new_queue()),
            start: clock.now(),
            clock,
            jump_planned: std::cell::Cell::new(false),
            lateness: RefCell::new(Histogram::default()),
            fired: RefCell::new(Vec::new()),
            fired_total: std::cell::Cell::new(0),
            pending: std::cell::Cell::new(0),
            looping: std::cell::Cell::new(false),
        }
    }

    /// Now, by this runtime's clock (see [`Clock`]).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The clock itself, to pause, resume or move it.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Says whether this runtime's loop is running (see `looping`).
    pub(crate) fn set_looping(&self, looping: bool) {
        self.looping.set(looping);
    }

    /// Whether this runtime's loop is running, so that it will fire these
    /// timers (see `looping`).
    #[inline]
    pub(crate) fn looping(&self) -> bool {
        self.looping.get()
    }

    /// The tick at or after `deadline` (rounded up).
    pub(crate) fn tick_at_or_after(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        let ms = since.as_millis() + u128::from(!since.subsec_nanos().is_multiple_of(1_000_000));
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// The tick that `now` falls in (rounded down).
    fn tick_of(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Files a timer that wakes `waker` at or after `deadline`.
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let tick = self.tick_at_or_after(deadline);
        let key = self.queue.borrow_mut().insert(tick, waker);
        self.pending.set(self.pending.get() + 1);
        key
    }

    /// Cancels a timer; returns its waker if it was still pending.
    pub(crate) fn remove(&self, key: TimerKey) -> Option<Waker> {
        let removed = self.queue.borrow_mut().remove(key);
        if removed.is_some() {
            self.pending.set(self.pending.get() - 1);
        }
        removed
    }

    /// Replaces a pending timer's waker if it would wake a different task.
    /// Returns false if the timer is no longer pending.
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.queue.borrow_mut().get_mut(key) {
            Some(stored) if stored.will_wake(waker) => return true, // the usual case
            Some(_) => {}
            None => return false,
        }
        // Another waker: cloned, and the old one dropped, with no queue
        // borrow held, as `remove`'s waker is: a waker's clone and drop
        // may run any code (a hand-made `RawWaker`'s do), even code that
        // files a timer; so the timer is looked up again after the clone.
        let new = waker.clone();
        let replaced = match self.queue.borrow_mut().get_mut(key) {
            Some(stored) => std::mem::replace(stored, new),
            None => return false,
        };
        drop(replaced);
        true
    }

    /// Step 2 of a turn: wakes the tasks of every timer due by now.
    #[inline]
    pub(crate) fn fire_due(&self) {
        if self.pending.get() > 0 {
            self.advance_and_wake();
        }
    }

    /// [`fire_due`](Self::fire_due) when some timer is pending.
    fn advance_and_wake(&self) {
        let mut queue = self.queue.borrow_mut();
        let mut fired = self.fired.borrow_mut();
        queue.advance(self.tick_of(self.now()), &mut fired);
        drop(queue);
        self.pending.set(self.pending.get() - fired.len());
        debug_assert_eq!(self.pending.get(), self.queue.borrow().len());
        self.fired_total
            .set(self.fired_total.get() + fired.len() as u64);
        // Wake with no queue borrow held: a waker may run any code, and
        // may panic, which must not leave the wakers after it unwoken.
        for expired in fired.drain(..) {
            wake_quietly(expired.value);
        }
    }

    /// Step 3: how long the loop may sleep before a timer needs it, or
    /// `None` if no timer is pending.
    ///
    /// A paused clock (tests) never sleeps for a timer: it answers zero,
    /// so that the loop only looks for I/O, and plans a jump to the timer
    /// for [`auto_advance`](Self::auto_advance), unless something holds the
    /// clock (then the loop waits for that, with no timeout).
    ///
    /// Inlined, for its usual answer in a busy server: no timer, `None`,
    /// one test of a `Cell`. The rest is out of line.
    #[inline]
    pub(crate) fn next_timeout(&self) -> Option<Duration> {
        if self.pending.get() == 0 {
            return None;
        }
        self.next_timeout_pending()
    }

    /// [`next_timeout`](Self::next_timeout) when some timer is pending.
    #[inline(never)]
    fn next_timeout_pending(&self) -> Option<Duration> {
        let wait = self.next_deadline()?.saturating_duration_since(self.now());
        if self.clock.is_paused() && !wait.is_zero() {
            return self.plan_jump();
        }
        Some(wait)
    }

    /// [`next_timeout`](Self::next_timeout) on a paused clock.
    #[cold]
    fn plan_jump(&self) -> Option<Duration> {
        if self.clock.is_held() {
            return None;
        }
        self.jump_planned.set(true);
        Some(Duration::ZERO)
    }

    /// Step 5, after the wait: a paused clock's auto-advance (see
    /// [`Clock`]). If step 3 planned a jump and the wait left the loop
    /// `idle()` (nothing queued: no I/O, no wake from another thread, no
    /// task that yielded), moves the clock to the next timer's tick, which
    /// the next turn fires. With the clock running, one test of a flag.
    #[inline]
    pub(crate) fn auto_advance(&self, idle: impl FnOnce() -> bool) {
        if self.jump_planned.get() {
            self.jump_if(idle());
        }
    }

    /// The jump itself, if the loop is idle.
    #[cold]
    fn jump_if(&self, idle: bool) {
        self.jump_planned.set(false);
        if idle && let Some(at) = self.next_deadline() {
            self.clock.jump_to(at);
        }
    }

    /// When the queue next needs attention: the start of the next timer's
    /// tick, or, on the wheel, of an earlier tick at which it must cascade
    /// (see [`TimerQueue::next_deadline`]). A paused clock's jump there
    /// fires nothing; the next turn plans the next jump, and each such
    /// jump moves a timer one level down the wheel.
    fn next_deadline(&self) -> Option<Instant> {
        let tick = self.queue.borrow().next_deadline()?;
        self.start.checked_add(Duration::from_millis(tick))
    }

    /// Notes that a sleep due at `deadline` was seen complete just now.
    pub(crate) fn record_lateness(&self, deadline: Instant) {
        let late = self.now().saturating_duration_since(deadline);
        self.lateness.borrow_mut().record(late);
    }

    /// A copy of the lateness histogram.
    pub(crate) fn lateness(&self) -> Histogram {
        self.lateness.borrow().clone()
    }

    /// Timers pending now.
    pub(crate) fn len(&self) -> usize {
        self.pending.get()
    }
}
