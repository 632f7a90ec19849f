//! The runtime's clock, and how a test can stop it.
//!
//! Every timer question the loop asks ("is this sleep due?", "how long may
//! `mio::Poll` wait?", "which ticks have passed?") is a question about
//! *now*. Ask the operating system, and a test of a 30-second idle timeout
//! takes 30 seconds, and a test of "the retry comes 100 ms after the
//! failure" fails whenever the machine stalls for longer than the margin.
//!
//! So each runtime reads time through one [`Clock`], which can be
//! **paused** ([`Builder::start_paused`](crate::Builder::start_paused), or
//! [`pause`] from a task). A paused clock stands still, and two things move
//! it:
//!
//! - [`advance`]: a task moves it forward by hand, and the timers that
//!   came due fire before the task goes on;
//! - **auto-advance**: when the loop has nothing to do but wait for a
//!   timer, it does not wait. It checks for I/O without sleeping, and if
//!   nothing at all became ready, it moves the clock to the next timer's
//!   deadline and fires it. An hour of `sleep` takes no time. (The jump
//!   lands on the timer's tick: its deadline rounded up to a whole
//!   millisecond since the runtime started, as every deadline is, see
//!   [`driver`](super::driver). A runtime built paused starts on a tick,
//!   so whole-millisecond sleeps land exactly.)
//!
//! That second rule is the whole trick, and it shows what a timer is to an
//! event loop: not a thread that sleeps, but a deadline that sizes the next
//! wait. A loop with nothing ready in between may as well jump.
//!
//! Two things hold auto-advance back, because the loop cannot see them
//! finish on its own clock:
//!
//! - **Anything ready now.** Sockets are checked (without waiting) before
//!   every jump, so a reply already on its way over loopback wins over a
//!   timeout. A reply that the *kernel* has not yet delivered does not (as
//!   in tokio: pause the clock for tests of timing logic, not for measuring
//!   a peer).
//! - **A `spawn_blocking` job**, which runs on a real thread in real time,
//!   until its result is in, whether or not a task awaits it (as tokio's
//!   blocking tasks do; aborting its handle lets the clock go).
//!
//! Only coop's own timers follow the paused clock: `sleep`, `timeout`,
//! `interval` and [`now`]. `std::time::Instant::now()` keeps telling the
//! real time, and so do the trace, the metrics' parked time and the
//! slow-poll warning, which measure the machine. Code that wants to be
//! tested with a paused clock reads the time with [`now`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::context;

/// One runtime's source of "now": the operating system's clock, or a
/// stopped one.
///
/// The real clock is the usual case, and costs what `Instant::now()` costs
/// plus two tests: `frozen` is `None`, and so is `resumed`.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// `Some(t)` while paused: the time is `t`, whatever the machine says.
    /// `advance` and auto-advance move `t` forward, never back.
    frozen: Cell<Option<Instant>>,
    /// Once resumed after a pause, the clock runs at the real rate from
    /// where the pause left it: `(clock time, real time)` at the resume,
    /// and now is `clock + real.elapsed()`. `None` until the first resume,
    /// so a clock never paused reads `Instant::now()` as it is.
    resumed: Cell<Option<(Instant, Instant)>>,
    /// How many [`ClockHold`]s are alive: work that runs in real time and
    /// whose end the loop will see (a `spawn_blocking` job). While any is, a
    /// paused clock does not auto-advance; the loop waits for the work
    /// instead. Shared with the holds, which count themselves out as they
    /// drop. Counted on the loop's thread only (the hold lives in the small
    /// task that `spawn_blocking` spawns to take the job's result, awaited
    /// or not), so no wake can slip between the count and the loop's look
    /// at it.
    holds: Rc<Cell<usize>>,
}

/// Keeps a paused clock from jumping while it lives (see `Clock::holds`).
pub(crate) struct ClockHold(Rc<Cell<usize>>);

impl Drop for ClockHold {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Clock {
    /// A running clock, or one paused at the real now.
    pub(crate) fn new(paused: bool) -> Clock {
        let clock = Clock::default();
        if paused {
            clock.frozen.set(Some(Instant::now()));
        }
        clock
    }

    /// Now, by this clock.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        if let Some(frozen) = self.frozen.get() {
            return frozen;
        }
        match self.resumed.get() {
            None => Instant::now(),
            Some((clock, real)) => clock + real.elapsed(),
        }
    }

    /// Whether the clock stands still.
    #[inline]
    pub(crate) fn is_paused(&self) -> bool {
        self.frozen.get().is_some()
    }

    /// Holds auto-advance back until the returned guard drops.
    pub(crate) fn hold(&self) -> ClockHold {
        self.holds.set(self.holds.get() + 1);
        ClockHold(self.holds.clone())
    }

    /// Whether some work holds auto-advance back.
    pub(crate) fn is_held(&self) -> bool {
        self.holds.get() > 0
    }

    /// Stops the clock at its current time.
    fn pause(&self) -> Result<(), &'static str> {
        if self.is_paused() {
            return Err("the clock is already paused");
        }
        self.frozen.set(Some(self.now()));
        Ok(())
    }

    /// Starts a paused clock again, from where it stands.
    fn resume(&self) -> Result<(), &'static str> {
        let Some(frozen) = self.frozen.take() else {
            return Err("the clock is not paused");
        };
        self.resumed.set(Some((frozen, Instant::now())));
        Ok(())
    }

    /// Moves a paused clock forward to `to`, if that is later than where it
    /// stands (a paused clock never goes back). Does nothing to a running
    /// clock.
    pub(crate) fn jump_to(&self, to: Instant) {
        if let Some(frozen) = self.frozen.get() {
            self.frozen.set(Some(frozen.max(to)));
        }
    }
}

/// Now, by the current runtime's clock: the real time unless the clock is
/// paused (see [`crate::time`](crate::time#a-clock-that-stands-still)). Outside a runtime, the real time.
///
/// ```
/// use std::time::Duration;
/// let rt = coop::Runtime::builder().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let start = coop::time::now();
///     coop::time::sleep(Duration::from_secs(3600)).await; // takes no time
///     assert_eq!(coop::time::now() - start, Duration::from_secs(3600));
/// });
/// ```
pub fn now() -> Instant {
    context::with_current(|core| core.timers.now()).unwrap_or_else(Instant::now)
}

/// Pauses the current runtime's clock: from now on it moves only by
/// [`advance`] and by auto-advance (see [`crate::time`](crate::time#a-clock-that-stands-still)).
///
/// # Panics
/// Outside a runtime, or if the clock is already paused.
#[track_caller]
pub fn pause() {
    on_current_clock("pause", Clock::pause);
}

/// Starts the current runtime's paused clock again, at the real rate, from
/// the time it stands at (which may be ahead of the machine's clock).
///
/// # Panics
/// Outside a runtime, or if the clock is not paused.
#[track_caller]
pub fn resume() {
    on_current_clock("resume", Clock::resume);
}

/// Moves the current runtime's paused clock forward by `duration`, then
/// lets the loop fire the timers that came due and run their tasks before
/// the caller goes on.
///
/// ```
/// use std::time::Duration;
/// let rt = coop::Runtime::builder().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let reminder = coop::spawn(coop::time::sleep(Duration::from_secs(60)));
///     coop::yield_now().await; // the reminder files its timer
///     coop::time::advance(Duration::from_secs(59)).await;
///     assert!(!reminder.is_finished());
///     coop::time::advance(Duration::from_secs(1)).await;
///     assert!(reminder.is_finished());
/// });
/// ```
///
/// # Panics
/// When first polled (it is an `async fn`): outside a runtime, or if the
/// clock is not paused (a running clock cannot be set).
pub async fn advance(duration: Duration) {
    on_current_clock("advance", |clock| {
        if !clock.is_paused() {
            return Err("the clock is not paused (see coop::time::pause)");
        }
        clock.jump_to(super::sleep::far_or(clock.now().checked_add(duration)));
        Ok(())
    });
    // The loop fires due timers after this turn's tasks, and runs a task
    // that yielded only after the tasks those timers woke.
    crate::yield_now().await;
}

/// Runs `f` on the current runtime's clock, for `coop::time::{what}`;
/// panics outside a runtime, or with the reason `f` refused.
#[track_caller]
fn on_current_clock(what: &str, f: impl FnOnce(&Clock) -> Result<(), &'static str>) {
    match context::with_current(|core| f(core.timers.clock())) {
        None => panic!("coop::time::{what} called outside of a coop runtime"),
        Some(Err(why)) => panic!("coop::time::{what}: {why}"),
        Some(Ok(())) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_clock_reads_the_real_time() {
        let clock = Clock::new(false);
        let before = Instant::now();
        let now = clock.now();
        assert!(before <= now && now <= Instant::now());
        assert!(!clock.is_paused());
    }

    #[test]
    fn a_paused_clock_stands_still_and_only_jumps_forward() {
        let clock = Clock::new(true);
        let t = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), t);
        clock.jump_to(t + Duration::from_secs(5));
        assert_eq!(clock.now(), t + Duration::from_secs(5));
        clock.jump_to(t); // never back
        assert_eq!(clock.now(), t + Duration::from_secs(5));
    }

    #[test]
    fn a_resumed_clock_runs_on_from_where_it_stood() {
        let clock = Clock::new(true);
        let t = clock.now() + Duration::from_secs(3600);
        clock.jump_to(t);
        clock.resume().unwrap();
        let now = clock.now();
        assert!(
            now >= t && now < t + Duration::from_secs(60),
            "{:?}",
            now - t
        );
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now() >= now + Duration::from_millis(2));
        // A running clock is not set by a jump.
        clock.jump_to(t + Duration::from_secs(7200));
        assert!(clock.now() < t + Duration::from_secs(60));
    }

    #[test]
    fn pausing_twice_or_resuming_a_running_clock_is_an_error() {
        let clock = Clock::new(false);
        assert!(clock.resume().is_err());
        clock.pause().unwrap();
        assert!(clock.pause().is_err());
        clock.resume().unwrap();
        assert!(clock.resume().is_err());
    }
}
