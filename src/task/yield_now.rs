//! [`yield_now`]: give the loop a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Returns control to the event loop once, then resumes.
///
/// Cooperative multitasking means a task runs until it awaits something that
/// is not ready. A loop that computes for a long time never does, and every
/// other task (and all I/O) waits. `yield_now().await` inside such a loop lets
/// everything else run first: the task wakes itself and returns `Pending`;
/// the loop notes that a task yielded and looks at the network before its
/// next turn, so the task runs again only after the loop has checked for
/// I/O, and after the tasks that were already queued or that the timers
/// and the network woke meanwhile.
///
/// ```
/// coop::block_on(async {
///     for _ in 0..3 {
///         // ... a slice of work ...
///         coop::yield_now().await;
///     }
/// });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
