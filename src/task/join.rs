//! [`JoinHandle`] and [`JoinError`]: awaiting a spawned task's result.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::cell::{AbortTarget, JoinTarget};
use super::{AbortHandle, Id};
use crate::runtime::executor::drop_quietly;

/// An owned permission to await a spawned task's output.
///
/// `JoinHandle<T>` is a future of `Result<T, JoinError>`: `Ok` with the
/// task's output, or `Err` if the task panicked or was cancelled.
///
/// Dropping the handle *detaches* the task: it keeps running, and its output
/// is dropped when it finishes. To stop a task, call [`abort`](Self::abort),
/// or keep an [`abort_handle`](Self::abort_handle), which can stop it after
/// this handle is gone.
///
/// The task runs only while its own runtime's loop does. A handle awaited
/// in another runtime's `block_on` waits until the task's runtime runs
/// again, or is dropped (then the handle says cancelled); unlike a socket
/// used outside its runtime, it is not an error.
///
/// ```
/// let answer = coop::block_on(async {
///     let handle = coop::spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct JoinHandle<T> {
    /// The task's shared cell, seen through its output type.
    task: Rc<dyn JoinTarget<T>>,
    /// The task's number. Kept here, not in the cell: a cell exists per
    /// task (per connection, in a server), a handle only while someone
    /// holds it.
    id: Id,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Rc<dyn JoinTarget<T>>, id: Id) -> JoinHandle<T> {
        JoinHandle { task, id }
    }

    /// The task's [`Id`]: what [`task::id`](super::id()) returns inside it.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Asks the runtime to cancel the task. The task is not polled again:
    /// where its next poll would have been, its future is dropped (running its destructors)
    /// and the handle resolves to a [`JoinError`] for which
    /// [`is_cancelled`](JoinError::is_cancelled) is true. Aborting a task
    /// that already finished does nothing.
    ///
    /// A task that aborts itself, from inside its own poll, is cancelled
    /// at its next poll. If the poll that called `abort` returns `Ready`,
    /// there is no next poll: the task has finished, and the handle gets
    /// its output (as in tokio).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// True once the task has finished: completed, panicked or cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// A handle that can [`abort`](AbortHandle::abort) the task, but not
    /// await it: it has no output type, and it works after this
    /// `JoinHandle` is dropped or awaited.
    ///
    /// ```
    /// coop::block_on(async {
    ///     let handle = coop::spawn(std::future::pending::<()>());
    ///     let abort = handle.abort_handle();
    ///     abort.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    ///     assert!(abort.is_finished());
    /// });
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        // Weak, so that the abort handle keeps nothing in the cell alive;
        // upcast (`dyn JoinTarget<T>` to `dyn AbortTarget`) to forget `T`.
        let task: Weak<dyn JoinTarget<T>> = Rc::downgrade(&self.task);
        AbortHandle::new(task as Weak<dyn AbortTarget>, self.id)
    }
}

/// A handle whose task has finished spends a unit of the awaiting task's
/// cooperative budget as it returns the result (see
/// [`consume_budget`](super::consume_budget)): a loop that awaits a
/// thousand finished tasks, as `JoinSet::join_next` does, gives the loop
/// back every budget. With the budget spent, it returns the result at the
/// task's next poll instead.
impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.task.is_finished() {
            // Before the result is taken, and outside the cell's borrow:
            // the wake of a task held back here may run any waker's code.
            std::task::ready!(super::poll_proceed(cx));
        }
        self.task.poll_join(cx)
    }
}

/// A handle that has returned its result is terminated (polling it again
/// panics), so it goes into `futures::select!` as it is, without `.fuse()`.
impl<T> futures::future::FusedFuture for JoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.task.is_consumed()
    }
}

/// Dropping a handle drops the task's output, if it finished and the
/// output was never taken, and catches a panic in that output's
/// destructor (logged, as a task's own destructor's is): a handle dropped
/// anywhere, in a task or outside, must not unwind for a value its owner
/// never saw. tokio does the same.
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        drop_quietly("a task's output, dropped with its JoinHandle,", || {
            self.task.discard_output()
        });
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task gave no output: it panicked, or it was cancelled.
///
/// `Send + Sync`, so it fits in `io::Error::other` and
/// `Box<dyn Error + Send + Sync>`.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// The payload is `Send` but not `Sync`; a `Mutex` makes the error
    /// `Sync` without `unsafe` (tokio uses an unsafe `SyncWrapper`). Boxed
    /// so that a `JoinError` is one pointer: every task cell has room for
    /// one, and panics are rare.
    Panic(Box<Mutex<Box<dyn Any + Send + 'static>>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(Box::new(Mutex::new(payload))),
        }
    }

    /// True if the task was aborted, or the runtime shut down before it
    /// finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, to inspect or to resume with
    /// `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task did not panic (check [`is_panic`](Self::is_panic)).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.repr {
            Repr::Panic(payload) => payload.into_inner().unwrap_or_else(|e| e.into_inner()),
            Repr::Cancelled => panic!("JoinError::into_panic called on a cancelled task"),
        }
    }

    /// The panic message, when the payload is a string (as `panic!` makes).
    fn panic_message(&self) -> Option<String> {
        match &self.repr {
            Repr::Panic(p) => {
                let p = p.lock().unwrap_or_else(|e| e.into_inner());
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
            }
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "task panicked: {msg}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "JoinError::Panic({msg:?})"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}
