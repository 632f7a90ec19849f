//! [`Sleep`]: a future that completes at a deadline.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::driver::Timers;
use super::queue::TimerKey;
use crate::runtime::context;

/// Waits until `duration` has passed.
///
/// ```
/// use std::time::{Duration, Instant};
/// coop::block_on(async {
///     let start = Instant::now();
///     coop::time::sleep(Duration::from_millis(20)).await;
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(far_or(super::now().checked_add(duration)))
}

/// Waits until `deadline`. A deadline in the past completes at once.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
        done: false,
    }
}

/// An `Instant` far enough ahead to mean "never" (about 30 years), for
/// durations whose end does not fit in an `Instant`.
///
/// Thirty years from now by the runtime's clock ([`super::now`]), not by
/// the machine's: a paused clock that has jumped to one such "never" (it
/// was the only timer left) stands 30 years ahead of the machine, and a
/// second `sleep(Duration::MAX)` counted from the machine's time would be
/// due at once.
pub(crate) fn far_or(deadline: Option<Instant>) -> Instant {
    deadline.unwrap_or_else(|| {
        let now = super::now();
        now.checked_add(Duration::from_secs(86_400 * 365 * 30))
            .unwrap_or(now)
    })
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// It registers a timer the first time it is polled (so creating one costs
/// nothing until it is awaited) and removes it the moment it is dropped, so
/// abandoned sleeps (a `timeout` whose future won, a `select!` branch that
/// lost) leave nothing behind. It never completes before its deadline.
pub struct Sleep {
    /// When to complete.
    deadline: Instant,
    /// The registered timer and the runtime's timers it lives in, once
    /// polled.
    timer: Option<(Rc<Timers>, TimerKey)>,
    /// Completed, and not reset since: what `FusedFuture::is_terminated`
    /// says, so that `futures::select!` skips a sleep that already won
    /// (and takes it back once `reset` gives it a new deadline). A flag,
    /// not a look at the clock: `select!` asks on every poll.
    done: bool,
}

impl Sleep {
    /// The instant at which this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the deadline has passed (by the runtime's clock, which a
    /// test may have paused: see [`crate::time::now`]).
    pub fn is_elapsed(&self) -> bool {
        self.now() >= self.deadline
    }

    /// Now, by the clock of the runtime this sleep is filed with if that
    /// runtime's loop is running, else by the current runtime's: the
    /// runtime that will poll it. Outside every runtime (between two
    /// `block_on` calls), by the clock of the one it is filed with, the
    /// likeliest to poll it next: the machine's time would call a sleep on
    /// a paused clock elapsed when it is not. Only a paused clock (tests)
    /// makes these differ from the real time.
    fn now(&self) -> Instant {
        match &self.timer {
            Some((timers, _)) if timers.looping() => timers.now(),
            Some((timers, _)) => {
                context::with_current(|core| core.timers.now()).unwrap_or_else(|| timers.now())
            }
            None => super::now(),
        }
    }

    /// Moves the deadline (earlier or later), even after the sleep
    /// completed; it will then complete again at the new deadline. If a
    /// task was waiting, the same task is woken at the new deadline (at
    /// once if that has passed).
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.deadline = deadline;
        this.done = false;
        if let Some((timers, key)) = this.timer.take()
            && let Some(waker) = timers.remove(key)
        {
            if timers.now() >= deadline {
                // Already due: like a sleep due at its first poll, it
                // waits for nothing, so it files no timer (one filed here
                // would count the time since the new deadline, however
                // long ago, as lateness); its task is woken to see it done.
                waker.wake();
            } else {
                let key = timers.insert(deadline, waker);
                this.timer = Some((timers, key));
            }
        }
    }
}

/// A sleep that completes spends a unit of its task's cooperative budget
/// (see [`crate::task::consume_budget`]): a loop over an interval whose
/// ticks are all overdue gives the loop back as a reader whose data is all
/// there does. With the budget spent, a sleep that is due completes at the
/// task's next poll instead.
impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_deadline(cx, Spend::Budget)
    }
}

/// Whether a sleep that completes spends its task's budget.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// It does: a plain sleep, an interval's tick.
    Budget,
    /// It does not: a [`timeout`](super::timeout())'s deadline, which must
    /// fire even when the future it guards spends every budget.
    Nothing,
}

impl Sleep {
    /// [`poll`](Future::poll), with the budget spent or not (`spend`).
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>, spend: Spend) -> Poll<()> {
        if self.now() >= self.deadline {
            if spend == Spend::Budget {
                // Before anything is taken out: a sleep held back here is
                // still due, and completes at the next poll.
                std::task::ready!(crate::task::poll_proceed(cx));
            }
            if let Some((timers, key)) = self.timer.take() {
                timers.remove(key); // already fired, unless polled early by another wake
                // The lateness belongs to the runtime whose task saw the
                // sleep complete: the one it is filed with if that loop is
                // running (`block_on` does not nest), else the current one
                // (it was moved, and is seen complete at its first poll
                // there).
                if timers.looping() {
                    timers.record_lateness(self.deadline);
                } else if let Some(current) = context::with_current(|core| core.timers.clone()) {
                    current.record_lateness(self.deadline);
                }
            }
            self.done = true;
            return Poll::Ready(());
        }
        if let Some((timers, key)) = &self.timer {
            if timers.looping() {
                if timers.update_waker(*key, cx.waker()) {
                    return Poll::Pending; // still filed here: the usual case
                }
                // Fired (and woken early, or polled by another wake): file
                // it again below.
            } else {
                // Filed with a runtime whose loop is not running (dropped,
                // or idle), so it is not the one polling us (`block_on`
                // does not nest): take it out there and file it with the
                // runtime polling it now.
                timers.remove(*key);
            }
        }
        // The current runtime's timers, if its loop runs: a runtime being
        // dropped is current too (for its tasks' destructors), and so is one
        // entered with `Runtime::enter`, but no loop will fire a timer filed
        // with either, so that is a panic, not a wait.
        let timers = context::with_running(|core| core.timers.clone()).expect(
            "coop::time::Sleep polled outside of a coop runtime \
             (or while its runtime is being dropped, or only entered with \
             Runtime::enter: no loop would fire it)",
        );
        let key = timers.insert(self.deadline, cx.waker().clone());
        self.timer = Some((timers, key));
        Poll::Pending
    }
}

/// A sleep that completed is terminated until [`reset`](Sleep::reset)
/// gives it a new deadline, so it goes into `futures::select!` as it is,
/// without `.fuse()`, and a reset sleep takes part again: the idle timer of
/// a read loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// use futures::{FutureExt, select};
/// coop::block_on(async {
///     let mut idle = std::pin::pin!(coop::time::sleep(Duration::from_millis(5)));
///     let mut work = std::pin::pin!(std::future::pending::<()>().fuse());
///     for _ in 0..2 {
///         select! {
///             () = idle => idle.as_mut().reset(Instant::now() + Duration::from_millis(5)),
///             () = work => unreachable!(),
///         }
///     }
/// });
/// ```
impl futures::future::FusedFuture for Sleep {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((timers, key)) = self.timer.take() {
            timers.remove(key);
        }
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.timer.is_some())
            .finish()
    }
}
