//! The runtime: one thread, one loop.
//!
//! [`Runtime::block_on`] is the event loop. Each turn of it does four things,
//! in this order:
//!
//! ```text
//!            ┌───────────────────────────────────────────────────────────┐
//!            │ 1. run the tasks that were ready when the turn began      │
//!            │    (each poll runs a task to its next .await)             │
//!            │ 2. fire the timers that are due                           │
//!            │ 3. wait in mio::Poll: not at all if tasks are queued      │
//!            │    (and only after a yield or 61 polls then), else        │
//!            │    until the next timer deadline or an I/O event          │
//!            │ 4. wake the tasks whose sockets became ready, take in     │
//!            │    wakes sent from other threads, then queue the tasks    │
//!            │    that yielded                                           │
//!            └────────────────────────────── repeat until main is done ──┘
//! ```
//!
//! Step 1 polls only the tasks queued *when the turn began*. A task that
//! wakes itself (a `yield_now` loop) joins the queue at the end of the turn,
//! behind the tasks that the timers and the network woke meanwhile, and runs
//! next turn, so it cannot hog a turn. asyncio's `_run_once` makes the same
//! choice.
//!
//! Step 3 costs a syscall (`epoll_wait`), even with a zero timeout. When work
//! is queued, the loop therefore skips it until [`EVENT_INTERVAL`] task
//! polls have passed since the last check (tokio's `event_interval` uses the
//! same number): two tasks passing a message back and forth take a turn per
//! hop, and should not pay a syscall per hop. I/O is still never starved: it
//! is checked the moment the queue runs dry; while the queue stays busy,
//! at the end of the first turn that brings the polls since the last check
//! to 61; and before the next turn whenever a task yielded (`yield_now` promises that
//! the network gets a look before the yielding task runs again: a CPU-heavy
//! task that yields between slices must not hold replies back for 61
//! slices). The check comes only between turns, never inside step 1: a
//! turn that began with 1,000 tasks queued polls all 1,000 first.
//!
//! A runtime whose clock is paused (tests: [`Builder::start_paused`]) never
//! sleeps in step 3 for a timer. It checks for I/O without waiting, and if
//! that, the other threads and the yielded tasks brought nothing to run, a
//! fifth step moves the clock to the next timer's tick, which the next turn
//! fires (or, on the wheel, to a tick where it cascades, a step nearer):
//! [`crate::time`] explains why that is safe.

pub(crate) mod context;
pub(crate) mod executor;
pub(crate) mod handle;
pub(crate) mod histogram;

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub use handle::{Handle, RemoteJoinHandle};
pub use histogram::Histogram;

use crate::blocking::BlockingPool;
use crate::reactor::Reactor;
use crate::task::JoinHandle;
use crate::task::waker::{Remote, TaskWaker};
use crate::time::TimerBackend;
use crate::time::driver::Timers;
use crate::trace::{Event, Recorder, Trace, WakeReason};
use executor::Executor;

/// How many task polls, while tasks keep the queue non-empty, make the loop
/// check for I/O anyway at the end of the turn (see the module docs: a
/// long turn polls more than this between two checks).
pub const EVENT_INTERVAL: u32 = 61;

/// How many socket operations a task may try in one poll without
/// waiting: the next one gives the loop back instead, as a `yield_now`
/// would (its cooperative budget; tokio's is 128 too).
///
/// A task gives control back only where it must wait. One whose sockets
/// are always ready (a reader whose peer writes faster than it reads, an
/// accept loop under a flood of connections, a writer to a fast reader)
/// would never have to, and every other task, timer and socket would wait
/// for it. The budget is filled whenever a task's poll begins; each
/// operation that is tried spends one unit (one whose socket is not ready
/// waits, and spends nothing); and an operation that finds the budget
/// spent wakes its task and returns `Pending` without trying.
/// [`task::consume_budget`](crate::task::consume_budget) spends one by
/// hand, in a loop that does no coop I/O;
/// [`task::unconstrained`](crate::task::unconstrained) lifts the limit.
pub const TASK_BUDGET: u8 = 128;

/// How many ready events one wait on the OS may return, unless
/// [`Builder::event_capacity`] says otherwise.
///
/// Smaller than tokio's 1,024 on purpose. When thousands of connections
/// are ready at once, `epoll_wait` checks every socket it reports, the
/// reactor then wakes each one's task, and only after that does the loop
/// poll the tasks, which read the sockets. The fewer events in one batch,
/// the more of each socket's memory (the kernel's, and the task's own) is
/// still in cache when it is read. At 10,000 connections, 128 took about 4%
/// off the echo server's CPU time per echo, measured in alternation against
/// 1,024 (`scripts/ab.py --turns`); from 32 to 256 made no difference that
/// the measurement could resolve. The extra waits (one per 128 ready
/// sockets, not per 1,024) are part of that measurement; below 128 ready
/// sockets nothing changes at all.
pub const EVENT_CAPACITY: usize = 128;

/// Hands out runtime ids; a waker compares ids to know its own runtime.
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// Everything one runtime owns, shared (via `Rc`) with the thread-local
/// context while the loop runs.
pub(crate) struct Core {
    /// Unique among all runtimes of the process.
    pub(crate) id: u64,
    /// The tasks and the run queue.
    pub(crate) executor: Executor,
    /// The I/O driver. Its own `Rc` because every socket holds one.
    pub(crate) reactor: Rc<Reactor>,
    /// The timer driver. Its own `Rc` because every pending `Sleep` holds one.
    pub(crate) timers: Rc<Timers>,
    /// Threads for `spawn_blocking`, started on demand.
    pub(crate) blocking: BlockingPool,
    /// Loop turns so far.
    turns: std::cell::Cell<u64>,
    /// Time spent waiting in `mio::Poll` with a non-zero timeout, counted
    /// only if `park_timing` is on: from just before each wait to the
    /// moment it returns, not including the dispatch of its events.
    parked: std::cell::Cell<Duration>,
    /// Read the clock around every wait (the builder's `park_timing`, or
    /// tracing, which draws the waits).
    park_timing: bool,
}

/// A single-threaded event loop with its tasks and I/O sources.
///
/// Most programs call [`coop::block_on`](crate::block_on), which builds a
/// runtime with default settings. Build one yourself to choose settings or
/// to run several `block_on` calls on the same tasks and sockets:
///
/// ```
/// let rt = coop::Runtime::builder().event_capacity(256).build().unwrap();
/// let n = rt.block_on(async { coop::spawn(async { 1 + 1 }).await.unwrap() });
/// assert_eq!(n, 2);
/// ```
///
/// Spawned tasks run only while some `block_on` call is running. Dropping
/// the runtime drops every remaining task (running its destructors), and
/// with them every socket, timer and buffer they own. (A socket you keep
/// outside any task stays open until you drop it.)
pub struct Runtime {
    core: Rc<Core>,
}

/// Settings for a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    /// How many readiness events one `mio::Poll::poll` call may return.
    event_capacity: usize,
    /// Which queue keeps the timers.
    timer_backend: TimerBackend,
    /// Polls longer than this log a warning.
    slow_poll: Option<Duration>,
    /// Record a timeline.
    trace: bool,
    /// Time every wait in `mio::Poll` for `Metrics::time_parked`.
    park_timing: bool,
    /// Most threads the blocking pool may run at once.
    blocking_threads: usize,
    /// How long an idle blocking thread waits for work before exiting.
    blocking_keep_alive: Duration,
    /// Start with the clock paused (tests of timing logic).
    start_paused: bool,
}

/// The slow-poll threshold when warnings are on (asyncio's debug mode
/// uses the same 100 ms).
pub const DEFAULT_SLOW_POLL: Duration = Duration::from_millis(100);

impl Default for Builder {
    fn default() -> Self {
        Builder {
            event_capacity: EVENT_CAPACITY,
            timer_backend: TimerBackend::Wheel,
            // On in debug builds, off in release (as asyncio's debug mode).
            slow_poll: cfg!(debug_assertions).then_some(DEFAULT_SLOW_POLL),
            trace: false,
            park_timing: false,
            blocking_threads: 64,
            blocking_keep_alive: Duration::from_secs(10),
            start_paused: false,
        }
    }
}

impl Builder {
    /// Builder with default settings.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// How many I/O events one wait in `mio::Poll` can return (default
    /// [`EVENT_CAPACITY`], 128; see there why it is small). More events
    /// than this are not lost: they are reported by the next wait.
    pub fn event_capacity(mut self, capacity: usize) -> Builder {
        self.event_capacity = capacity;
        self
    }

    /// Which data structure keeps the timers (default: the timing wheel).
    /// The heap and B-tree are there to compare against.
    pub fn timer_backend(mut self, backend: TimerBackend) -> Builder {
        self.timer_backend = backend;
        self
    }

    /// Turns slow-poll warnings on (with the 100 ms threshold) or off. On
    /// by default in debug builds, off in release builds.
    pub fn slow_poll_warnings(mut self, on: bool) -> Builder {
        self.slow_poll = on.then_some(DEFAULT_SLOW_POLL);
        self
    }

    /// Warns (through `log`) about any poll that holds the loop longer than
    /// `threshold`, naming the task and where it was spawned.
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Builder {
        self.slow_poll = Some(threshold);
        self
    }

    /// Records a timeline of polls, wakes, waits and blocking jobs; read it
    /// with [`Runtime::trace`]. Off by default.
    ///
    /// The trace grows without bound: every event is kept in memory for
    /// the runtime's life, nothing is dropped or written out, and each
    /// [`Runtime::trace`] call copies the whole of it. An [`Event`] is 64
    /// bytes on a 64-bit target (`size_of::<Event>()`), plus, for a spawn,
    /// its location and name as strings; every task poll adds one, and so
    /// does every wake, every wait in `mio::Poll` and every blocking job.
    /// The `Vec` that holds them may reserve up to twice what it holds. A
    /// server making 100,000 polls and 100,000 wakes a second thus grows by
    /// about 13 MB a second: tracing is for a short run, a test or a
    /// demonstration, not for a server left running.
    pub fn trace(mut self, on: bool) -> Builder {
        self.trace = on;
        self
    }

    /// Times every wait in `mio::Poll`, for [`Metrics::time_parked`]: from
    /// just before the wait to the moment it returns, before the reactor
    /// wakes the tasks of the events it brought. Off
    /// by default (and on whenever [`trace`](Builder::trace) is): it reads
    /// the clock twice per wait, which in a server whose every turn sleeps
    /// once and serves one echo measured about 90 ns per echo, 1.2% of its
    /// CPU time (`docs/benchmarks.md`). tokio makes its poll-time histogram
    /// opt-in for the same reason.
    pub fn park_timing(mut self, on: bool) -> Builder {
        self.park_timing = on;
        self
    }

    /// The most threads `spawn_blocking` may use at once (default 64; at
    /// least 1). More jobs than threads wait in a queue.
    pub fn blocking_threads(mut self, threads: usize) -> Builder {
        self.blocking_threads = threads.max(1);
        self
    }

    /// How long an idle blocking thread waits for a job before it exits
    /// (default 10 s).
    pub fn blocking_keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// Starts the runtime with its clock paused (default: off), for tests
    /// of timing logic: the clock stands still, and when the loop has
    /// nothing to do but wait for a timer, it jumps to the timer (to its
    /// tick) instead of waiting, so an hour of `sleep` takes no time. `timeout`,
    /// `interval` and [`time::now`](crate::time::now) follow the paused
    /// clock; `std::time::Instant::now()` does not. See
    /// [`crate::time`](crate::time#a-clock-that-stands-still), and
    /// [`time::advance`](crate::time::advance) to move it by hand.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = coop::Runtime::builder().start_paused(true).build().unwrap();
    /// let wall = std::time::Instant::now();
    /// let late = rt.block_on(async {
    ///     let reply = std::future::pending::<()>(); // a peer that never answers
    ///     coop::time::timeout(Duration::from_secs(30), reply).await
    /// });
    /// assert!(late.is_err());
    /// assert!(wall.elapsed() < Duration::from_secs(30));
    /// ```
    pub fn start_paused(mut self, paused: bool) -> Builder {
        self.start_paused = paused;
        self
    }

    /// Creates the runtime: a `mio::Poll`, its cross-thread waker, and empty
    /// task and source slabs.
    pub fn build(self) -> io::Result<Runtime> {
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let park_timing = self.park_timing || self.trace;
        let (reactor, waker) = Reactor::new(self.event_capacity)?;
        let remote = Arc::new(Remote::new(id, waker));
        let trace = self.trace.then(|| Rc::new(Recorder::new()));
        let blocking = BlockingPool::new(
            self.blocking_threads,
            self.blocking_keep_alive,
            trace.as_ref().map(|t| t.remote_sink()),
        );
        let reactor = Rc::new(reactor);
        let core = Core {
            id,
            executor: Executor::new(remote, reactor.clone(), self.slow_poll, trace),
            reactor,
            timers: Rc::new(Timers::new(self.timer_backend, self.start_paused)),
            blocking,
            turns: std::cell::Cell::new(0),
            parked: std::cell::Cell::new(Duration::ZERO),
            park_timing,
        };
        Ok(Runtime {
            core: Rc::new(core),
        })
    }
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// A [`Builder`] to choose settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Runs the event loop on this thread until `future` completes, and
    /// returns its output.
    ///
    /// Under an [`EnterGuard`] (of this runtime or another) it runs as
    /// anywhere else, and the entered runtime is current again when it
    /// returns.
    ///
    /// # Panics
    /// If called while a `coop` loop runs on this thread: from inside a
    /// task or the `block_on` future (use `.await` there instead), or from
    /// a task's destructor while a runtime shuts down (the shutdown logs
    /// that panic and goes on). A panic of `future`
    /// itself propagates; panics of spawned tasks do not (they go to their
    /// join handles).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = context::enter_for_loop(self.core.clone());
        let core = &*self.core;
        let executor = &core.executor;

        // The main future is not in the slab, but it is woken and queued
        // like a task, under the reserved key MAIN_KEY.
        let main_id = executor.begin_main();
        core.timers.set_looping(true);
        let _end_main = EndMain(core);
        let waker = Waker::from(Arc::new(TaskWaker::new(main_id, executor.remote.clone())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        if let Some(trace) = &executor.trace {
            trace.spawn(
                main_id.generation,
                Some("block_on"),
                std::panic::Location::caller(),
            );
        }
        executor.set_cause(WakeReason::Spawn);
        executor.schedule(main_id);
        executor.set_cause(WakeReason::Other);

        // Task polls since the loop last checked for I/O.
        let mut polls_since_io = 0;
        loop {
            core.turns.set(core.turns.get() + 1);
            // 1. Run the tasks that were ready when the turn began.
            for _ in 0..executor.queued() {
                polls_since_io += 1;
                let Some(id) = executor.pop() else { break };
                if id == main_id {
                    let polled =
                        executor.run_main(main_id, &waker, || future.as_mut().poll(&mut cx));
                    if let Poll::Ready(output) = polled {
                        return output;
                    }
                } else {
                    executor.run(id); // (skips a stale id, of a task now gone)
                }
            }

            // 2. Fire due timers: their tasks join the queue.
            executor.set_cause(WakeReason::Timer);
            core.timers.fire_due();
            executor.set_cause(WakeReason::Other);

            // 3. Wait for I/O: not at all if work is queued (and skip even
            //    the check until EVENT_INTERVAL polls have passed), else
            //    until the next timer needs attention, or forever if none is
            //    pending.
            //    A task that yielded is not in the queue but waits to run:
            //    never sleep then.
            let yielded = executor.yielded();
            let timeout = if executor.queued() > 0 || yielded {
                if polls_since_io < EVENT_INTERVAL && !yielded {
                    executor.drain_remote();
                    continue;
                }
                Some(Duration::ZERO)
            } else {
                // (A paused clock says zero here and plans step 5,
                // unless a blocking job holds it: chapter 04.)
                core.timers.next_timeout()
            };
            polls_since_io = 0;
            let park_start = (core.park_timing && timeout != Some(Duration::ZERO)).then(|| {
                core.reactor.time_next_wait();
                Instant::now()
            });
            let polled = core.reactor.poll(
                timeout,
                |source| executor.set_cause(WakeReason::Io { source }),
                |id| executor.schedule(id),
            );
            executor.set_cause(WakeReason::Other);
            if let Err(e) = polled {
                // epoll_wait fails only on programming errors (a bad fd);
                // nothing sensible can continue.
                panic!("coop: waiting in mio::Poll failed: {e}");
            }
            if let Some(start) = park_start {
                // The wait ended when mio::Poll returned, before the
                // reactor woke the batch's tasks: calling their wakers is
                // work. The reactor read the clock then (`time_next_wait`;
                // it does for every timed wait that returns, so reading
                // `now` here is a fallback that no path takes).
                let end = core.reactor.take_wait_end().unwrap_or_else(Instant::now);
                core.parked.set(core.parked.get() + (end - start));
                if let Some(trace) = &executor.trace {
                    trace.record(Event::Park {
                        start_us: trace.us(start),
                        end_us: trace.us(end),
                    });
                }
            }

            // 4. The reactor woke I/O tasks; now take in remote wakes.
            executor.drain_remote();
            //    Last, the tasks that yielded: behind everything the
            //    timers, the network and other threads woke meanwhile.
            if yielded {
                executor.release_deferred();
            }

            // 5. Only with a paused clock (tests): if step 3 looked for I/O
            //    instead of sleeping until a timer, and nothing is ready,
            //    move the clock to that timer. The next turn fires it.
            core.timers.auto_advance(|| executor.queued() == 0);
        }
    }

    /// Makes this runtime the thread's current runtime, without running its
    /// loop, until the returned guard is dropped (tokio's `Runtime::enter`).
    ///
    /// Code outside [`block_on`](Self::block_on) can then do what needs a
    /// current runtime: create sockets (`TcpListener::bind`,
    /// `UdpSocket::bind`, `TcpStream::from_std`), which register with this
    /// runtime's reactor; [`coop::spawn`](crate::spawn) tasks, which are
    /// queued here and run when a `block_on` of this runtime next runs the
    /// loop; build sleeps and timeouts, which then read this runtime's
    /// clock (it matters when the clock is paused: see
    /// [`Builder::start_paused`]); and take [`Handle::current`].
    ///
    /// Nothing *waits* under the guard alone: no loop runs. A socket made
    /// here and awaited outside any `block_on` gives the same "not running"
    /// error as one moved out of its runtime, and a `Sleep` polled here
    /// panics as it does outside every runtime. Inside a later `block_on`
    /// of this runtime they work as if made there.
    ///
    /// ```
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = coop::Runtime::new().unwrap();
    /// let listener = {
    ///     let _guard = rt.enter();
    ///     coop::net::TcpListener::bind("127.0.0.1:0").unwrap()
    /// };
    /// let addr = listener.local_addr().unwrap();
    /// rt.block_on(async move {
    ///     let server = coop::spawn(async move {
    ///         let (mut conn, _) = listener.accept().await.unwrap();
    ///         conn.write_all(b"hi").await.unwrap();
    ///     });
    ///     let mut client = coop::net::TcpStream::connect(addr).await.unwrap();
    ///     let mut reply = [0; 2];
    ///     client.read_exact(&mut reply).await.unwrap();
    ///     assert_eq!(&reply, b"hi");
    ///     server.await.unwrap();
    /// });
    /// ```
    ///
    /// `block_on` under the guard, of this runtime or another, runs as
    /// usual; this runtime is current again when it returns. Guards nest
    /// (entering another runtime, or this one again): the newest guard
    /// still alive decides. They may be dropped in any order (tokio
    /// panics on an out-of-order drop): each takes back only its own
    /// entry, so dropping an older guard first leaves the newer one's
    /// runtime current, and dropping the last leaves none.
    ///
    /// # Panics
    /// Where `block_on` would: while a `coop` loop runs on this thread
    /// (inside a task or a `block_on` future, where the running loop's
    /// runtime is current already, and a guard held across an `.await`
    /// would make this one current for every task polled meanwhile), or
    /// in a destructor run by a runtime's drop.
    #[track_caller]
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _context: context::enter_for_user(self.core.clone()),
            _runtime: std::marker::PhantomData,
        }
    }

    /// Spawns `future` as a task of this runtime from outside it: the task
    /// is queued now, and runs when a [`block_on`](Self::block_on) call on
    /// this runtime next runs the loop (tasks run only then). A server can
    /// thus be set up before the loop starts, with `block_on` given what
    /// ends the program. Inside a task, [`coop::spawn`](crate::spawn) does
    /// the same for the current runtime.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        let location = std::panic::Location::caller();
        self.core.executor.spawn(future, None, location).1
    }

    /// A [`Handle`] to this runtime, for spawning onto its loop from
    /// other threads.
    pub fn handle(&self) -> Handle {
        Handle::new(self.core.executor.remote.clone())
    }

    /// A snapshot of the runtime's counters.
    pub fn metrics(&self) -> Metrics {
        Metrics::read(&self.core)
    }

    /// The timeline recorded so far, if the runtime was built with
    /// [`Builder::trace`]`(true)`.
    pub fn trace(&self) -> Option<Trace> {
        self.core.executor.trace.as_ref().map(|t| t.snapshot())
    }
}

/// The guard of [`Runtime::enter`]: while it lives, its runtime is the
/// thread's current runtime (with no loop running). Dropping it takes that
/// back; see [`Runtime::enter`] for nesting and order.
///
/// `!Send`, like the runtime: the current runtime is a per-thread thing.
///
/// It borrows the runtime, which cannot be dropped (or moved) while the
/// guard lives:
///
/// ```compile_fail,E0505
/// let rt = coop::Runtime::new().unwrap();
/// let _guard = rt.enter();
/// drop(rt); // refused: `_guard` is dropped at the end of the scope
/// ```
#[must_use = "the runtime is current only while the guard lives"]
pub struct EnterGuard<'a> {
    /// Removes this guard's entry from the thread's context when dropped.
    _context: context::ContextGuard,
    /// Borrows the runtime: it cannot be dropped while it is entered (with
    /// the `Drop` impl below; a guard that is `mem::forget`-ed lets go of
    /// the borrow, and the runtime's drop removes its entry instead).
    _runtime: std::marker::PhantomData<&'a Runtime>,
}

/// Nothing to do here (the `ContextGuard` field removes the entry), but
/// the impl must exist: it is what makes dropping the guard a use of its
/// borrow. Without it the guard has no `Drop` of its own, the borrow checker
/// lets the borrow end at the guard's last *explicit* use, and
/// `let _guard = rt.enter(); drop(rt);` compiles, leaving the dropped
/// runtime current until the end of the scope.
impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {}
}

impl std::fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// Ends a `block_on` call however it ends, a panic included: its main
/// future in the executor (see `Executor::end_main`), and the loop that
/// advances the timers (see `Timers::looping`).
struct EndMain<'a>(&'a Core);

impl Drop for EndMain<'_> {
    fn drop(&mut self) {
        self.0.executor.end_main();
        self.0.timers.set_looping(false);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Make this runtime current (for the duration of the drop, even
        // inside another runtime's task) so that destructors that reach for
        // "the current runtime" find this one, then drop every task.
        let _enter = context::enter_for_drop(self.core.clone());
        // Drop every task, then every queued blocking job (running ones
        // finish on their threads and their results are discarded). Each
        // can start the other from a destructor: a task's captures may
        // call `spawn_blocking`, a job's captures may `spawn`. So repeat
        // until a round of jobs drops nothing, and no task is left that a
        // destructor spawned behind the shutdown's back. First, close the
        // pool: a thread that comes free meanwhile must not start a queued
        // job whose task is about to be dropped.
        self.core.blocking.close();
        // Close the injection queue too: futures spawned from other threads
        // that the loop never took in are dropped with the rest, and a
        // later `Handle::spawn` drops its future at once (its handle says
        // cancelled instead of waiting for a loop that is gone).
        for injected in self.core.executor.remote.close_injector() {
            executor::drop_quietly(executor::TASK_DROP, move || drop(injected));
        }
        loop {
            self.core.executor.shutdown();
            if self.core.blocking.shutdown() == 0 {
                break;
            }
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.core.id)
            .field("tasks", &self.core.executor.live_tasks())
            .field("sources", &self.core.reactor.sources())
            .finish()
    }
}

/// Counters of one runtime, read with [`Runtime::metrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Tasks spawned since the runtime was built.
    pub tasks_spawned: u64,
    /// Tasks alive now (spawned and not yet finished).
    pub tasks_alive: usize,
    /// Polls of spawned tasks (the `block_on` future not counted). The
    /// turn that cancels an aborted task drops its future without a poll
    /// and counts none, whether the task was spawned here or through a
    /// [`Handle`]: a task aborted before its first poll counts none at all.
    pub polls: u64,
    /// I/O readiness events the reactor received.
    pub io_events: u64,
    /// Sockets registered now.
    pub io_sources: usize,
    /// Timers pending now.
    pub timers_pending: usize,
    /// Timers that have fired.
    pub timers_fired: u64,
    /// How late each completed sleep woke: the moment its task saw it
    /// complete, minus its deadline. Only sleeps that waited on a timer
    /// count: one already due when first polled (or reset) waited for
    /// nothing.
    pub timer_lateness: Histogram,
    /// Wakes, by what caused them.
    pub wakes: WakeCounts,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
    /// Turns of the loop.
    pub loop_turns: u64,
    /// Time the loop spent asleep in `mio::Poll`; zero unless the runtime
    /// was built with [`Builder::park_timing`] (or [`Builder::trace`]).
    /// Each wait counts until `mio::Poll` returns: waking the tasks of the
    /// events it brought is work, and not counted. Waits with a zero
    /// timeout (a look at the network while tasks are queued) are not
    /// timed at all.
    pub time_parked: Duration,
    /// Blocking-pool threads alive now.
    pub blocking_threads: usize,
    /// Blocking jobs submitted so far.
    pub blocking_jobs: u64,
}

/// How many times tasks were queued, by reason (see
/// [`WakeReason`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WakeCounts {
    /// New tasks queued by `spawn`, and each `block_on` future queued for
    /// its first poll (so this is `tasks_spawned` plus one per `block_on`).
    pub spawn: u64,
    /// Wakes by socket readiness.
    pub io: u64,
    /// Wakes by timers.
    pub timer: u64,
    /// Wakes by another task.
    pub task: u64,
    /// Tasks that woke themselves (`yield_now`, or a socket operation,
    /// `consume_budget`, a due sleep or a finished task's join handle that
    /// found the task's budget spent).
    pub yields: u64,
    /// Wakes from other threads.
    pub remote: u64,
    /// Anything else.
    pub other: u64,
}

impl Metrics {
    fn read(core: &Core) -> Metrics {
        let stats = &core.executor.stats;
        Metrics {
            tasks_spawned: stats.spawned.get(),
            tasks_alive: core.executor.live_tasks(),
            polls: stats.polls.get(),
            io_events: core.reactor.io_events.get(),
            io_sources: core.reactor.sources(),
            timers_pending: core.timers.len(),
            timers_fired: core.timers.fired_total.get(),
            timer_lateness: core.timers.lateness(),
            wakes: stats.wakes.counts(),
            slow_polls: stats.slow_polls.get(),
            loop_turns: core.turns.get(),
            time_parked: core.parked.get(),
            blocking_threads: core.blocking.threads(),
            blocking_jobs: core.blocking.jobs_submitted(),
        }
    }
}

/// Runs `future` to completion on a new single-threaded runtime, like
/// Python's `asyncio.run`. The runtime, with any tasks still alive, is
/// dropped before this returns.
///
/// # Panics
/// If the runtime cannot be created (the OS refused an epoll instance), or
/// where [`Runtime::block_on`] panics: inside a running `coop` loop, or in
/// a task's destructor while a runtime shuts down.
///
/// ```
/// let n = coop::block_on(async { 40 + 2 });
/// assert_eq!(n, 42);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = Runtime::new().expect("coop: failed to create the runtime");
    runtime.block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// The reactor keeps the identity of the running task's waker only
    /// while that task is polled. A `block_on` future that panics unwinds
    /// past the code that clears it; the end of `block_on` must clear it
    /// anyway, or a later waker allocated at the same address could be
    /// taken for that future's.
    #[test]
    fn a_panicking_block_on_future_leaves_no_running_task_behind() {
        let runtime = Runtime::new().unwrap();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async { panic!("the main future panics") })
        }));
        assert!(panicked.is_err());
        assert!(runtime.core.reactor.running().is_none());
        // And the runtime still runs the next call.
        assert_eq!(runtime.block_on(async { 7 }), 7);
    }
}
