//! [`AbortHandle`]: the right to cancel a task, without the right to await
//! it.
//!
//! A [`JoinHandle`](super::JoinHandle) carries two permissions: to await the
//! task's output, and to cancel the task. Sometimes they belong to different
//! owners. A [`JoinSet`](super::JoinSet) keeps every `JoinHandle` (it must,
//! to hand results back in the order the tasks finish) and gives the caller
//! an `AbortHandle` per task, to cancel one of them. A server keeps a map
//! from connection to `AbortHandle` to drop one client, while the result
//! goes elsewhere. `AbortHandle` is the second permission alone, as in
//! tokio.
//!
//! # Why no output type
//!
//! Cancelling never touches the output, so the handle does not name it:
//! handles of tasks with different outputs go in one `Vec` or one map.
//! The handle reaches the task's cell through [`AbortTarget`], the part of
//! the handle's trait (`JoinTarget<T>`) that does not mention `T`; a
//! `dyn JoinTarget<T>` becomes a `dyn AbortTarget` by trait upcasting,
//! without `unsafe`.
//!
//! # Why a `Weak`, not an `Rc`
//!
//! The handle must not change when anything in the task is dropped. The
//! future is dropped when the task finishes, whoever holds the cell. But
//! the output of a detached task (its `JoinHandle` dropped before it
//! finished) is dropped with the cell itself, when the executor lets go
//! of its reference, the last one (under a guard that logs a panic in the
//! output's destructor). An `AbortHandle` holding an `Rc` would keep that
//! output alive until the last abort handle was gone, and drop it there,
//! unguarded; a task that kept its own handle would make a cycle. So the
//! handle holds a [`Weak`]: if it can no longer reach the cell, the task
//! has finished and nobody holds its `JoinHandle`, so there is nothing to
//! abort. What a `Weak` does keep is the cell's allocation (not its
//! contents) until the last handle is dropped.
//!
//! # Why it is not `Send`
//!
//! As the `JoinHandle`, the handle shares the task's cell, whose abort
//! flag is a plain `Cell<bool>`: it lives on the loop's thread, to be used
//! by the runtime's tasks or by the future given to `block_on`. A handle
//! usable from any thread would need the flag behind an atomic in an `Arc`
//! of its own, paid for by every task, and a server has a task per
//! connection. The tasks spawned from other threads have that, in their
//! [`RemoteJoinHandle`](crate::runtime::RemoteJoinHandle), whose `abort`
//! works from any thread.
//!
//! # What `abort` does
//!
//! It sets the task's abort flag and wakes it; where its next poll would
//! have been, the future is dropped (its destructors run) and the
//! `JoinHandle`, if anyone holds it, says cancelled. So, for a task that
//! is:
//!
//! - **never polled yet**: its future is dropped unpolled, and
//!   `Metrics::polls` counts no poll for it;
//! - **waiting** (its last poll returned `Pending`): it is cancelled when
//!   the loop reaches it, later this turn or on the next one;
//! - **mid-poll**: on one thread, only the task itself (code inside its
//!   poll) can call `abort` then. It is cancelled at its next poll; if the poll that called
//!   `abort` returns `Ready`, there is no next poll, and the output is kept
//!   (as with [`JoinHandle::abort`](super::JoinHandle::abort), and as in
//!   tokio);
//! - **finished** (completed, panicked, cancelled, or its runtime dropped):
//!   nothing happens.
//!
//! [`is_finished`](AbortHandle::is_finished) says false between the abort
//! and the cancellation: the abort is a request, carried out when the loop
//! reaches the task.

use std::fmt;
use std::rc::Weak;

use super::Id;
use super::cell::AbortTarget;

/// An owned permission to cancel a spawned task, without awaiting it and
/// without its output type.
///
/// Made by [`JoinHandle::abort_handle`](super::JoinHandle::abort_handle),
/// and returned by [`JoinSet::spawn`](super::JoinSet::spawn). Dropping it
/// does nothing to the task; cloning it gives another handle to the same
/// task. Not `Send`: use it on the loop's thread (see the [module
/// docs](self)).
///
/// ```
/// use coop::task::AbortHandle;
///
/// coop::block_on(async {
///     let number = coop::spawn(std::future::pending::<u32>());
///     let text = coop::spawn(std::future::pending::<String>());
///     // Tasks with different outputs, one Vec.
///     let aborts: Vec<AbortHandle> = vec![number.abort_handle(), text.abort_handle()];
///     for abort in &aborts {
///         abort.abort();
///     }
///     assert!(number.await.unwrap_err().is_cancelled());
///     assert!(text.await.unwrap_err().is_cancelled());
///     assert!(aborts.iter().all(AbortHandle::is_finished));
/// });
/// ```
///
/// It stays on its thread:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// coop::block_on(async {
///     send(coop::spawn(async {}).abort_handle());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    /// The task's cell, seen without its output type. Weak, so that the
    /// handle keeps neither the cell's future nor its output alive (see
    /// the module docs); gone means finished.
    task: Weak<dyn AbortTarget>,
    /// The task's number, for [`id`](Self::id).
    id: Id,
}

impl AbortHandle {
    pub(crate) fn new(task: Weak<dyn AbortTarget>, id: Id) -> AbortHandle {
        AbortHandle { task, id }
    }

    /// The task's [`Id`], as its [`JoinHandle::id`](super::JoinHandle::id)
    /// says: to tell which of a [`JoinSet`](super::JoinSet)'s tasks a
    /// handle cancels, or to key a map of handles.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Asks the runtime to cancel the task, as
    /// [`JoinHandle::abort`](super::JoinHandle::abort) does: the task is not
    /// polled again, its future is dropped where its next poll would have
    /// been, and its `JoinHandle` resolves to a cancelled
    /// [`JoinError`](super::JoinError). Does nothing if the task has
    /// finished.
    pub fn abort(&self) {
        if let Some(task) = self.task.upgrade() {
            task.abort();
        }
    }

    /// True once the task has finished: completed, panicked or cancelled.
    /// Right after [`abort`](Self::abort) it may still be false: the task
    /// is cancelled when the loop reaches it.
    pub fn is_finished(&self) -> bool {
        match self.task.upgrade() {
            Some(task) => task.is_finished(),
            // Neither the executor nor a JoinHandle holds the cell: the
            // task finished (or its runtime is gone) and its output too.
            None => true,
        }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
