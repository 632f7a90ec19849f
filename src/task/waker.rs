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
//! 1. **Same thread** (the common case: a channel between two tasks, a
//!    timer). The thread-local runtime context is ours, so the id goes
//!    straight to the executor: no lock, no syscall, no atomic.
//! 2. **Another thread** (a blocking-pool job finishing, a user thread). The
//!    waker puts itself into [`Remote::queue`], a `Mutex<Vec<_>>`, and if
//!    that queue was empty the loop is woken out of `mio::Poll` through a
//!    `mio::Waker` (one `eventfd` write). The loop drains the queue every
//!    turn.
//!
//! A socket's own task does not even take road 1: the reactor keeps the
//! task's id instead of its waker and hands it to the executor directly
//! (see [`crate::reactor`]'s `Waiter`).
//!
//! # Queued at most once
//!
//! Whichever road a wake takes, it ends in `Executor::schedule`, which
//! keeps a `scheduled` flag in the task's slab slot: set by the first wake,
//! cleared just before the task is polled. Later wakes see it set and do
//! nothing, so a task woken a thousand times between two polls is queued
//! once, and polled once. The flag is a plain `Cell`, because only the
//! loop's thread touches it.
//!
//! Road 2 has a flag of its own, [`TaskWaker::remote_queued`], so that a
//! thread waking a task many times before the loop looks puts it in the
//! remote queue once. That one is atomic, and its two operations are the
//! place where the memory model matters: see [`Remote::drain_into`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Wake;

use super::id::TaskId;
use crate::runtime::context;
use crate::runtime::handle::{Injected, Injector};

/// The part of a runtime that other threads may touch.
#[derive(Debug)]
pub(crate) struct Remote {
    /// Distinguishes this runtime from any other on any thread, so a waker
    /// knows whether the runtime current on this thread is its own.
    pub(crate) runtime_id: u64,
    /// Wakers called from other threads, waiting for the loop to pick them
    /// up. Weak, because a waker holds this `Remote`: a strong reference
    /// here would be a cycle, leaked if the runtime is dropped with wakes
    /// still queued. A waker dropped before the loop looks belonged to a
    /// task nobody can wake any more, and is skipped.
    queue: Mutex<Vec<Weak<TaskWaker>>>,
    /// Set after a push, so that the loop, which drains every turn, can
    /// skip taking the lock when nothing arrived (a lock per turn is a
    /// measurable cost when a turn polls one task, as in a ping-pong).
    pending: AtomicBool,
    /// Futures spawned from other threads through a
    /// [`Handle`](crate::runtime::Handle), waiting for the loop to take
    /// them in: the same road as a wake, with a future instead of an id
    /// (see `runtime::handle`). Its own lock, so that a busy wake road and
    /// a spawn do not wait for each other.
    injector: Mutex<Injector>,
    /// Interrupts `mio::Poll::poll` when the first remote wake or spawn
    /// arrives.
    waker: mio::Waker,
}

impl Remote {
    pub(crate) fn new(runtime_id: u64, waker: mio::Waker) -> Remote {
        Remote {
            runtime_id,
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            injector: Mutex::new(Injector::default()),
            waker,
        }
    }

    /// Queues a future spawned from any thread and makes sure the loop will
    /// see it, as [`push`](Self::push) does a wake. Gives it back if the
    /// runtime has been dropped ([`close_injector`](Self::close_injector)).
    pub(crate) fn inject(&self, future: Injected) -> Result<(), Injected> {
        let first = {
            let mut injector = self.injector.lock().unwrap_or_else(|e| e.into_inner());
            if injector.closed {
                return Err(future);
            }
            injector.queue.push(future);
            injector.queue.len() == 1
        };
        self.pending.store(true, Ordering::Release);
        if first {
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Takes every future injected so far (called by the loop after
    /// [`drain_into`](Self::drain_into), which cleared `pending` first: a
    /// spawn pushed after that clear is taken now or leaves `pending` set).
    pub(crate) fn take_injected(&self) -> Vec<Injected> {
        let mut injector = self.injector.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut injector.queue)
    }

    /// Refuses every later spawn and returns the futures still queued, for
    /// the runtime's drop to drop.
    pub(crate) fn close_injector(&self) -> Vec<Injected> {
        let mut injector = self.injector.lock().unwrap_or_else(|e| e.into_inner());
        injector.closed = true;
        std::mem::take(&mut injector.queue)
    }

    /// Queues `waker` from any thread and makes sure the loop will see it.
    ///
    /// Never inlined: it is the rare road from the loop's point of view,
    /// and inlined into `wake_by_ref` its lock made every local wake save
    /// and restore registers it did not use.
    #[inline(never)]
    fn push(&self, waker: &Arc<TaskWaker>) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(Arc::downgrade(waker));
            queue.len() == 1
        };
        self.pending.store(true, Ordering::Release);
        // Only the push that makes the queue non-empty pays for a syscall;
        // the loop empties the queue before it next sleeps.
        if first {
            // This `Remote` owns the eventfd, so after the runtime is
            // dropped the write still succeeds, and wakes nobody: fine. (mio
            // handles a full counter itself; any error left would mean no
            // loop can be woken, and a waker has nobody to report it to.)
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

    /// Moves the ids of every remotely woken task into `into` (called by
    /// the loop, after [`has_pending`](Self::has_pending) said yes).
    ///
    /// A push stores `pending` *after* its waker is in the queue, and this
    /// clears `pending` *before* it locks: a waker pushed in between is
    /// either drained now or leaves `pending` set for the next turn. None is
    /// lost.
    ///
    /// Each drained waker's `remote_queued` flag is cleared with a `swap`,
    /// before its task is queued and so before its next poll. A thread that
    /// publishes something (a message in a channel slot) and then wakes
    /// either finds the flag clear and queues the waker again, or finds it
    /// set by a push not drained yet. In the second case its own `swap`
    /// comes before ours in the flag's single order of changes, so ours,
    /// being a read-modify-write with `AcqRel`, reads the value that thread
    /// wrote and synchronizes with it: the poll that follows sees the
    /// message. A plain store here would not synchronize with anything, and
    /// the poll could miss the message while the wake was skipped: a lost
    /// wake (tests/reliability.rs has a stress test of exactly this race,
    /// and tests/remote_wake_model.rs a loom model of it, which finds the
    /// lost wake with the store and none with the swap).
    pub(crate) fn drain_into(&self, into: &mut Vec<TaskId>) {
        self.pending.store(false, Ordering::Release);
        // Drained in place, under the lock: the queue keeps its capacity,
        // so a busy remote road does not allocate per turn.
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        for waker in queue.drain(..) {
            if let Some(waker) = waker.upgrade() {
                waker.remote_queued.swap(false, Ordering::AcqRel);
                into.push(waker.id());
            }
        }
    }
}

/// The waker of one task (or of the `block_on` future): which task to
/// queue, and how to reach the loop from another thread.
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
    remote: Arc<Remote>,
    /// The slab-key half of the id.
    key: u32,
    /// Set while this waker sits in [`Remote::queue`]; see the module docs.
    remote_queued: AtomicBool,
}

impl TaskWaker {
    /// The waker of task `id`.
    pub(crate) fn new(id: TaskId, remote: Arc<Remote>) -> TaskWaker {
        TaskWaker {
            generation: id.generation,
            remote,
            // `u32::MAX` is the mark for `MAIN_KEY`, so a slab key may go
            // up to one below it.
            key: if id.key == TaskId::MAIN_KEY {
                u32::MAX
            } else {
                u32::try_from(id.key)
                    .ok()
                    .filter(|&key| key != u32::MAX)
                    .expect("coop: more than 4 billion live tasks")
            },
            remote_queued: AtomicBool::new(false),
        }
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
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if context::schedule_local(self.remote.runtime_id, self.id()) {
            return; // road 1: the executor queued it (or it was queued)
        }
        if !self.remote_queued.swap(true, Ordering::AcqRel) {
            self.remote.push(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> (mio::Poll, Arc<Remote>) {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        (poll, Arc::new(Remote::new(1, waker)))
    }

    /// A waker names its task by a 32-bit key, and `u32::MAX` stands for
    /// the `block_on` future's `MAIN_KEY`: every key below round-trips.
    #[test]
    fn a_waker_names_its_own_task() {
        let (_poll, remote) = remote();
        for key in [0, 1, 12_345, u32::MAX as usize - 1, TaskId::MAIN_KEY] {
            let id = TaskId { key, generation: 7 };
            assert_eq!(TaskWaker::new(id, remote.clone()).id(), id);
        }
    }

    /// The slab key `u32::MAX` cannot be stored: it is the `MAIN_KEY`
    /// mark, and such a task's wakes would go to the `block_on` future (and
    /// be dropped as stale). Refused like any larger key. (Found in review,
    /// session 31: it was taken silently.)
    #[test]
    #[should_panic(expected = "more than 4 billion live tasks")]
    fn a_slab_key_that_would_read_as_main_is_refused() {
        let (_poll, remote) = remote();
        let id = TaskId {
            key: u32::MAX as usize,
            generation: 7,
        };
        let waker = TaskWaker::new(id, remote);
        // Only reached with the bug: show what it did.
        panic!("the key came back as {:?}", waker.id());
    }
}
