//! The executor: the task slab and the run queue.
//!
//! Ground rules:
//!
//! 1. Every live task has one slot in [`Executor::tasks`]; the slot is freed
//!    the moment the task finishes, panics or is cancelled.
//! 2. The run queue holds [`TaskId`]s, never tasks. An id whose generation no
//!    longer matches its slot is stale (its task is gone) and is skipped.
//!    A task's wake of itself is held until its poll ends, and queued only
//!    if the task is still pending (see [`Executor::woke_itself`]).
//! 3. An id is in the queue at most once, because only the wake that flips
//!    its slot's `scheduled` flag pushes it (see [`crate::task`]'s waker
//!    docs). Every wake, whatever road it took, passes through
//!    [`Executor::schedule`], which checks that flag.
//! 4. No `RefCell` borrow is held while user code runs: a task's poll may
//!    spawn, wake or drop other tasks, which needs these cells again.
//! 5. A panic in a task's poll or destructor never unwinds into the loop.
//!    One in a poll, or in the drop of a future that just returned its
//!    output, is caught here and handed to the task's join handle. One in
//!    a destructor run by a cancellation (an abort, or the runtime's drop)
//!    is caught and logged, and the handle still says cancelled.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::reactor::{Reactor, Running};
use crate::runtime::WakeCounts;
use crate::task::JoinHandle;
use crate::task::cell::{Describe, Ran, Task, TaskCell, TaskMeta};
use crate::task::id::TaskId;
use crate::task::join::Failure;
use crate::task::waker::{Remote, TaskWaker};
use crate::trace::{Event, Recorder, WakeReason};

/// One occupied slot of the task slab.
struct Slot {
    /// The generation of the task in this slot. An id reaches the task
    /// only if its generation equals this one. Kept here, beside the
    /// pointer, so that checking a wake costs no visit to the task's own
    /// memory (at 10,000 connections, that would be a cache miss for a
    /// stale id, and one more dependent load before every poll).
    generation: u64,
    /// Set while the task's id sits in the run queue: the task's
    /// SCHEDULED state. Here, beside the generation, because every wake
    /// checks both; a plain `Cell`, because only the loop's thread wakes
    /// through the executor (other threads go through `Remote`).
    scheduled: Cell<bool>,
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
    /// The `block_on` future's generation (0 when none is running) and
    /// its `scheduled` flag: it has no slot, so they live here.
    main: Cell<(u64, bool)>,
    /// Told which task is being polled (see [`Running`]), so that its
    /// sockets can keep its id instead of a clone of its waker.
    reactor: Rc<Reactor>,
    /// Where other threads leave their wakes.
    pub(crate) remote: Arc<Remote>,
    /// Reused buffer for draining `remote` without allocating each turn.
    remote_buf: RefCell<Vec<TaskId>>,
    /// Counters a program can read through `Runtime::metrics`.
    pub(crate) stats: Stats,
    /// What is waking tasks right now: set by the loop around each phase
    /// (a task's poll, firing timers, dispatching an I/O event), read by
    /// [`schedule`](Self::schedule) to label the wake.
    cause: Cell<WakeReason>,
    /// Warn about polls longer than this (asyncio's debug-mode check).
    slow_poll: Option<Duration>,
    /// The timeline recorder, when tracing is on.
    pub(crate) trace: Option<Rc<Recorder>>,
    /// The tasks that woke themselves (`yield_now`) since the loop last
    /// looked for I/O, held back until it has (tokio's `defer` list). A
    /// yield asks the loop to look at the network before the task runs
    /// again, whatever the event interval says; then the task joins the
    /// run queue *behind* every task that the due timers and that look
    /// woke: a CPU-heavy task that yields between slices goes after the
    /// tasks it kept waiting, not ahead of them.
    deferred: RefCell<Vec<TaskId>>,
    /// Set when the task being polled wakes itself. Whether that is a
    /// yield depends on how the poll ends, so the wake waits here until
    /// then (see [`after_poll`](Self::after_poll)): a task that wakes
    /// itself and then returns (dropping the sender its own receiver
    /// waits on, say), or whose cancelled future wakes it as it drops,
    /// has no "again" to give the network a look before.
    woke_itself: Cell<bool>,
    /// Set by the task being polled when that poll was no poll of its
    /// future: a remote task's wrapper (`runtime::handle`) that found,
    /// before polling the future it wraps, that it had been aborted. It
    /// then finishes as cancelled, and that turn is counted as a local
    /// task's cancellation is (`Ran::NotPolled`): no poll in
    /// `Stats::polls`, none in the trace, no slow-poll check. Read only
    /// when a task finishes (in [`retire`](Self::retire)) and on the timed
    /// path, so the usual poll does not pay for it.
    not_a_poll: Cell<bool>,
}

/// Plain counters, bumped on the hot path (no atomics: one thread).
#[derive(Default, Debug)]
pub(crate) struct Stats {
    /// Tasks ever spawned.
    pub(crate) spawned: Cell<u64>,
    /// Task polls (not counting the `block_on` future, nor the turn that
    /// cancels an aborted task: see `Ran::NotPolled` and
    /// [`Executor::not_a_poll`]).
    pub(crate) polls: Cell<u64>,
    /// Polls that took longer than the slow-poll threshold.
    pub(crate) slow_polls: Cell<u64>,
    /// Wakes by reason.
    pub(crate) wakes: WakeTally,
}

/// Wakes counted by reason: one plain counter per kind of [`WakeReason`].
/// Every wake bumps one, so it is a `Cell` per counter rather than a
/// `RefCell<WakeCounts>`, whose borrow flag would be checked, set and
/// cleared around each `+= 1`.
#[derive(Default, Debug)]
pub(crate) struct WakeTally([Cell<u64>; WakeReason::KINDS]);

impl WakeTally {
    /// Counts one wake.
    #[inline]
    fn add(&self, reason: WakeReason) {
        let count = &self.0[reason.kind()];
        count.set(count.get() + 1);
    }

    /// The counts so far, for `Runtime::metrics`.
    pub(crate) fn counts(&self) -> WakeCounts {
        let [spawn, io, timer, task, yields, remote, other] = self.0.each_ref().map(Cell::get);
        WakeCounts {
            spawn,
            io,
            timer,
            task,
            yields,
            remote,
            other,
        }
    }
}

impl Executor {
    pub(crate) fn new(
        remote: Arc<Remote>,
        reactor: Rc<Reactor>,
        slow_poll: Option<Duration>,
        trace: Option<Rc<Recorder>>,
    ) -> Executor {
        Executor {
            tasks: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            next_generation: Cell::new(1),
            main: Cell::new((0, false)),
            reactor,
            remote,
            remote_buf: RefCell::new(Vec::new()),
            stats: Stats::default(),
            cause: Cell::new(WakeReason::Other),
            slow_poll,
            trace,
            deferred: RefCell::new(Vec::new()),
            woke_itself: Cell::new(false),
            not_a_poll: Cell::new(false),
        }
    }

    /// Whether a task yielded since the loop last looked for I/O. If so,
    /// the loop looks now and then calls
    /// [`release_deferred`](Self::release_deferred).
    pub(crate) fn yielded(&self) -> bool {
        !self.deferred.borrow().is_empty()
    }

    /// Says that the poll under way is no poll (see [`Executor::not_a_poll`]).
    /// The task that calls this must finish in this poll.
    pub(crate) fn poll_was_none(&self) {
        self.not_a_poll.set(true);
    }

    /// Queues the tasks that yielded, behind everything queued so far.
    /// Called by the loop after it has fired the due timers and looked
    /// for I/O (and taken in remote wakes), whenever a task yielded.
    pub(crate) fn release_deferred(&self) {
        let mut deferred = self.deferred.borrow_mut();
        self.run_queue.borrow_mut().extend(deferred.drain(..));
    }

    /// Labels the wakes that follow (see [`Executor::cause`]).
    pub(crate) fn set_cause(&self, cause: WakeReason) {
        self.cause.set(cause);
    }

    /// A fresh id for a `block_on` future (see `TaskId::MAIN_KEY`), which
    /// from now on is the one wakes of the main key reach.
    pub(crate) fn begin_main(&self) -> TaskId {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        self.main.set((generation, false));
        TaskId {
            key: TaskId::MAIN_KEY,
            generation,
        }
    }

    /// The `block_on` future returned, or panicked: wakes of its id are
    /// stale from now. On a panic, `run_main` did not get to say that the
    /// future is no longer running, so this says it (the reactor must not
    /// keep the identity of a waker about to be freed; see [`Running`]).
    /// The trace, which drew it as a task, sees it finish. Called by
    /// [`run_main`](Self::run_main) when the future returns, before it is
    /// dropped, and again at the end of `block_on` however it ends: a
    /// second call changes nothing.
    pub(crate) fn end_main(&self) {
        let (generation, _) = self.main.get();
        if generation != 0 {
            self.record_finish(generation);
        }
        self.main.set((0, false));
        self.reactor.set_running(None);
        // A poll that panicked out of `block_on` never reached `after_poll`,
        // nor reset the cause it set (see `observed_poll`).
        self.woke_itself.set(false);
        self.cause.set(WakeReason::Other);
    }

    /// Polls the `block_on` future (task `id`, whose waker is `waker`)
    /// once, with `poll`; if that finishes it, ends it (`end_main`).
    pub(crate) fn run_main<T>(
        &self,
        id: TaskId,
        waker: &Waker,
        poll: impl FnOnce() -> Poll<T>,
    ) -> Poll<T> {
        self.main.set((id.generation, false));
        self.reactor.set_running(Some(Running::new(id, waker)));
        let result = self.observed_poll(id.generation, None, poll, |_| true);
        self.reactor.set_running(None);
        self.after_poll(id, result.is_pending());
        if result.is_ready() {
            // The future is dropped after this returns, on `block_on`'s way
            // out: a wake of it from its destructor must find its id stale,
            // not queue it.
            self.end_main();
        }
        result
    }

    /// Puts `future` in a new slot, queues it, and returns its number (its
    /// id's generation, which traces call the task by) and its handle.
    pub(crate) fn spawn<F>(
        &self,
        future: F,
        name: Option<String>,
        location: &'static Location<'static>,
    ) -> (u64, JoinHandle<F::Output>)
    where
        F: Future + 'static,
    {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        if let Some(trace) = &self.trace {
            trace.spawn(generation, name.as_deref(), location);
        }
        let meta = TaskMeta {
            name: name.map(Box::new),
            location,
        };
        let (id, cell) = {
            let mut tasks = self.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            let id = TaskId {
                key: entry.key(),
                generation,
            };
            let waker = Arc::new(TaskWaker::new(id, self.remote.clone()));
            let cell = Rc::new(TaskCell::new(future, Waker::from(waker), meta));
            entry.insert(Slot {
                generation,
                scheduled: Cell::new(true),
                task: cell.clone(),
            });
            (id, cell)
        };
        self.push(id, WakeReason::Spawn);
        self.stats.spawned.set(self.stats.spawned.get() + 1);
        (
            generation,
            JoinHandle::new(cell, crate::task::Id::new(generation)),
        )
    }

    /// Queues a woken task, unless it is queued already or gone, labelling
    /// the wake with the current cause. Called on the loop's thread by the
    /// task's waker, or by the reactor directly (a socket's own task).
    ///
    /// A task that wakes itself is not queued yet: that waits until its
    /// poll ends (see [`Executor::woke_itself`]).
    #[inline]
    pub(crate) fn schedule(&self, id: TaskId) {
        let cause = self.cause.get();
        if matches!(cause, WakeReason::Task { by } if by == id.generation) {
            self.woke_itself.set(true);
            return;
        }
        if self.mark_scheduled(id) {
            self.push(id, cause);
        }
    }

    /// Ends a poll of task `id` for the wake it gave itself, if any: a
    /// task still `pending` yielded, and waits in `deferred` until the loop
    /// has looked for I/O; a task that finished (or was cancelled, or
    /// panicked) did not, and the wake is dropped.
    #[inline]
    fn after_poll(&self, id: TaskId, pending: bool) {
        if self.woke_itself.get() {
            self.requeue_yielded(id, pending);
        }
    }

    /// The rare half of [`after_poll`](Self::after_poll).
    #[cold]
    #[inline(never)]
    fn requeue_yielded(&self, id: TaskId, pending: bool) {
        self.woke_itself.set(false);
        if pending && self.mark_scheduled(id) {
            // Counted and traced as `push` does, but held back.
            self.stats.wakes.add(WakeReason::Yield);
            if let Some(trace) = &self.trace {
                record_wake(trace, id, WakeReason::Yield);
            }
            self.deferred.borrow_mut().push(id);
        }
    }

    /// Sets task `id`'s `scheduled` flag. Returns whether it was clear
    /// (the caller queues the id then), or false if it was set already or
    /// the task is gone.
    #[inline]
    fn mark_scheduled(&self, id: TaskId) -> bool {
        if id.key == TaskId::MAIN_KEY {
            let (generation, scheduled) = self.main.get();
            if generation != id.generation || scheduled {
                return false;
            }
            self.main.set((generation, true));
            return true;
        }
        match self.tasks.borrow().get(id.key) {
            Some(slot) if slot.generation == id.generation => !slot.scheduled.replace(true),
            _ => false, // a stale wake: that task is gone
        }
    }

    /// Queues `id`, counting (and, when tracing, recording) the wake.
    ///
    /// Every wake passes here, so the tracing branch lives in a cold
    /// function of its own: inline, its clock read and record call made
    /// this function save and restore six registers on every wake, for a
    /// case that is off in production. Split off, `push` is a handful of
    /// instructions and inlines into `schedule`. (With the same split in
    /// `observed_poll` and `Remote::push`, the echo server went from 728
    /// to 710 instructions per echo under callgrind, 1,000 connections.)
    #[inline]
    fn push(&self, id: TaskId, reason: WakeReason) {
        self.stats.wakes.add(reason);
        if let Some(trace) = &self.trace {
            record_wake(trace, id, reason);
        }
        self.run_queue.borrow_mut().push_back(id);
    }

    /// Runs one poll of task number `task` (`who`, or the `block_on`
    /// future if `None`): labels the wakes it causes, and times it if
    /// slow-poll warnings or tracing are on. `who` is asked for its name
    /// only when a slow poll is reported (that is a virtual call, which the
    /// usual poll need not pay). `was_poll` tells a poll from a
    /// cancellation (an aborted task is dropped, not polled), which is
    /// neither traced nor reported as slow; only the timed path asks.
    pub(crate) fn observed_poll<R>(
        &self,
        task: u64,
        who: Option<&dyn Task>,
        poll: impl FnOnce() -> R,
        was_poll: impl FnOnce(&R) -> bool,
    ) -> R {
        self.cause.set(WakeReason::Task { by: task });
        if self.slow_poll.is_none() && self.trace.is_none() {
            let result = poll();
            self.cause.set(WakeReason::Other);
            return result;
        }
        let start = Instant::now();
        // A spawned task's panic is caught inside `poll`, but the `block_on`
        // future's unwinds through here: its poll still happened, held the
        // loop, and belongs in the trace and the slow-poll check before the
        // panic goes on to `block_on`'s caller.
        let result = catch_unwind(AssertUnwindSafe(poll));
        let end = Instant::now();
        match result {
            Ok(result) => {
                self.cause.set(WakeReason::Other);
                if was_poll(&result) {
                    self.after_timed_poll(task, who, start, end);
                }
                result
            }
            Err(payload) => {
                // The cause stays this task's, as on the untimed path (a
                // panic leaves it there): the unwinding drops the future,
                // and a wake of itself from that drop must be held as its
                // own (`woke_itself`, which `end_main` clears), not queued
                // as an `Other` wake of an id about to go stale.
                self.after_timed_poll(task, who, start, end);
                std::panic::resume_unwind(payload)
            }
        }
    }

    /// Records a timed poll and warns if it was slow: the cold half of
    /// [`observed_poll`](Self::observed_poll), out of line so that the
    /// usual untimed poll does not pay for its registers.
    #[cold]
    #[inline(never)]
    fn after_timed_poll(&self, task: u64, who: Option<&dyn Task>, start: Instant, end: Instant) {
        if let Some(trace) = &self.trace {
            trace.record(Event::Poll {
                task,
                start_us: trace.us(start),
                end_us: trace.us(end),
            });
        }
        let took = end - start;
        if self.slow_poll.is_some_and(|limit| took > limit) {
            self.stats.slow_polls.set(self.stats.slow_polls.get() + 1);
            let who = match who {
                Some(who) => Describe(task, who.meta()).to_string(),
                None => "the block_on future".to_owned(),
            };
            log::warn!(
                "slow poll: {who} held the loop for {:.1} ms in one poll; every other task waited. \
                 Move blocking or CPU-heavy work to coop::spawn_blocking, or yield with coop::yield_now().",
                took.as_secs_f64() * 1000.0
            );
        }
    }

    /// How many ids are queued right now: the loop polls this many and no
    /// more in one turn, so tasks woken during the turn wait for the next.
    pub(crate) fn queued(&self) -> usize {
        self.run_queue.borrow().len()
    }

    /// The next queued id. Inlined into the loop, which calls it once per
    /// poll.
    #[inline]
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
            Some(slot) if slot.generation == id.generation => {
                // Wakes from here on queue the task again (its own, made
                // during this poll, once the poll ends: see `after_poll`).
                slot.scheduled.set(false);
                slot.task.clone()
            }
            _ => return, // a stale wake: that task is gone
        };
        self.stats.polls.set(self.stats.polls.get() + 1);
        self.reactor
            .set_running(Some(Running::new(id, task.waker())));
        let polled = self.observed_poll(
            id.generation,
            Some(&*task),
            || catch_unwind(AssertUnwindSafe(|| task.run())),
            |ran| !matches!(ran, Ok(Ran::NotPolled)) && !self.not_a_poll.get(),
        );
        self.reactor.set_running(None);
        self.after_poll(id, matches!(polled, Ok(Ran::Pending)));
        match polled {
            Ok(Ran::Pending) => {}
            Ok(Ran::Finished) => self.retire(id, task, None),
            Ok(Ran::NotPolled) => {
                // Cancelled without a poll: take the count back.
                self.stats.polls.set(self.stats.polls.get() - 1);
                self.retire(id, task, None);
            }
            Err(payload) => self.retire(id, task, Some(payload)),
        }
    }

    /// Frees the slot of a task that finished (or panicked, with
    /// `payload`). Out of line: it runs once per task, and inlined, its
    /// logging and drops made every poll of [`run`](Self::run) set up a
    /// large stack frame.
    #[inline(never)]
    fn retire(
        &self,
        id: TaskId,
        task: Rc<dyn Task>,
        payload: Option<Box<dyn std::any::Any + Send>>,
    ) {
        if self.not_a_poll.replace(false) {
            // The task's last poll was none (see `not_a_poll`): take the
            // count back, as `run` does for `Ran::NotPolled`.
            self.stats.polls.set(self.stats.polls.get() - 1);
        }
        // What this wakes (the join handle's waiter after a panic, or
        // anything a destructor wakes) is this task's doing, as it is when
        // the task returns inside its poll.
        self.cause.set(WakeReason::Task { by: id.generation });
        if let Some(payload) = payload {
            log::debug!(
                "task {} panicked; the panic goes to its JoinHandle",
                id.generation
            );
            drop_quietly(TASK_DROP, || task.fail(Failure::panic(payload)));
        }
        self.record_finish(id.generation);
        let slot = self.tasks.borrow_mut().remove(id.key);
        drop(task);
        // If nobody holds the JoinHandle, this drops the output too.
        drop_quietly(TASK_DROP, move || drop(slot));
        self.cause.set(WakeReason::Other);
        self.woke_itself.set(false); // a destructor's wake of a task now gone
    }

    fn record_finish(&self, task: u64) {
        if let Some(trace) = &self.trace {
            trace.record(Event::Finish {
                task,
                at_us: trace.us(Instant::now()),
            });
        }
    }

    /// Moves wakes that arrived from other threads onto the run queue.
    /// Inlined into the loop, so the usual turn, with none, costs one
    /// atomic load and a branch, not a call.
    #[inline]
    pub(crate) fn drain_remote(&self) {
        if self.remote.has_pending() {
            self.take_remote();
        }
    }

    /// The rare half of [`drain_remote`](Self::drain_remote).
    #[cold]
    #[inline(never)]
    fn take_remote(&self) {
        {
            let mut buf = self.remote_buf.borrow_mut();
            self.remote.drain_into(&mut buf);
            for id in buf.drain(..) {
                if self.mark_scheduled(id) {
                    self.push(id, WakeReason::Remote);
                }
            }
        }
        // Then the futures spawned from other threads (`Handle::spawn`):
        // each becomes a task here, queued behind the wakes.
        for injected in self.remote.take_injected() {
            injected(self);
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
                self.record_finish(slot.generation);
                drop_quietly(TASK_DROP, || slot.task.fail(Failure::Cancelled));
                drop_quietly(TASK_DROP, move || drop(slot));
            }
        }
        self.run_queue.borrow_mut().clear();
        self.deferred.borrow_mut().clear();
    }
}

/// The tracing half of [`Executor::push`], out of line (see there).
#[cold]
#[inline(never)]
fn record_wake(trace: &Recorder, id: TaskId, reason: WakeReason) {
    trace.record(Event::Wake {
        task: id.generation,
        reason,
        at_us: trace.us(Instant::now()),
    });
}

/// Calls `waker`, swallowing a panic, for the loop's wakes outside any
/// task's poll (a due timer's, a socket's foreign waker): a waker runs its
/// owner's code, and a panic there must neither take the loop down nor
/// stop the wakes after it in the same batch.
pub(crate) fn wake_quietly(waker: Waker) {
    drop_quietly("a waker", move || waker.wake());
}

/// How [`drop_quietly`]'s warning names a task's destructor.
pub(crate) const TASK_DROP: &str = "a task's destructor";

/// Runs `f` (a drop, usually), swallowing a panic: a destructor that panics
/// must not take the loop down with it. `what` names it in the warning.
pub(crate) fn drop_quietly(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::warn!("{what} panicked; the loop carries on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tally, `WakeReason::kind` and `WakeReason::name` list the kinds
    /// in one order: a wake of each kind lands in the counter of its name.
    #[test]
    fn each_kind_of_wake_is_counted_under_its_own_name() {
        let reasons = [
            WakeReason::Spawn,
            WakeReason::Io { source: 3 },
            WakeReason::Timer,
            WakeReason::Task { by: 7 },
            WakeReason::Yield,
            WakeReason::Remote,
            WakeReason::Other,
        ];
        assert_eq!(reasons.len(), WakeReason::KINDS);
        for reason in reasons {
            let tally = WakeTally::default();
            tally.add(reason);
            let c = tally.counts();
            let by_name = [
                ("spawn", c.spawn),
                ("io", c.io),
                ("timer", c.timer),
                ("task", c.task),
                ("yield", c.yields),
                ("remote", c.remote),
                ("other", c.other),
            ];
            for (name, count) in by_name {
                let expected = u64::from(name == reason.name());
                assert_eq!(count, expected, "a {reason:?} wake, the {name} counter");
            }
        }
    }
}
