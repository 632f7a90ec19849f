//! The task: a future, its eventual output, and who waits for it.
//!
//! ```text
//!             spawn                    poll → Pending
//!   (new) ───────────▶ SCHEDULED ────────────────────▶ IDLE
//!                         ▲   │ poll                    │
//!                         │   ▼                         │ wake()
//!                         │ RUNNING ◀───────────────────┘  (back to SCHEDULED)
//!                         │   │
//!            abort() ─────┘   ├─ poll → Ready(v) ──▶ COMPLETE   Finished(Ok(v))
//!   (queues it; instead of    ├─ poll panics ─────▶ COMPLETE   Finished(Err(panic))
//!    the next poll, the       └─ aborted ─────────▶ CANCELLED  Finished(Err(cancelled))
//!    future is dropped)
//!
//!   JoinHandle::poll takes the Finished value: the stage becomes Consumed.
//! ```
//!
//! SCHEDULED and IDLE are not stored here: they are the `scheduled` flag
//! in the task's slot of the executor's slab (see [`super::waker`]). This
//! file holds what is stored: the [`Stage`], the task's waker, the join
//! handle's waker, and an abort request.
//!
//! One [`TaskCell`] is shared, through `Rc`, by the executor's slab slot and
//! by the task's [`JoinHandle`](super::JoinHandle). Its output type is erased
//! for the executor by the [`Task`] trait and kept for the handle by
//! [`JoinTarget`]; an [`AbortHandle`](super::AbortHandle) sees it through
//! [`AbortTarget`], which has no output type at all.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::join::Failure;
use crate::runtime::executor::{TASK_DROP, drop_quietly};

/// Where a task is in its life.
enum Stage<F: Future> {
    /// Still running. Boxed because a future may not move once polled, and
    /// `Pin<Box<_>>` is how safe code pins a value that lives in a `RefCell`.
    Running(Pin<Box<F>>),
    /// Done; the output (or why there is none) waits for the join handle.
    /// The failure carries no task id: the handle adds it (see [`Failure`]).
    Finished(Result<F::Output, Failure>),
    /// The join handle took the output.
    Consumed,
}

/// What a task is called and where it came from, for warnings and traces.
///
/// Every task carries one, so it is kept to two pointers: names are rare
/// and live behind a thin `Box` (8 bytes; a `String` would be 24).
#[derive(Debug)]
pub(crate) struct TaskMeta {
    /// The name given with `task::Builder::name`, if any. A thin box on
    /// purpose (see above).
    #[allow(clippy::box_collection)]
    pub(crate) name: Option<Box<String>>,
    /// Where `spawn` was called (`#[track_caller]`).
    pub(crate) location: &'static Location<'static>,
}

/// A task's description for log lines: its number, name and spawn site.
pub(crate) struct Describe<'a>(pub(crate) u64, pub(crate) &'a TaskMeta);

impl std::fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Describe(number, meta) = self;
        match &meta.name {
            Some(name) => write!(f, "task {number} \"{name}\" (spawned at {})", meta.location),
            None => write!(f, "task {number} (spawned at {})", meta.location),
        }
    }
}

/// A spawned future with everything the executor and join handle share.
///
/// One of these exists per task, and a server has a task per connection,
/// so its size and layout are memory and cache misses per connection.
/// `repr(C)` keeps the fields in the order written: what every poll reads
/// (the stage, the waker, the abort flag) comes first, right after the
/// `Rc`'s counts, so a poll touches one or two cache lines of the cell,
/// not three; what is rarely read (the join handle's waker, the name)
/// comes last. At 80 bytes plus the `Rc`'s two counts, the cell is a
/// 112-byte malloc chunk (glibc adds 8 bytes and rounds up to 16); 88
/// would still be.
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    /// The future, then its output.
    stage: RefCell<Stage<F>>,
    /// This task's waker (an `Arc<TaskWaker>`). Kept here so polling needs
    /// no refcount traffic: `Context::from_waker(&self.waker)` borrows it.
    waker: Waker,
    /// Set by `JoinHandle::abort` (or `AbortHandle::abort`): the next turn
    /// cancels the task instead of polling it. Read at every poll, so it
    /// sits beside the stage.
    aborted: Cell<bool>,
    /// The waker of whoever awaits the join handle.
    join_waker: Cell<Option<Waker>>,
    /// Name and spawn location.
    meta: TaskMeta,
}

/// What one call of [`Task::run`] did. The executor frees the slot of a
/// task that is done, and counts a poll only if one happened (a task
/// cancelled before its first poll was never polled: `Metrics::polls`
/// must not say it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The future was polled and is not finished.
    Pending,
    /// The future was polled and finished; the task may leave the slab.
    Finished,
    /// No poll happened: an abort was pending, so the task was cancelled
    /// (or it had finished already). The task may leave the slab.
    NotPolled,
}

/// What the executor needs from any task, whatever its output type.
pub(crate) trait Task {
    /// Polls the task once (or cancels it if an abort was requested),
    /// and says which of the two it did (see [`Ran`]).
    fn run(&self) -> Ran;
    /// The task's name and spawn location.
    fn meta(&self) -> &TaskMeta;
    /// The waker every poll of this task is given: the executor tells the
    /// reactor which it is, so that a socket can recognise it (see
    /// `reactor::Running`).
    fn waker(&self) -> &Waker;
    /// Ends the task with `error` (a panic, or cancellation when the runtime
    /// shuts down), dropping its future. Does nothing if already finished,
    /// except that a panic replaces an output not yet taken (the panic came
    /// from the future's destructor, after it returned).
    fn fail(&self, error: Failure);
}

/// What an [`AbortHandle`](super::AbortHandle) needs from its task: the
/// part of [`JoinTarget`] that does not name the output type, so that a
/// handle with no type parameter can reach it (by trait upcasting from
/// `dyn JoinTarget<T>`).
pub(crate) trait AbortTarget {
    /// Sets the abort flag and wakes the task, unless it has finished.
    fn abort(&self);
    /// True once the stage is no longer `Running`.
    fn is_finished(&self) -> bool;
}

/// What a [`JoinHandle`](super::JoinHandle) needs from its task.
pub(crate) trait JoinTarget<T>: AbortTarget {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, Failure>>;
    /// Drops the output if the task finished and nobody took it (the
    /// handle is being dropped).
    fn discard_output(&self);
    /// True once the handle has returned the result.
    fn is_consumed(&self) -> bool;
}

impl<F: Future> TaskCell<F> {
    pub(crate) fn new(future: F, waker: Waker, meta: TaskMeta) -> TaskCell<F> {
        TaskCell {
            stage: RefCell::new(Stage::Running(Box::pin(future))),
            waker,
            aborted: Cell::new(false),
            join_waker: Cell::new(None),
            meta,
        }
    }

    /// Stores the result and tells the join handle. The old stage (the
    /// future) is dropped only after the new one is in place, so a destructor
    /// that panics leaves a consistent cell behind.
    fn finish(&self, result: Result<F::Output, Failure>) {
        let old = std::mem::replace(&mut *self.stage.borrow_mut(), Stage::Finished(result));
        if let Some(waker) = self.join_waker.take() {
            waker.wake();
        }
        drop(old);
    }
}

impl<F: Future> Task for TaskCell<F> {
    fn run(&self) -> Ran {
        if self.aborted.get() {
            // A cancellation, not a poll, even if the future's destructor
            // panics: that panic is caught and logged here (the handle
            // still says cancelled), so that the executor does not take it
            // for a panic in a poll, and count, trace and time it as one.
            drop_quietly(TASK_DROP, || self.fail(Failure::Cancelled));
            return Ran::NotPolled;
        }
        let mut cx = Context::from_waker(&self.waker);
        let output = {
            let mut stage = self.stage.borrow_mut();
            let Stage::Running(future) = &mut *stage else {
                return Ran::NotPolled; // finished already; nothing to poll
            };
            match future.as_mut().poll(&mut cx) {
                Poll::Pending => return Ran::Pending,
                Poll::Ready(output) => output,
            }
        };
        self.finish(Ok(output));
        Ran::Finished
    }

    fn meta(&self) -> &TaskMeta {
        &self.meta
    }

    fn waker(&self) -> &Waker {
        &self.waker
    }

    fn fail(&self, error: Failure) {
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            return;
        };
        match &*stage {
            Stage::Running(_) => {
                drop(stage);
                self.finish(Err(error));
            }
            // The output was stored, then dropping the future panicked: the
            // handle gets the panic rather than a value from a broken task.
            Stage::Finished(Ok(_)) if error.is_panic() => {
                let output = std::mem::replace(&mut *stage, Stage::Finished(Err(error)));
                drop(stage);
                drop(output);
            }
            Stage::Finished(_) | Stage::Consumed => {}
        }
    }
}

impl<F: Future> JoinTarget<F::Output> for TaskCell<F> {
    fn is_consumed(&self) -> bool {
        // Borrowed only by the task's own poll, when the stage is running.
        matches!(self.stage.try_borrow().as_deref(), Ok(Stage::Consumed))
    }

    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, Failure>> {
        // `try_borrow` fails only when a task awaits its own handle from
        // inside its own poll: it can never finish then, so Pending is right.
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            return Poll::Pending;
        };
        match std::mem::replace(&mut *stage, Stage::Consumed) {
            Stage::Finished(result) => Poll::Ready(result),
            Stage::Consumed => panic!("JoinHandle polled after it returned its result"),
            running @ Stage::Running(_) => {
                *stage = running;
                let waker = match self.join_waker.take() {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                self.join_waker.set(Some(waker));
                Poll::Pending
            }
        }
    }

    fn discard_output(&self) {
        // `try_borrow_mut` fails only while the task is being polled: it
        // has no output then.
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            return;
        };
        if matches!(*stage, Stage::Finished(_)) {
            let output = std::mem::replace(&mut *stage, Stage::Consumed);
            drop(stage);
            drop(output); // may panic: the handle's drop catches it
        }
    }
}

impl<F: Future> AbortTarget for TaskCell<F> {
    fn abort(&self) {
        if !self.is_finished() {
            self.aborted.set(true);
            self.waker.wake_by_ref();
        }
    }

    fn is_finished(&self) -> bool {
        match self.stage.try_borrow() {
            Ok(stage) => !matches!(*stage, Stage::Running(_)),
            Err(_) => false, // being polled right now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of a server costs one cell: keep it in malloc's
    /// 112-byte size class, which holds up to 88 bytes plus the `Rc`'s two
    /// counts (the cell is 80 now), and the waker `Arc` in the 48-byte one
    /// (24 plus two counts).
    #[test]
    fn a_task_cell_and_its_waker_stay_small() {
        type Fut = std::future::Ready<()>;
        assert!(
            std::mem::size_of::<TaskCell<Fut>>() <= 88,
            "TaskCell grew to {} bytes",
            std::mem::size_of::<TaskCell<Fut>>()
        );
        assert!(std::mem::size_of::<super::super::waker::TaskWaker>() <= 24);
    }

    /// What a cell stores for a failed task is one pointer, and a finished
    /// task's `Result` no more than it was before join errors carried
    /// task ids: the id lives in the handle, not in the cell (see
    /// `Failure`). The public `JoinError` may be bigger; the cell never
    /// holds one.
    #[test]
    fn the_failure_a_cell_stores_stays_one_pointer() {
        use std::mem::size_of;
        assert_eq!(size_of::<Failure>(), 8);
        // What it would be with the id inside (see `Failure`'s docs).
        assert_eq!(size_of::<Result<(), crate::task::JoinError>>(), 24);
        assert_eq!(size_of::<Result<(), Failure>>(), 16);
        assert_eq!(size_of::<Result<u64, Failure>>(), 16);
        assert_eq!(
            size_of::<Stage<std::future::Ready<()>>>(),
            16,
            "a finished unit task's stage grew"
        );
    }
}
