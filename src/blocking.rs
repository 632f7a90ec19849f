//! The blocking pool: where CPU-bound and blocking work leaves the loop.
//!
//! The loop has one thread. A task that computes for a second, or calls a
//! blocking function (`std::fs`, a DNS lookup, a C library), holds that
//! thread for the whole time, and every other task waits. [`spawn_blocking`]
//! moves such a closure to a pool of OS threads instead:
//!
//! ```text
//!  loop thread                        pool thread
//!  ───────────                        ───────────
//!  spawn_blocking(f) ── job queue ──▶ runs f()  (the loop keeps serving)
//!  task awaits the result             sends the result on a oneshot channel
//!        ◀──────── the oneshot's waker: Remote queue + mio::Waker ────────
//!  task resumes with f's output
//! ```
//!
//! The pool starts threads on demand, up to the builder's
//! `blocking_threads`; a thread that finds no job for `blocking_keep_alive`
//! exits. More jobs than threads wait in a FIFO queue. This is the same
//! shape as asyncio's `run_in_executor` with a `ThreadPoolExecutor`.
//!
//! A job that has started cannot be cancelled: aborting its `JoinHandle`
//! stops the *wait*, not the thread, and the result is dropped on the pool
//! thread when the job ends. A queued job whose handle was aborted is
//! skipped when its turn comes, without running (and leaves no job in a
//! trace), once the loop has cancelled the task that waits for it. That
//! happens where the task's next poll would have been (see
//! [`JoinHandle::abort`]), not inside `abort`: a thread that comes free
//! in between, before the loop's next look at that task, still runs the
//! job. (tokio's abort, likewise, "may prevent" a blocking task from
//! starting.) Dropping the runtime drops jobs that have not started; running
//! ones finish and their results are discarded. That holds from the first
//! moment of the drop: a thread that comes free while the runtime drops
//! its tasks takes no new job, and a job submitted by a destructor during
//! the drop starts no thread. A job's panic, and a panic in the destructor
//! of a result nobody reads, are caught: a pool thread never dies of one.
//!
//! If the OS refuses to start a thread and the pool has none running, the
//! queued jobs are dropped, and their handles report an error at once: left
//! queued, they would wait for a thread that only a later job could start.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::runtime::context;
use crate::runtime::executor::drop_quietly;
use crate::task::JoinHandle;
use crate::trace::{Event, micros_since};

/// A closure for a pool thread, and the task that awaits it.
struct Job {
    /// Runs the closure, or skips it if nobody waits for its result any
    /// more. If it ran, it calls its argument (which records the job in
    /// the trace) before it hands the result over: once the task has the
    /// result, any trace taken shows the job.
    run: Box<dyn FnOnce(RecordJob<'_>) + Send + 'static>,
    /// The number of the small task on the loop that waits for the result
    /// (the one behind the `JoinHandle`), so that a trace can say whose
    /// job a blocking thread ran.
    task: u64,
}

/// What a job calls once it has run, before it sends its result: records
/// the job in the trace (if tracing is on).
type RecordJob<'a> = &'a mut dyn FnMut();

/// Where a pool thread writes its trace events, if tracing is on.
type TraceSink = Option<(Instant, Arc<Mutex<Vec<Event>>>)>;

/// Runs `f` on the runtime's blocking pool and returns a handle to its
/// result. A panic in `f` becomes a [`JoinError`](crate::JoinError) for
/// which `is_panic()` is true.
///
/// ```
/// let sum = coop::block_on(async {
///     coop::spawn_blocking(|| (0..1_000_000u64).sum::<u64>()).await.unwrap()
/// });
/// assert_eq!(sum, 499_999_500_000);
/// ```
///
/// # Panics
/// If called outside a `coop` runtime.
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_blocking_named(f, None, Location::caller())
}

/// `#[track_caller]`, with the panic outside the closure: a call outside a
/// runtime is reported at the caller's line (as [`crate::spawn`]'s is).
#[track_caller]
pub(crate) fn spawn_blocking_named<F, T>(
    f: F,
    name: Option<String>,
    location: &'static Location<'static>,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // The runtime is taken out of the thread-local before `f` is touched,
    // as in `crate::spawn` (see there): outside a runtime `f` is dropped
    // with no borrow held, and a job the pool drops at once (it could not
    // start a thread) is dropped with none either.
    let Some(core) = context::with_current(std::rc::Rc::clone) else {
        drop(f);
        panic!("coop::spawn_blocking called outside of a coop runtime")
    };
    let (tx, rx) = futures::channel::oneshot::channel();
    // The job runs in real time, so a paused clock (tests) must not jump
    // past it: the waiter holds the clock until it returns, or is aborted
    // or dropped, whether or not anyone awaits its handle (as in tokio).
    let hold = core.timers.clock().hold();
    // A small task on the loop waits for the result, so the caller gets
    // an ordinary JoinHandle (await, abort, is_finished). It is spawned
    // first, so that the job can carry its number.
    let waiter = async move {
        let _hold = hold;
        match rx.await {
            Ok(Ok(value)) => value,
            // Re-raise the job's panic in this task: the executor
            // catches it and hands it to the JoinHandle.
            Ok(Err(payload)) => std::panic::resume_unwind(payload),
            Err(_) => panic!(
                "coop: the blocking job was dropped before it ran: its runtime shut down, \
                 or the pool could not start a thread (see the log)"
            ),
        }
    };
    let name = name.or_else(|| Some("spawn_blocking".to_owned()));
    let (task, handle) = core.executor.spawn(waiter, name, location);
    core.blocking.submit(Job {
        run: Box::new(move |ran: RecordJob<'_>| {
            if tx.is_canceled() {
                // Its task was cancelled (aborted, or its runtime
                // dropped) before it started: nobody can see a result,
                // so the job does not run. (An abort the loop has not
                // acted on yet leaves the receiver alive: see the
                // module docs.)
                drop_quietly("a cancelled blocking job's destructor", move || drop(f));
                return;
            }
            let result = catch_unwind(AssertUnwindSafe(f));
            ran();
            if let Err(unread) = tx.send(result) {
                // Aborted while it ran: the result is dropped here, and
                // a destructor that panics must not end this thread
                // behind the pool's back (it would still be counted).
                drop_quietly("an unread blocking result's destructor", move || {
                    drop(unread)
                });
            }
        }),
        task,
    });
    handle
}

/// The pool, owned by the runtime.
pub(crate) struct BlockingPool {
    /// What the pool threads share with the loop.
    shared: Arc<Shared>,
    /// Most threads at once.
    max_threads: usize,
    /// How long an idle thread waits before exiting.
    keep_alive: Duration,
    /// Trace sink handed to each new thread.
    trace: TraceSink,
    /// Jobs submitted (for metrics).
    submitted: Cell<u64>,
    /// Makes every thread start fail, as when the OS is out of threads:
    /// the only way to test that road.
    #[cfg(test)]
    fail_starts: Cell<bool>,
}

struct Shared {
    /// The queue and the thread counts, under one lock.
    state: Mutex<State>,
    /// Signalled when a job arrives or the pool shuts down.
    work: Condvar,
}

struct State {
    /// Jobs not yet started, oldest first.
    queue: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Set when the runtime starts to drop: threads take no more jobs and
    /// exit once their current one ends; new jobs only queue, to be
    /// dropped by [`BlockingPool::shutdown`].
    shutdown: bool,
    /// Numbers threads for names and traces.
    next_thread: usize,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, trace: TraceSink) -> BlockingPool {
        BlockingPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                    next_thread: 0,
                }),
                work: Condvar::new(),
            }),
            max_threads,
            keep_alive,
            trace,
            submitted: Cell::new(0),
            #[cfg(test)]
            fail_starts: Cell::new(false),
        }
    }

    /// Queues `job`, waking an idle thread or starting a new one.
    fn submit(&self, job: Job) {
        self.submitted.set(self.submitted.get() + 1);
        let orphans = self.queue_and_start(job);
        // Outside the lock, as in `shutdown`: a job's captures may do
        // anything as they drop. Each orphan's task wakes to an error.
        for job in orphans {
            drop_quietly("a blocking job's destructor", move || drop(job));
        }
    }

    /// [`submit`](Self::submit) under the lock. Returns the jobs that no
    /// thread will run: every queued job, if a thread was needed, the OS
    /// refused it, and no thread is left. Left queued, they would wait
    /// until some later job started a thread, for ever if none came;
    /// dropped, their handles report an error at once.
    fn queue_and_start(&self, job: Job) -> VecDeque<Job> {
        let mut state = self.shared.lock();
        state.queue.push_back(job);
        if state.shutdown {
            // A destructor spawned it while the runtime drops: no thread
            // may run it; the runtime's next `shutdown` call drops it.
            return VecDeque::new();
        }
        if state.queue.len() <= state.idle {
            self.shared.work.notify_one();
        } else if state.threads < self.max_threads {
            let number = state.next_thread;
            state.next_thread += 1;
            state.threads += 1;
            let shared = self.shared.clone();
            let keep_alive = self.keep_alive;
            let trace = self.trace.clone();
            let spawned = if self.refuse_start() {
                Err(std::io::Error::other("refused by the test"))
            } else {
                std::thread::Builder::new()
                    .name(format!("coop-blocking-{number}"))
                    .spawn(move || worker(&shared, number, keep_alive, trace))
            };
            if let Err(e) = spawned {
                // The OS refused a thread: the job waits for a running
                // one, if there is one.
                state.threads -= 1;
                log::warn!("blocking pool: could not start a thread: {e}");
                if state.threads == 0 {
                    let orphans = std::mem::take(&mut state.queue);
                    log::error!(
                        "blocking pool: no thread is left to run the {} queued job(s); \
                         they are dropped, and their handles report an error",
                        orphans.len()
                    );
                    return orphans;
                }
            }
        }
        // else: every thread is busy; the job waits its turn.
        VecDeque::new()
    }

    /// Whether a test wants the next thread start to fail.
    fn refuse_start(&self) -> bool {
        #[cfg(test)]
        return self.fail_starts.get();
        #[cfg(not(test))]
        false
    }

    /// The runtime starts to drop: from now on no thread takes a job, so
    /// that none starts while the tasks that wait for them are dropped
    /// (their jobs would run for nobody, after the runtime is gone).
    pub(crate) fn close(&self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
    }

    /// Drops queued jobs and tells idle threads to exit. Returns how many
    /// jobs it dropped: their captures' destructors ran on this thread,
    /// with the runtime current, and may have spawned tasks (see
    /// `Runtime`'s `Drop`).
    pub(crate) fn shutdown(&self) -> usize {
        let dropped: VecDeque<Job> = {
            let mut state = self.shared.lock();
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.shared.work.notify_all();
        // Outside the lock: a job's captures may do anything, and a panic
        // in their destructors must not unwind out of the runtime's drop.
        let count = dropped.len();
        for job in dropped {
            drop_quietly("a queued blocking job's destructor", move || drop(job));
        }
        count
    }

    /// Threads alive now.
    pub(crate) fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Jobs submitted so far.
    pub(crate) fn jobs_submitted(&self) -> u64 {
        self.submitted.get()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and are caught, so it is never poisoned
        // by them; recover anyway rather than panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pool thread: run jobs until idle for `keep_alive` or shut down.
fn worker(shared: &Shared, number: usize, keep_alive: Duration, trace: TraceSink) {
    loop {
        let job = {
            let mut state = shared.lock();
            loop {
                // Shutdown first: once the runtime drops, queued jobs are
                // its to drop, not ours to start.
                if state.shutdown {
                    break None;
                }
                if let Some(job) = state.queue.pop_front() {
                    break Some(job);
                }
                state.idle += 1;
                let (guard, waited) = shared
                    .work
                    .wait_timeout(state, keep_alive)
                    .unwrap_or_else(|e| e.into_inner());
                state = guard;
                state.idle -= 1;
                if waited.timed_out() && state.queue.is_empty() {
                    break None;
                }
            }
            .or_else(|| {
                state.threads -= 1;
                None
            })
        };
        let Some(job) = job else { return };
        let (start, task) = (Instant::now(), job.task);
        // Called by the job once it has run, before it sends the result
        // (see `Job::run`); a skipped job does not call it.
        let mut record = || {
            if let Some((origin, events)) = &trace {
                let event = Event::Blocking {
                    thread: number,
                    task,
                    start_us: micros_since(*origin, start),
                    end_us: micros_since(*origin, Instant::now()),
                };
                events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
            }
        };
        (job.run)(&mut record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;

    /// A job that sends `()` when it runs; its receiver.
    fn job() -> (Job, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |_: RecordJob<'_>| {
            let _ = tx.send(());
        });
        (Job { run, task: 1 }, rx)
    }

    /// When the OS refuses the thread a job needs and no thread is left,
    /// the queued jobs are dropped, so that their handles fail at once
    /// instead of waiting for a thread that may never start. (Session
    /// 27: they stayed queued, with only a log line.)
    #[test]
    fn jobs_no_thread_can_run_are_dropped_not_left_waiting() {
        let pool = BlockingPool::new(4, Duration::from_secs(5), None);
        pool.fail_starts.set(true);
        let (first, mut first_rx) = job();
        let (second, mut second_rx) = job();
        pool.submit(first);
        pool.submit(second);
        assert_eq!(pool.threads(), 0);
        assert!(pool.shared.lock().queue.is_empty(), "left queued");
        assert!(
            first_rx.try_recv().is_err(),
            "the first job's sender still lives"
        );
        assert!(
            second_rx.try_recv().is_err(),
            "the second job's sender still lives"
        );
        // Once threads start again, jobs run as usual.
        pool.fail_starts.set(false);
        let (third, third_rx) = job();
        pool.submit(third);
        assert_eq!(futures::executor::block_on(third_rx), Ok(()));
        pool.shutdown();
    }
}
