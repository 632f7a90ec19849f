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
        // The cell stores an id-less `Failure` (see there); the id is
        // stamped on here, where it is known.
        let id = self.id;
        self.task
            .poll_join(cx)
            .map(|result| result.map_err(|failure| failure.with_id(Some(id))))
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

/// Why a task gave no output: it panicked, or it was cancelled; and which
/// task it was.
///
/// `Send + Sync`, so it fits in `io::Error::other` and
/// `Box<dyn Error + Send + Sync>`.
///
/// ```
/// coop::block_on(async {
///     let handle = coop::spawn(async { panic!("boom") });
///     let id = handle.id();
///     let err = handle.await.unwrap_err();
///     assert_eq!(err.id(), id);
///     assert_eq!(err.to_string(), format!("task {id} panicked: boom"));
/// });
/// ```
pub struct JoinError {
    /// What went wrong: the part the task's cell stored.
    failure: Failure,
    /// Which task it was. Not stored in the cell with the failure (which
    /// must stay one pointer, see [`Failure`]) but stamped on by the
    /// handle that hands the error out, which knows its task's id. `None`
    /// only for a [`RemoteJoinHandle`](crate::runtime::RemoteJoinHandle)'s
    /// task that never became a task on the loop (see [`try_id`](Self::try_id)).
    id: Option<Id>,
}

/// A [`JoinError`] without its task's id: what a task's cell stores when
/// the task panics or is cancelled, and what the remote-task channel
/// carries.
///
/// One pointer on purpose: every task cell (one per connection, in a
/// server) has room for a `Result<T, Failure>`, and panics are rare. The
/// id is not here: the [`JoinHandle`] (or the `JoinSet`'s handle, or the
/// `RemoteJoinHandle`) knows its task's id and adds it when it turns a
/// `Failure` into the public `JoinError`. A cell that stored the id too
/// would make every task's stage bigger (a `Result<(), _>` of a
/// `JoinError` is 24 bytes, of a `Failure` 16) for a number its handle
/// already holds.
pub(crate) enum Failure {
    Cancelled,
    /// The payload is `Send` but not `Sync`; a `Mutex` makes the error
    /// `Sync` without `unsafe` (tokio uses an unsafe `SyncWrapper`). Boxed
    /// so that a `Failure` is one pointer.
    Panic(Box<Mutex<Box<dyn Any + Send + 'static>>>),
}

impl Failure {
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Failure {
        Failure::Panic(Box::new(Mutex::new(payload)))
    }

    pub(crate) fn is_panic(&self) -> bool {
        matches!(self, Failure::Panic(_))
    }

    /// The public error, naming task `id` (`None`: see [`JoinError::try_id`]).
    pub(crate) fn with_id(self, id: Option<Id>) -> JoinError {
        JoinError { failure: self, id }
    }
}

impl JoinError {
    /// True if the task was aborted, or the runtime shut down before it
    /// finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.failure, Failure::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        self.failure.is_panic()
    }

    /// The [`Id`] of the task that panicked or was cancelled: the one
    /// [`JoinHandle::id`] (or the [`AbortHandle::id`] that
    /// [`JoinSet::spawn`](super::JoinSet::spawn) returned) gives, and
    /// [`task::id`](super::id()) gave inside the task.
    ///
    /// # Panics
    /// Only for an error from a [`RemoteJoinHandle`](crate::runtime::RemoteJoinHandle)
    /// whose task never reached the loop: its runtime was dropped before
    /// it took the spawn in, or the closure given to
    /// [`Handle::spawn_with`](crate::runtime::Handle::spawn_with) panicked.
    /// A task's id is given by the loop when it takes the task in, so
    /// such a task has none, and none is made up. [`try_id`](Self::try_id)
    /// says `None` then. An error from a [`JoinHandle`] or a
    /// [`JoinSet`](super::JoinSet) always has an id.
    #[track_caller]
    pub fn id(&self) -> Id {
        self.id
            .expect("JoinError::id: the task never reached its runtime's loop, so it has no id")
    }

    /// The [`Id`] of the task, as [`id`](Self::id) gives it, or `None` for
    /// a remote task that never reached the loop (see there).
    pub fn try_id(&self) -> Option<Id> {
        self.id
    }

    /// The panic's payload, to inspect or to resume with
    /// `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task did not panic (check [`is_panic`](Self::is_panic)).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.failure {
            Failure::Panic(payload) => payload.into_inner().unwrap_or_else(|e| e.into_inner()),
            Failure::Cancelled => panic!("JoinError::into_panic called on a cancelled task"),
        }
    }

    /// The panic message, when the payload is a string (as `panic!` makes).
    fn panic_message(&self) -> Option<String> {
        match &self.failure {
            Failure::Panic(p) => {
                let p = p.lock().unwrap_or_else(|e| e.into_inner());
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
            }
            Failure::Cancelled => None,
        }
    }
}

/// "task 7 was cancelled", "task 7 panicked: boom" (or "task 7 panicked",
/// when the payload is no string); "task" alone when there is no id.
impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task")?;
        if let Some(id) = self.id {
            write!(f, " {id}")?;
        }
        match (&self.failure, self.panic_message()) {
            (Failure::Cancelled, _) => f.write_str(" was cancelled"),
            (Failure::Panic(_), Some(msg)) => write!(f, " panicked: {msg}"),
            (Failure::Panic(_), None) => f.write_str(" panicked"),
        }
    }
}

/// `JoinError::Cancelled(Id(7))`, `JoinError::Panic(Id(7), "boom")`; as
/// `JoinError::Cancelled` and `JoinError::Panic("boom")` when there is no
/// id.
impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id.map(|id| format!("{id:?}"));
        match (&self.failure, id) {
            (Failure::Cancelled, Some(id)) => write!(f, "JoinError::Cancelled({id})"),
            (Failure::Cancelled, None) => f.write_str("JoinError::Cancelled"),
            (Failure::Panic(_), id) => {
                let id = id.map(|id| id + ", ").unwrap_or_default();
                match self.panic_message() {
                    Some(msg) => write!(f, "JoinError::Panic({id}{msg:?})"),
                    None => write!(f, "JoinError::Panic({id}..)"),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}
