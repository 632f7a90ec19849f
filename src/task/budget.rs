//! The cooperative budget, by hand: [`consume_budget`] and
//! [`unconstrained`].
//!
//! A task gives control back only where it has to wait, so a task that
//! never has to (its socket always has data, its peer always has room)
//! would keep the loop for itself. Every poll therefore comes with a budget
//! of [`TASK_BUDGET`] socket operations; once they are spent, the next
//! operation wakes its task and returns `Pending` instead of running, and
//! the task goes on at its next poll, behind everything queued meanwhile,
//! as after a `yield_now`. The budget lives in the reactor beside the
//! identity of the running task, because socket operations, which spend
//! it, reach the reactor anyway (`Reactor::take_budget`).
//!
//! Two kinds of future besides sockets spend a unit each time they
//! complete: a [`Sleep`](crate::time::Sleep) (and so an
//! [`Interval`](crate::time::Interval)'s tick) and a
//! [`JoinHandle`](crate::JoinHandle), through [`poll_proceed`]. A loop over
//! ticks that are all overdue, or over handles of tasks that have all
//! finished, is the same hog as a reader whose data is all there. A
//! pending one spends nothing: waiting already gives the loop back.
//!
//! A loop that does no coop I/O (it drains a `futures` channel, say, or
//! computes) can take part with [`consume_budget`]; a future that must not
//! be cut short can be run with [`unconstrained`].
//!
//! [`TASK_BUDGET`]: crate::runtime::TASK_BUDGET

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::reactor::Reactor;
use crate::runtime::context;

/// Spends one unit of the running task's budget, and gives the loop back
/// (once, as [`yield_now`](crate::yield_now) does) if the budget is
/// already spent: a `yield_now` that yields only every
/// [`TASK_BUDGET`](crate::runtime::TASK_BUDGET) calls, shared with the
/// task's socket operations. Ready at once outside a coop task.
///
/// ```
/// coop::block_on(async {
///     let mut sum = 0u64;
///     for n in 0..10_000 {
///         sum += n; // a step of work with no .await in it
///         coop::task::consume_budget().await;
///     }
///     assert_eq!(sum, 49_995_000);
/// });
/// ```
pub async fn consume_budget() {
    if !take_unit() {
        crate::yield_now().await;
        // Back at the task's next poll, the call still takes its unit from
        // the new budget, as a socket operation tried again does: so every
        // turn holds exactly `TASK_BUDGET` calls, not one more. (The unit
        // is there unless a combinator polls this again within the same
        // poll of the task; the call ends then all the same.)
        take_unit();
    }
}

/// For a future about to complete: `Ready` with a unit of the running
/// task's budget taken, or, if the budget is spent, `Pending` with the
/// task woken to complete it at its next poll (a yield, as a socket
/// operation over budget gives). Called only once the future knows it is
/// ready, so that a future that waits spends nothing; tokio's
/// `poll_proceed` takes the unit first and gives it back on `Pending`.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    if take_unit() {
        Poll::Ready(())
    } else {
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Whether the running task has budget left (true outside a coop task,
/// and under [`unconstrained`]), without spending any.
pub(crate) fn budget_left() -> bool {
    context::with_current(|core| core.reactor.budget_left()) != Some(false)
}

/// Takes a unit of the current runtime's budget; false only if a coop
/// task's budget is spent (see `Reactor::take_budget`).
fn take_unit() -> bool {
    context::with_current(|core| core.reactor.take_budget()) != Some(false)
}

/// Runs `future` with no budget: its socket operations never give the
/// loop back for having done too many without waiting. The task's own
/// budget is where `future` found it after each of its polls.
///
/// For a burst that must not be cut short, or a measurement of the cost of
/// the budget itself; a task that stays unconstrained can keep the loop
/// from every other task for as long as its sockets stay ready.
///
/// ```
/// coop::block_on(async {
///     let n = coop::task::unconstrained(async { 40 + 2 }).await;
///     assert_eq!(n, 42);
/// });
/// ```
pub async fn unconstrained<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let _lifted = Unconstrained::lift();
        future.as_mut().poll(cx)
    })
    .await
}

/// Keeps the budget lifted while it lives (through a panic too), and puts
/// it back as it was when dropped. Also for `JoinSet::try_join_next`,
/// which cannot yield.
pub(super) struct Unconstrained {
    /// The current runtime's reactor, and the budget as it stood (`None`
    /// outside a runtime: there is nothing to lift).
    lifted: Option<(Rc<Reactor>, (u8, bool))>,
}

impl Unconstrained {
    /// Lifts the current runtime's budget, if there is a current runtime.
    pub(super) fn lift() -> Unconstrained {
        Unconstrained {
            lifted: context::with_current(|core| {
                let before = core.reactor.unconstrain();
                (core.reactor.clone(), before)
            }),
        }
    }
}

impl Drop for Unconstrained {
    fn drop(&mut self) {
        if let Some((reactor, before)) = self.lifted.take() {
            reactor.constrain(before);
        }
    }
}
