//! [`Interval`]: ticks at a fixed period.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use super::sleep::{Sleep, far_or, sleep_until};

/// What an [`Interval`] does when ticks were missed because the loop (or the
/// task) was busy for longer than a period: when the task asks for a tick
/// and the one after it is already due. A tick that is merely late keeps
/// the schedule under `Burst` and `Skip`; `Delay`, which promises that
/// ticks do not bunch, starts over from any tick served more than 5 ms
/// late (tokio's line for every policy).
///
/// Say the period is 100 ms, ticks are due at 100, 200, 300, … and the task
/// next asks for a tick at 350 ms:
///
/// | behaviour | ticks returned at | then |
/// |---|---|---|
/// | `Burst` (default) | 350 (for 100), 350 (200), 350 (300) | 400, 500, … |
/// | `Delay` | 350 (for 100) | 450, 550, … |
/// | `Skip` | 350 (for 100) | 400, 500, … |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Catch up: fire the missed ticks back to back, keeping the original
    /// schedule (the number of ticks over a long run is exact).
    #[default]
    Burst,
    /// Start over: the next tick is one period after the late one (a tick
    /// is late here once it is 5 ms past its time), so no gap between
    /// ticks is more than 5 ms shorter than a period.
    Delay,
    /// Drop the missed ticks and stay on the original grid.
    Skip,
}

/// Ticks every `period`; the first tick completes at once.
///
/// ```
/// use std::time::Duration;
/// coop::block_on(async {
///     let mut every = coop::time::interval(Duration::from_millis(5));
///     for _ in 0..3 {
///         every.tick().await; // at 0, 5 and 10 ms
///     }
/// });
/// ```
///
/// # Panics
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(super::now(), period)
}

/// Ticks at `start` and every `period` after it.
///
/// # Panics
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "coop::time::interval: the period must be non-zero"
    );
    Interval {
        sleep: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// How late a tick may be served before `Delay` starts over from it
/// (tokio's value). Timers have 1 ms ticks, so every tick is a little late.
const DELAY_SLACK: Duration = Duration::from_millis(5);

/// A stream of ticks at a fixed period, from [`interval`].
#[derive(Debug)]
pub struct Interval {
    /// Sleeps until the next tick is due; its deadline *is* the schedule.
    sleep: Sleep,
    /// Time between ticks.
    period: Duration,
    /// What to do after falling behind.
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick; returns the instant it was *scheduled* for.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// The poll form of [`tick`](Self::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(Pin::new(&mut self.sleep).poll(cx));
        let scheduled = self.sleep.deadline();
        let now = super::now();
        let on_grid = scheduled.checked_add(self.period);
        // The policy is for *missed* ticks: when the next tick is already
        // due. A tick served a little late (timers have 1 ms ticks, and
        // the loop may be busy) keeps the grid whatever the policy (for
        // `Delay`, within `DELAY_SLACK`), or `Delay` would push the
        // schedule later at every tick.
        let missed = on_grid.is_some_and(|next| now >= next);
        // `Delay` promises that ticks never bunch, so a tick served more
        // than a little late starts over from now even if the next one is
        // not yet due: keeping the grid would shorten the gap after it
        // (tokio's line, `DELAY_SLACK`). Lateness within the slack, which
        // every tick has, keeps the grid, so the schedule does not drift.
        let late = scheduled
            .checked_add(DELAY_SLACK)
            .is_some_and(|limit| now > limit);
        let next = match self.missed {
            MissedTickBehavior::Delay if missed || late => now.checked_add(self.period),
            _ if !missed => on_grid,
            MissedTickBehavior::Burst | MissedTickBehavior::Delay => on_grid,
            MissedTickBehavior::Skip => {
                // The first grid point strictly after now. In nanoseconds,
                // not `Duration * u32`: with a period of a nanosecond, a
                // stall of 4.3 s is more than `u32::MAX` periods.
                let behind = now.saturating_duration_since(scheduled).as_nanos();
                let period = self.period.as_nanos();
                (behind / period + 1)
                    .checked_mul(period)
                    .and_then(|ns| u64::try_from(ns).ok())
                    .and_then(|ns| scheduled.checked_add(Duration::from_nanos(ns)))
            }
        };
        Pin::new(&mut self.sleep).reset(far_or(next));
        Poll::Ready(scheduled)
    }

    /// Chooses the policy for missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The policy for missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        Pin::new(&mut self.sleep).reset(far_or(super::now().checked_add(self.period)));
    }
}

/// The ticks as a `futures` stream that never ends: each item is the
/// instant the tick was scheduled for, as [`tick`](Interval::tick)
/// returns. It works with `StreamExt` (`next`, `take`, `zip`, ...) and in
/// `futures::select!` (as a `FusedStream` that is never terminated).
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// coop::block_on(async {
///     let ticks = coop::time::interval(Duration::from_millis(2));
///     let three: Vec<_> = ticks.take(3).collect().await;
///     assert!(three[0] < three[1] && three[1] < three[2]);
/// });
/// ```
impl futures::Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

impl futures::stream::FusedStream for Interval {
    fn is_terminated(&self) -> bool {
        false
    }
}
