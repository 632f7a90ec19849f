//! The executor: the task slab and the run queue.
//!
//! Ground rules:
//!
//! 1. Every live task has one slot in [`Executor::tasks`]; the slot is freed
//!    the moment the task finishes, panics or is cancelled.
//! 2. The run queue holds [`TaskId`]s, never tasks. An id whose generation no
//!    longer matches its slot is stale (its task is gone) and is skipped.
//! 3. An id is in the queue at most once, because only the wake that flips the
//!    waker's `scheduled` flag pushes it (see [`crate::task`]'s waker docs).
//! 4. No `RefCell` borrow is held while user code runs: a task's poll may
//!    spawn, wake or drop other tasks, which needs these cells again.
//! 5. A panic in a task's poll or destructor is caught here and handed to the
//!    task's join handle; it never unwinds into the loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use slab::Slab;

use crate::task::JoinError;
use crate::task::JoinHandle;
use crate::task::cell::{Task, TaskCell};
use crate::task::id::TaskId;
use crate::task::waker::{Remote, TaskWaker};

/// One occupied slot of the task slab.
struct Slot {
    /// Must equal the generation of an id for that id to reach this task.
    generation: u64,
    /// The task, shared with its join handle.
    task: Rc<dyn Task>,
}

/// Owns every task of one runtime and decides which runs next.
pub(crate) struct Executor {
    /// All live tasks, by slab key. The key is half of a [`TaskId`].
    tasks: RefCell<Slab<Slot>>,
    /// Tasks woken and waiting for a poll, oldest first (FIFO keeps the
    /// loop fair: a task woken now runs after those woken before it).
    run_queue: RefCell<VecDeque<TaskId>>,
    /// The next generation to hand out; only grows.
    next_generation: Cell<u64>,
    /// Where other threads leave their wakes.
    pub(crate) remote: Arc<Remote>,
    /// Reused buffer for draining `remote` without allocating each turn.
    remote_buf: RefCell<Vec<TaskId>>,
    /// Counters a program can read through `Runtime::metrics`.
    pub(crate) stats: Stats,
}

/// Plain counters, bumped on the hot path (no atomics: one thread).
#[derive(Default, Debug)]
pub(crate) struct Stats {
    /// Tasks ever spawned.
    pub(crate) spawned: Cell<u64>,
    /// Task polls (not counting the `block_on` future).
    pub(crate) polls: Cell<u64>,
}

impl Executor {
    pub(crate) fn new(remote: Arc<Remote>) -> Executor {
        Executor {
            tasks: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            next_generation: Cell::new(1),
            remote,
            remote_buf: RefCell::new(Vec::new()),
            stats: Stats::default(),
        }
    }

    /// A fresh id for a `block_on` future (see `TaskId::MAIN_KEY`).
    pub(crate) fn main_id(&self) -> TaskId {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        TaskId {
            key: TaskId::MAIN_KEY,
            generation,
        }
    }

    /// Puts `future` in a new slot, queues it, and returns its handle.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        let cell = {
            let mut tasks = self.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            let id = TaskId {
                key: entry.key(),
                generation,
            };
            let waker = Arc::new(TaskWaker::new_scheduled(id, self.remote.clone()));
            let cell = Rc::new(TaskCell::new(future, waker));
            entry.insert(Slot {
                generation,
                task: cell.clone(),
            });
            self.run_queue.borrow_mut().push_back(id);
            cell
        };
        self.stats.spawned.set(self.stats.spawned.get() + 1);
        JoinHandle::new(cell)
    }

    /// Queues a woken task (called by its waker, on the loop's thread).
    pub(crate) fn schedule(&self, id: TaskId) {
        self.run_queue.borrow_mut().push_back(id);
    }

    /// How many ids are queued right now: the loop polls this many and no
    /// more in one turn, so tasks woken during the turn wait for the next.
    pub(crate) fn queued(&self) -> usize {
        self.run_queue.borrow().len()
    }

    /// The next queued id.
    pub(crate) fn pop(&self) -> Option<TaskId> {
        self.run_queue.borrow_mut().pop_front()
    }

    /// The number of live tasks.
    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Polls the task named by `id` once, if it still exists.
    pub(crate) fn run(&self, id: TaskId) {
        let task = match self.tasks.borrow().get(id.key) {
            Some(slot) if slot.generation == id.generation => slot.task.clone(),
            _ => return, // a stale wake: that task is gone
        };
        self.stats.polls.set(self.stats.polls.get() + 1);
        let finished = match catch_unwind(AssertUnwindSafe(|| task.run())) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) => true,
            Err(payload) => {
                log::debug!("task {id:?} panicked; the panic goes to its JoinHandle");
                drop_quietly(|| task.fail(JoinError::panic(payload)));
                true
            }
        };
        if finished {
            let slot = self.tasks.borrow_mut().remove(id.key);
            drop(task);
            // If nobody holds the JoinHandle, this drops the output too.
            drop_quietly(move || drop(slot));
        }
    }

    /// Moves wakes that arrived from other threads onto the run queue.
    pub(crate) fn drain_remote(&self) {
        let mut buf = self.remote_buf.borrow_mut();
        self.remote.drain_into(&mut buf);
        if !buf.is_empty() {
            self.run_queue.borrow_mut().extend(buf.drain(..));
        }
    }

    /// Cancels every task, dropping its future (and everything it owns:
    /// sockets, buffers, timers). Destructors may spawn again, so repeat
    /// until the slab stays empty.
    pub(crate) fn shutdown(&self) {
        loop {
            let slots: Vec<Slot> = self.tasks.borrow_mut().drain().collect();
            if slots.is_empty() {
                break;
            }
            for slot in slots {
                drop_quietly(|| slot.task.fail(JoinError::cancelled()));
                drop_quietly(move || drop(slot));
            }
        }
        self.run_queue.borrow_mut().clear();
    }
}

/// Runs `f` (a drop, usually), swallowing a panic: a destructor that panics
/// must not take the loop down with it.
fn drop_quietly(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::warn!("a task's destructor panicked; the loop carries on");
    }
}
