//! The reactor: where the loop waits for I/O.
//!
//! A socket in non-blocking mode answers `WouldBlock` instead of waiting.
//! The reactor is what turns "would block" into "wake me when it won't":
//!
//! 1. Every socket is registered once with [`mio::Poll`] (epoll on Linux,
//!    kqueue on macOS) under a [`mio::Token`] that is its key in
//!    [`Reactor::sources`]. See [`registration`] for the socket's side.
//! 2. A task tries its read; on `WouldBlock` it stores its waker in the
//!    source's slot and returns `Pending`.
//! 3. The loop calls [`Reactor::poll`]. With nothing left to run, it
//!    sleeps in `mio::Poll::poll` until some socket changes state (or the
//!    timeout passes); with tasks queued it only looks, with a zero timeout
//!    (after a yield, or every `EVENT_INTERVAL` polls). Either way it marks
//!    each source that changed ready and wakes the task waiting on it.
//!
//! # Edge-triggered readiness
//!
//! mio registers sources *edge-triggered*: the OS reports a socket when it
//! *becomes* readable, not again while it *stays* readable. So we remember
//! readiness ourselves (`read_ready`, `write_ready`) and clear it only when
//! an operation actually returns `WouldBlock`, or when a stream's short
//! read or write shows the kernel's buffer empty or full (the shortcut of
//! [`IoSource::poll_io_drain`], which a socket that has seen TCP urgent
//! data no longer takes: see `ScheduledIo::urgent`). A task that reads
//! less than everything will find the flag still set and read again
//! without waiting.
//!
//! [`IoSource::poll_io_drain`]: registration::IoSource::poll_io_drain
//! The reverse, a flag set but no data (a *spurious* wake-up), costs one
//! `WouldBlock` and is harmless; mio's docs warn that it happens.
//!
//! *Closed* is different: a peer's FIN is reported once and then stays
//! true, so clearing readiness does not clear `read_closed` or
//! `write_closed`. Without that, a task that read the last bytes and then
//! cleared readiness would wait forever for an EOF event the OS already
//! delivered. Only an operation that actually returns `WouldBlock` proves a
//! direction is open after all (a UDP socket reports an ICMP error as
//! "error", and works again afterwards) and clears it. An *error* event just
//! makes both directions ready: the next operation returns the error.
//!
//! Because this reactor runs on the loop's single thread, readiness can only
//! change between task polls, never during one; a multi-threaded reactor
//! (tokio's) needs a tick counter to guard a race that cannot happen here.
//!
//! # A socket's own task: the short road
//!
//! The waiter on a socket is nearly always the task that owns it, polled
//! with its own waker. Storing that `Waker` costs a clone (an atomic
//! increment) at every wait, and waking it costs a call through its vtable,
//! a look-up of the thread's current runtime, and an atomic decrement when
//! it is dropped: some hundred instructions per event, to end in
//! `Executor::schedule(id)` anyway. So the executor tells the reactor which
//! task it is polling ([`Running`]: the task's id and its waker's identity),
//! and a wait whose waker *is* that task's own stores just the id
//! ([`Waiter::Task`]). The reactor then queues the task itself. Any other
//! waker (a combinator's, another executor's) is stored and called as
//! usual ([`Waiter::Waker`]).

pub(crate) mod registration;

use std::cell::{Cell, RefCell};
use std::io;
use std::task::{RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use slab::Slab;

use crate::runtime::executor::wake_quietly;
use crate::task::id::TaskId;
use registration::Direction;

/// The token under which the cross-thread `mio::Waker` is registered. Slab
/// keys never reach it.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// The I/O half of the loop.
pub(crate) struct Reactor {
    /// This is where I/O is polled: the OS's readiness queue. In a `RefCell`
    /// because `Poll::poll` takes `&mut self`; only the loop calls it.
    poll: RefCell<Poll>,
    /// Buffer the OS fills with ready events; its capacity bounds how many
    /// events one `poll` returns (the builder's `event_capacity`).
    events: RefCell<Events>,
    /// One slot per registered source, keyed by its token.
    sources: RefCell<Slab<ScheduledIo>>,
    /// Readiness events of registered sources so far (for metrics; the
    /// cross-thread waker's events are not counted).
    pub(crate) io_events: Cell<u64>,
    /// The task being polled right now, if any (set by the executor around
    /// each poll): a wait with its waker stores its id instead.
    running: Cell<Option<Running>>,
    /// What is left of the running task's cooperative budget: how many
    /// more socket operations may be tried in this poll before the next
    /// one gives the loop back instead (see [`take_budget`]). Filled to
    /// [`TASK_BUDGET`] whenever a task's poll begins. Here, beside
    /// `running`, because socket operations are what spend it, and each
    /// one reaches the reactor already.
    ///
    /// [`take_budget`]: Self::take_budget
    /// [`TASK_BUDGET`]: crate::runtime::TASK_BUDGET
    budget: Cell<u8>,
    /// An [`unconstrained`](crate::task::unconstrained) future is being
    /// polled: a spent budget holds nothing back. Asked only once the
    /// budget is spent, so it costs the fast road nothing.
    unconstrained: Cell<bool>,
    /// Read the clock when the next wait returns: set by the loop before a
    /// wait it times (the runtime's park timing), so that it can count its
    /// sleep up to that moment, not up to the end of the dispatch that
    /// follows, which runs wakers and is work. A flag, not a closure passed
    /// to `poll`: with timing off it costs the test of a byte.
    time_next_wait: Cell<bool>,
    /// When the last timed wait returned (taken by the loop).
    wait_ended: Cell<Option<Instant>>,
}

/// Which task is being polled, and how to recognise its waker.
///
/// A `Waker` is a data pointer and a table of functions; two wakers with
/// the same of both wake the same thing (that is what
/// [`Waker::will_wake`] compares). Keeping the pair, rather than a clone of
/// the waker, costs no reference count. The pointers are only compared,
/// never followed, and they are valid for as long as `Running` is set: the
/// executor sets it just before the poll, while the task holds its waker,
/// and clears it right after.
#[derive(Clone, Copy)]
pub(crate) struct Running {
    /// The task.
    id: TaskId,
    /// Its waker's data pointer.
    data: *const (),
    /// Its waker's function table.
    vtable: &'static RawWakerVTable,
}

impl Running {
    /// Task `id`, polled with `waker`.
    pub(crate) fn new(id: TaskId, waker: &Waker) -> Running {
        Running {
            id,
            data: waker.data(),
            vtable: waker.vtable(),
        }
    }

    /// The task.
    pub(crate) fn task(&self) -> TaskId {
        self.id
    }

    /// Whether `waker` is the running task's own.
    #[inline]
    fn owns(&self, waker: &Waker) -> bool {
        std::ptr::eq(waker.data(), self.data) && std::ptr::eq(waker.vtable(), self.vtable)
    }
}

/// What the reactor knows about one registered source.
#[derive(Default)]
pub(crate) struct ScheduledIo {
    /// The OS said readable and no read has since returned `WouldBlock`.
    pub(crate) read_ready: bool,
    /// The same for writes.
    pub(crate) write_ready: bool,
    /// The peer closed its side: survives `clear_ready`; only a
    /// `WouldBlock` clears it.
    pub(crate) read_closed: bool,
    /// mio says writing can no longer succeed (its `is_write_closed`: a
    /// hang-up, or `EPOLLERR` with `EPOLLOUT` or alone): the same rule.
    /// An inference, not a promise: after an ICMP error a UDP socket is
    /// "write-closed", and its next send succeeds.
    pub(crate) write_closed: bool,
    /// The peer has sent TCP urgent data (`MSG_OOB`, an `EPOLLPRI` event)
    /// at some time. A read stops short at the urgent mark even with
    /// ordinary bytes queued behind it, so from then on a short read no
    /// longer means an empty buffer, and [`IoSource::poll_io_drain`]
    /// keeps readiness (the shortcut is off for this socket). Never
    /// cleared: urgent data is rare, and a wrong clear would hang the read.
    ///
    /// [`IoSource::poll_io_drain`]: registration::IoSource::poll_io_drain
    pub(crate) urgent: bool,
    /// The tasks waiting to read. Separate from `writers` so that one task
    /// may read a socket while another writes it.
    pub(crate) readers: Waiters,
    /// The tasks waiting to write.
    pub(crate) writers: Waiters,
}

/// One task waiting on a source.
pub(crate) enum Waiter {
    /// The socket's own task, polled with its own waker: the reactor
    /// queues it by id (the short road, see the module docs).
    Task(TaskId),
    /// Any other waker, called as usual.
    Waker(Waker),
}

impl Waiter {
    /// The waiter for a wait with `waker`, while `running` is polled.
    #[inline]
    fn new(waker: &Waker, running: Option<Running>) -> Waiter {
        match running {
            Some(running) if running.owns(waker) => Waiter::Task(running.id),
            _ => Waiter::Waker(waker.clone()),
        }
    }

    /// Whether this waiter would wake what `waker` wakes.
    #[inline]
    fn is(&self, waker: &Waker, running: Option<Running>) -> bool {
        match self {
            Waiter::Task(id) => running.is_some_and(|r| r.id == *id && r.owns(waker)),
            Waiter::Waker(w) => w.will_wake(waker),
        }
    }
}

/// The tasks waiting on one direction of a source. Almost always none or
/// one (a connection's own task), which `One` holds without allocating; a
/// second waiter (two tasks sharing a `UdpSocket` or a listener) moves them
/// all into a boxed `Vec`, so that the usual case pays 24 bytes, the size
/// of one `Waiter` (this exists once per direction per socket: at 10,000
/// connections, bytes here are memory per connection).
#[derive(Default)]
pub(crate) enum Waiters {
    /// Nobody waits.
    #[default]
    None,
    /// One waiter: the usual case.
    One(Waiter),
    /// Two or more. A thin box on purpose (see above).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Waiter>>),
}

impl Waiters {
    /// Adds a wait with `waker` unless it would wake a waiter already here.
    ///
    /// Inlined: it runs at every wait. Its usual case, the first wait of a
    /// socket's own task since the last event, is two tests and a store;
    /// everything else goes out of line. The store overwrites a `None`, and
    /// `mem::replace` plus `forget` says so: a plain assignment would call
    /// the enum's drop code on the old value, which is nothing, but the
    /// compiler does not see that and emits a call per wait.
    #[inline]
    pub(crate) fn add(&mut self, waker: &Waker, running: Option<Running>) {
        if let (Waiters::None, Some(running)) = (&*self, running)
            && running.owns(waker)
        {
            std::mem::forget(std::mem::replace(
                self,
                Waiters::One(Waiter::Task(running.id)),
            ));
            return;
        }
        self.add_slow(waker, running);
    }

    /// Every other case of [`add`](Self::add): another waker, or a waiter
    /// already here.
    #[inline(never)]
    fn add_slow(&mut self, waker: &Waker, running: Option<Running>) {
        match self {
            Waiters::None => *self = Waiters::One(Waiter::new(waker, running)),
            Waiters::One(w) if w.is(waker, running) => {}
            _ => self.add_another(waker, running),
        }
    }

    /// The rare case: a second task waits on this direction.
    #[cold]
    #[inline(never)]
    fn add_another(&mut self, waker: &Waker, running: Option<Running>) {
        let all = match std::mem::take(self) {
            Waiters::None => Vec::new(),
            Waiters::One(first) => vec![first],
            Waiters::Many(all) => *all,
        };
        let mut all = Box::new(all);
        if !all.iter().any(|w| w.is(waker, running)) {
            all.push(Waiter::new(waker, running));
        }
        *self = Waiters::Many(all);
    }

    /// Wakes every waiter of source `key`, leaving none: a task is queued
    /// at once through `schedule`; any other waker goes to `later` with the
    /// key, to be called once the reactor's slab is no longer borrowed (a
    /// waker may run any code).
    ///
    /// Inlined into the dispatch loop, so its usual cases, nobody waiting
    /// or the socket's own task, are a test and a store each; the rest
    /// goes out of line. The store overwrites a `One(Task)`, which has
    /// nothing to drop; `mem::replace` plus `forget` says so (as in
    /// [`add`](Self::add)).
    #[inline]
    fn wake(&mut self, key: usize, schedule: &impl Fn(TaskId), later: &mut Later) {
        match *self {
            Waiters::None => {}
            Waiters::One(Waiter::Task(id)) => {
                std::mem::forget(std::mem::replace(self, Waiters::None));
                schedule(id);
            }
            _ => self.wake_slow(key, schedule, later),
        }
    }

    /// Every other case of [`wake`](Self::wake): a waker, or several
    /// waiters.
    #[cold]
    #[inline(never)]
    fn wake_slow(&mut self, key: usize, schedule: &impl Fn(TaskId), later: &mut Later) {
        let all = match std::mem::take(self) {
            Waiters::None => Vec::new(),
            Waiters::One(waiter) => vec![waiter],
            Waiters::Many(all) => *all,
        };
        for waiter in all {
            match waiter {
                Waiter::Task(id) => schedule(id),
                Waiter::Waker(waker) => later.push((key, waker)),
            }
        }
    }
}

/// The wakers one batch's dispatch found that are not a socket's own
/// task, each with the key of the source it waited on: they are called
/// after the batch.
type Later = Vec<(usize, Waker)>;

impl ScheduledIo {
    /// Whether an operation in `dir` should be tried now: the OS said ready,
    /// or the direction is closed (the operation will return EOF or the
    /// error at once).
    pub(crate) fn ready(&self, dir: Direction) -> bool {
        match dir {
            Direction::Read => self.read_ready || self.read_closed,
            Direction::Write => self.write_ready || self.write_closed,
        }
    }

    /// Forgets that the OS said ready in `dir` (closed states stay).
    #[inline]
    pub(crate) fn clear_ready(&mut self, dir: Direction) {
        match dir {
            Direction::Read => self.read_ready = false,
            Direction::Write => self.write_ready = false,
        }
    }

    /// Records what one event says about this source.
    fn note(&mut self, event: &mio::event::Event) {
        self.read_ready |= event.is_readable() || event.is_error();
        self.write_ready |= event.is_writable() || event.is_error();
        self.read_closed |= event.is_read_closed();
        self.write_closed |= event.is_write_closed();
        self.urgent |= event.is_priority();
    }

    /// The tasks waiting on `dir`.
    #[inline]
    pub(crate) fn waiters(&mut self, dir: Direction) -> &mut Waiters {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }
}

impl Reactor {
    /// Creates the poll instance and the cross-thread waker.
    pub(crate) fn new(event_capacity: usize) -> io::Result<(Reactor, mio::Waker)> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let reactor = Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(event_capacity.max(1))),
            sources: RefCell::new(Slab::new()),
            io_events: Cell::new(0),
            running: Cell::new(None),
            budget: Cell::new(0),
            unconstrained: Cell::new(false),
            time_next_wait: Cell::new(false),
            wait_ended: Cell::new(None),
        };
        Ok((reactor, waker))
    }

    /// Says which task is being polled (`None` between polls), and gives
    /// a task that begins its poll a full budget.
    #[inline]
    pub(crate) fn set_running(&self, running: Option<Running>) {
        self.running.set(running);
        if running.is_some() {
            self.budget.set(crate::runtime::TASK_BUDGET);
        }
    }

    /// Takes one unit of the running task's budget for an operation about
    /// to be tried, or returns false if the budget is spent: the operation
    /// must then give the loop back instead (its caller wakes the task and
    /// returns `Pending`, as `yield_now` does). A spent budget holds
    /// nothing back while no task of this runtime is being polled (a
    /// socket polled outside its loop: no poll of ours would ever refill
    /// it), nor inside [`unconstrained`](crate::task::unconstrained).
    ///
    /// The count may wrap below zero then, to 255: harmless, since it
    /// binds nobody until the next poll refills it, and `unconstrained`
    /// puts back what it found.
    #[inline]
    pub(crate) fn take_budget(&self) -> bool {
        let left = self.budget.get();
        if left == 0 && self.budget_binds() {
            return false;
        }
        self.budget.set(left.wrapping_sub(1));
        true
    }

    /// Whether [`take_budget`](Self::take_budget) would let an operation
    /// through now, without taking the unit.
    pub(crate) fn budget_left(&self) -> bool {
        self.budget.get() > 0 || !self.budget_binds()
    }

    /// The rare half of [`take_budget`](Self::take_budget): the budget
    /// is spent; does that hold the operation back?
    #[cold]
    #[inline(never)]
    fn budget_binds(&self) -> bool {
        self.running.get().is_some() && !self.unconstrained.get()
    }

    /// Marks the start of an [`unconstrained`](crate::task::unconstrained)
    /// poll, returning what to give [`constrain`](Self::constrain) at its
    /// end: the budget and the mark as they stood, so that the task's own
    /// budget is where the unconstrained part found it (and a nested one
    /// leaves its outer one unconstrained).
    pub(crate) fn unconstrain(&self) -> (u8, bool) {
        (self.budget.get(), self.unconstrained.replace(true))
    }

    /// Ends an [`unconstrain`](Self::unconstrain)ed poll.
    pub(crate) fn constrain(&self, (budget, unconstrained): (u8, bool)) {
        self.budget.set(budget);
        self.unconstrained.set(unconstrained);
    }

    /// The task being polled, if any.
    #[inline]
    pub(crate) fn running(&self) -> Option<Running> {
        self.running.get()
    }

    /// Waits for I/O events for at most `timeout` (`None`: until one
    /// arrives), notes the moment the wait returned if the loop asked it
    /// to (`time_next_wait`; with events, at its timeout with none, or cut
    /// short by a signal: a failed wait notes nothing, and the loop
    /// panics), then marks their
    /// sources ready and wakes their tasks,
    /// calling `before_wake(source)` before each source's wakes (the
    /// executor labels the wakes with it) and `schedule(id)` to queue a
    /// task stored by id. `schedule` runs while the slab of sources is
    /// borrowed, so it must not reach the reactor (the executor's only
    /// queues the id); other wakers are called after the whole batch, once
    /// the borrow has ended. Returns the number of events of registered
    /// sources (the cross-thread waker's are not counted).
    ///
    /// That moment is where the loop ends its timing of the wait (when park
    /// timing is on): the dispatch that follows runs wakers, which may run
    /// any code for any time, and is work, not sleep.
    ///
    /// No event names a freed slot: no source is dropped (or handed back
    /// by `into_std`) while a batch is read (only in a task's poll, or by
    /// a waker in `later`, after the batch), and either deregisters it,
    /// which takes back any event the kernel had queued for it. So a key a
    /// new source reused names it.
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        before_wake: impl Fn(usize),
        schedule: impl Fn(TaskId),
    ) -> io::Result<usize> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: just a shorter sleep.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.note_wait_end();
                return Ok(0);
            }
            Err(e) => return Err(e),
        }
        // After the match, not before it: the result is then not kept
        // alive across the check (which cost a spill and 7 instructions
        // per sleeping turn with timing off).
        self.note_wait_end();
        let mut count = 0;
        let mut later = Later::new();
        {
            // One borrow for the whole batch: `schedule` only queues ids
            // (it never reaches the reactor), and the wakers that might
            // run other code wait in `later` until the borrow has ended.
            let mut sources = self.sources.borrow_mut();
            for event in events.iter() {
                let key = event.token().0;
                let Some(io) = sources.get_mut(key) else {
                    continue; // the cross-thread waker's token
                };
                count += 1;
                io.note(event);
                before_wake(key);
                if io.ready(Direction::Read) {
                    io.readers.wake(key, &schedule, &mut later);
                }
                if io.ready(Direction::Write) {
                    io.writers.wake(key, &schedule, &mut later);
                }
            }
        }
        for (key, waker) in later {
            before_wake(key);
            wake_quietly(waker);
        }
        self.io_events.set(self.io_events.get() + count as u64);
        Ok(count)
    }

    /// Reads the clock as a timed wait returns (see `time_next_wait`).
    #[inline(always)]
    fn note_wait_end(&self) {
        if self.time_next_wait.get() {
            self.time_next_wait.set(false);
            self.wait_ended.set(Some(Instant::now()));
        }
    }

    /// Asks the next wait to note when it returns (see `time_next_wait`).
    pub(crate) fn time_next_wait(&self) {
        self.time_next_wait.set(true);
    }

    /// When the last timed wait returned, once.
    pub(crate) fn take_wait_end(&self) -> Option<Instant> {
        self.wait_ended.take()
    }

    /// The number of registered sources.
    pub(crate) fn sources(&self) -> usize {
        self.sources.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter::default());
        (counter.clone(), Waker::from(counter))
    }

    const ID: TaskId = TaskId {
        key: 3,
        generation: 7,
    };

    /// Wakes `waiters`, returning the ids handed to `schedule`.
    fn wake(mut waiters: Waiters) -> Vec<TaskId> {
        let queued = RefCell::new(Vec::new());
        let mut later = Later::new();
        waiters.wake(ID.key, &|id| queued.borrow_mut().push(id), &mut later);
        assert!(matches!(waiters, Waiters::None), "a waiter was left");
        for (_, waker) in later {
            waker.wake();
        }
        queued.into_inner()
    }

    #[test]
    fn the_running_tasks_own_waker_is_kept_as_its_id_and_queued_by_it() {
        let (count, own) = counter();
        let mut waiters = Waiters::default();
        waiters.add(&own, Some(Running::new(ID, &own)));
        waiters.add(&own, Some(Running::new(ID, &own))); // the same wait again
        assert!(matches!(waiters, Waiters::One(Waiter::Task(id)) if id == ID));
        assert_eq!(wake(waiters), [ID]);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "its waker was called");
    }

    #[test]
    fn any_other_waker_is_stored_and_called() {
        let (_, own) = counter();
        let (count, other) = counter();
        // Another waker while the task runs (a combinator's), and a waker
        // when no task runs (the `block_on` of another runtime, say).
        for running in [Some(Running::new(ID, &own)), None] {
            let mut waiters = Waiters::default();
            waiters.add(&other, running);
            waiters.add(&other, running);
            assert!(matches!(waiters, Waiters::One(Waiter::Waker(_))));
            assert!(wake(waiters).is_empty());
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_task_and_a_waker_waiting_together_are_both_woken() {
        let (_, own) = counter();
        let (count, other) = counter();
        let running = Some(Running::new(ID, &own));
        let mut waiters = Waiters::default();
        waiters.add(&own, running);
        waiters.add(&other, running);
        waiters.add(&own, running);
        waiters.add(&other, running);
        assert!(matches!(&waiters, Waiters::Many(all) if all.len() == 2));
        assert_eq!(wake(waiters), [ID]);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    /// The id alone does not make a waiter "the same": a new task in a
    /// reused slot has the same key and another generation.
    #[test]
    fn another_task_in_the_same_slot_is_another_waiter() {
        let (_, first) = counter();
        let (_, second) = counter();
        let next = TaskId {
            generation: ID.generation + 1,
            ..ID
        };
        let mut waiters = Waiters::default();
        waiters.add(&first, Some(Running::new(ID, &first)));
        waiters.add(&second, Some(Running::new(next, &second)));
        assert_eq!(wake(waiters), [ID, next]);
    }
}
