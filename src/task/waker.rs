//! Wakers: how a task asks to be polled again.
//!
//! A [`std::task::Waker`] is a handle that a future stores when it returns
//! `Poll::Pending`; whoever later makes progress possible (the reactor when a
//! socket becomes readable, a channel when a message arrives, a timer) calls
//! `wake()` on it, and the task goes back on the run queue.
//!
//! # `RawWaker`, and why we do not need it
//!
//! Underneath, a `Waker` is a `RawWaker`: a data pointer plus a table of four
//! functions (`clone`, `wake`, `wake_by_ref`, `drop`). Runtimes such as tokio
//! build that table by hand so that a waker is a pointer to the task itself,
//! which takes `unsafe` code and careful reference counting. The standard
//! library also offers the [`std::task::Wake`] trait: implement it for a type,
//! put the value in an `Arc`, and `Waker::from(arc)` builds the vtable for you,
//! with the `Arc`'s count as the reference count. `coop` forbids `unsafe`, so
//! every waker here is an `Arc<TaskWaker>`.
//!
//! # Two roads to the run queue
//!
//! A `Waker` must be `Send + Sync`: any thread may call it. But our run queue
//! lives on the loop's thread and is not thread-safe (it needs no lock there).
//! So `wake` takes one of two roads:
//!
//! 1. **Same thread** (the common case: a socket event, a channel between two
//!    tasks). The thread-local runtime context is ours, so the id is pushed
//!    straight onto the local run queue: no lock, no syscall.
//! 2. **Another thread** (a blocking-pool job finishing, a user thread). The
//!    id goes into [`Remote::queue`], a `Mutex<Vec<_>>`, and if that queue
//!    was empty the loop is woken out of `mio::Poll` through a `mio::Waker`
//!    (one `eventfd` write). The loop drains the queue every turn.
//!
//! # Queued at most once
//!
//! [`TaskWaker::scheduled`] is set by the first wake and cleared just before
//! the task is polled. Later wakes see it set and do nothing, so a task woken a
//! thousand times between two polls is queued once, and polled once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use super::id::TaskId;
use crate::runtime::context;

/// The part of a runtime that other threads may touch.
#[derive(Debug)]
pub(crate) struct Remote {
    /// Distinguishes this runtime from any other on any thread, so a waker
    /// knows whether the runtime current on this thread is its own.
    pub(crate) runtime_id: u64,
    /// Ids woken from other threads, waiting for the loop to pick them up.
    queue: Mutex<Vec<TaskId>>,
    /// Set after a push, so that the loop, which drains every turn, can
    /// skip taking the lock when nothing arrived (a lock per turn is a
    /// measurable cost when a turn polls one task, as in a ping-pong).
    pending: AtomicBool,
    /// Interrupts `mio::Poll::poll` when the first remote wake arrives.
    waker: mio::Waker,
}

impl Remote {
    pub(crate) fn new(runtime_id: u64, waker: mio::Waker) -> Remote {
        Remote {
            runtime_id,
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker,
        }
    }

    /// Queues `id` from any thread and makes sure the loop will see it.
    ///
    /// Never inlined: it is the rare road from the loop's point of view,
    /// and inlined into `wake_by_ref` its lock made every local wake save
    /// and restore registers it did not use.
    #[inline(never)]
    pub(crate) fn push(&self, id: TaskId) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(id);
            queue.len() == 1
        };
        self.pending.store(true, Ordering::Release);
        // Only the push that makes the queue non-empty pays for a syscall;
        // the loop empties the queue before it next sleeps.
        if first {
            // An error here means the poll instance is gone (the runtime was
            // dropped): nobody is left to wake, which is fine.
            let _ = self.waker.wake();
        }
    }

    /// Whether a wake may have arrived since the last drain. The loop calls
    /// this every turn, and [`drain_into`](Self::drain_into) only when it
    /// says yes: the usual turn costs one atomic load, no lock, no borrow.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Moves every remotely woken id into `into` (called by the loop, after
    /// [`has_pending`](Self::has_pending) said yes).
    ///
    /// A push stores `pending` *after* its id is in the queue, and this
    /// clears `pending` *before* it locks: an id pushed in between is either
    /// drained now or leaves `pending` set for the next turn. None is lost.
    pub(crate) fn drain_into(&self, into: &mut Vec<TaskId>) {
        self.pending.store(false, Ordering::Release);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut queue);
    }
}

/// The waker of one task (or of the `block_on` future).
///
/// One of these is allocated per task, so its size is memory per
/// connection in a server: the task id is stored as two loose fields (a
/// 32-bit key beside the flag) so that the whole `Arc` is 40 bytes, one
/// malloc size class below what a nested `TaskId` would cost.
#[derive(Debug)]
pub(crate) struct TaskWaker {
    /// Which task to queue: the generation half of its id.
    generation: u64,
    /// Where wakes from other threads go.
    pub(crate) remote: Arc<Remote>,
    /// The slab-key half of the id.
    key: u32,
    /// Set while the task sits in a run queue; see the module docs.
    pub(crate) scheduled: AtomicBool,
    /// Set by `JoinHandle::abort`: the executor cancels the task instead of
    /// polling it. It lives here, not in the task cell, because every poll
    /// reads this struct anyway (to clear `scheduled`), and it fits in the
    /// padding after `scheduled`. Only the loop's thread touches it (a
    /// `JoinHandle` is not `Send`), so `Relaxed` is enough.
    aborted: AtomicBool,
}

impl TaskWaker {
    /// A waker for a task that starts out queued (as a new task does).
    pub(crate) fn new_scheduled(id: TaskId, remote: Arc<Remote>) -> TaskWaker {
        TaskWaker {
            generation: id.generation,
            remote,
            key: if id.key == TaskId::MAIN_KEY {
                u32::MAX
            } else {
                u32::try_from(id.key).expect("coop: more than 4 billion live tasks")
            },
            scheduled: AtomicBool::new(true),
            aborted: AtomicBool::new(false),
        }
    }

    /// Asks the executor to cancel this task at its next turn.
    pub(crate) fn request_abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// Whether [`request_abort`](Self::request_abort) was called.
    #[inline]
    pub(crate) fn abort_requested(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// The task this waker queues.
    pub(crate) fn id(&self) -> TaskId {
        TaskId {
            key: if self.key == u32::MAX {
                TaskId::MAIN_KEY
            } else {
                self.key as usize
            },
            generation: self.generation,
        }
    }

    /// Called by the executor just before polling: wakes from now on queue
    /// the task again.
    ///
    /// A read-modify-write (`swap`), not a plain store: with a `Release`
    /// store, the poll's reads of shared state (a channel slot, say) could
    /// be ordered before the flag is seen cleared. A thread could then
    /// publish a message, still see the flag set, skip the queue, and the
    /// poll would miss the message: a lost wake. `AcqRel` on both sides
    /// makes "flag cleared, then state read" and "state written, then flag
    /// swapped" meet in one total order on the flag. (tokio uses a
    /// `compare_exchange` at the same point for the same reason.)
    pub(crate) fn clear_scheduled(&self) {
        self.scheduled.swap(false, Ordering::AcqRel);
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return; // already queued
        }
        let id = self.id();
        if !context::schedule_local(self.remote.runtime_id, id) {
            self.remote.push(id);
        }
    }
}
