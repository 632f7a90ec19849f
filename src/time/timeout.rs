//! [`timeout`]: give up on a future after a while.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::sleep::{Spend, far_or, sleep_until};

/// The error of a [`timeout`] whose time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// An `Elapsed` is an `io::Error` of kind `TimedOut` (as tokio's is), so
/// that `timeout(d, io_future).await??` works in a function that returns
/// `io::Result`.
impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}

/// Runs `future`, giving up after `duration`: `Ok(output)` if it finished in
/// time, `Err(Elapsed)` if not (the future is then dropped, cancelling it).
///
/// The fast path costs no timer: the future is polled first, and the timer
/// is registered only if it is not ready at once.
///
/// `duration` counts from this call, as [`sleep`](super::sleep())'s does
/// (and tokio's `timeout`), not from the first poll: a plain function, not
/// an `async fn`, so that the clock is read now. (An `async fn`'s body runs
/// only when it is first polled, which may be much later, for a timeout
/// spawned on a busy loop or built ahead and awaited after other work.)
///
/// ```
/// use std::time::Duration;
/// coop::block_on(async {
///     let never = std::future::pending::<()>();
///     let result = coop::time::timeout(Duration::from_millis(10), never).await;
///     assert!(result.is_err());
/// });
/// ```
pub fn timeout<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, Elapsed>> {
    timeout_at(far_or(super::now().checked_add(duration)), future)
}

/// Like [`timeout`], with an absolute deadline.
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut sleep = sleep_until(deadline);
    poll_fn(|cx| {
        let had_budget = crate::task::budget_left();
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        // If the future spent the last of the budget in this poll, the
        // deadline spends none: a future that spends all of its task's
        // budget at every poll (a reader whose data never runs out) must
        // still be stopped by it. Otherwise it spends a unit as a due
        // sleep does: with budget left, so that a loop over timeouts
        // already elapsed around a future that spends nothing gives the
        // loop back as a loop over due sleeps does; and with the budget
        // spent before this poll began (the future was held back without
        // a try), it waits for the budget too, so that it cannot beat a
        // future that may be ready, which goes first again at the task's
        // next poll. tokio's timeout makes the same cases
        // (`had_budget_before` and `has_budget_now`).
        let spend = if had_budget && !crate::task::budget_left() {
            Spend::Nothing
        } else {
            Spend::Budget
        };
        sleep.poll_deadline(cx, spend).map(|()| Err(Elapsed(())))
    })
    .await
}
