//! The timeline recorder: what the loop did, when, and why.
//!
//! Concurrency is hard to picture from code alone. With
//! [`Builder::trace`](crate::Builder::trace) turned on, the runtime writes
//! down every poll of every task (start, end), what woke each task, every
//! job of the blocking pool, and every wait of the loop in `mio::Poll`.
//! [`Runtime::trace`](crate::Runtime::trace) hands back the [`Trace`], which
//! exports:
//!
//! - [`Trace::to_chrome_json`]: Chrome trace-event JSON; open it in
//!   <https://ui.perfetto.dev> or `chrome://tracing`.
//! - [`Trace::to_svg`]: a timing diagram like a textbook's: one lane per
//!   task or thread, time across, busy (polled) and waiting shown apart.
//!
//! When tracing is off, the recorder is an `Option` that is `None`: one
//! branch per poll, no clock reads, nothing stored.

mod chrome;
mod svg;

pub use svg::{BLOCKING, BUSY, Diagram, IDLE, Lane, WAITING};

use std::cell::RefCell;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a task was queued to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeReason {
    /// It was just spawned.
    Spawn,
    /// A socket it waits on became ready (the reactor's token for it).
    Io {
        /// The source's token (its slot in the reactor).
        source: usize,
    },
    /// A timer it waits on came due.
    Timer,
    /// Another task woke it (a channel send, a join handle completing); the
    /// `block_on` future counts as a task here.
    Task {
        /// The waking task's number.
        by: u64,
    },
    /// It woke itself during its own poll (`yield_now`, or a spent
    /// budget: `runtime::TASK_BUDGET`), and was still
    /// pending when the poll ended: the wake is recorded then. (One that
    /// finished in that poll did not yield, and its wake is dropped.)
    Yield,
    /// A wake from another thread (a blocking-pool job, a user thread).
    Remote,
    /// Anything else: a wake outside any task poll, timer or I/O event
    /// (for example from a destructor during shutdown).
    Other,
}

impl WakeReason {
    /// How many kinds of reason there are.
    pub(crate) const KINDS: usize = 7;

    /// The short names of the kinds, in the order of [`kind`](Self::kind).
    const NAMES: [&'static str; Self::KINDS] =
        ["spawn", "io", "timer", "task", "yield", "remote", "other"];

    /// The reason's kind, its details left out, as a number below
    /// [`KINDS`](Self::KINDS): the one place that lists the kinds in
    /// order, for [`name`](Self::name) and for the executor's tally of wakes
    /// by kind (`Metrics::wakes`).
    #[inline]
    pub(crate) fn kind(&self) -> usize {
        match self {
            WakeReason::Spawn => 0,
            WakeReason::Io { .. } => 1,
            WakeReason::Timer => 2,
            WakeReason::Task { .. } => 3,
            WakeReason::Yield => 4,
            WakeReason::Remote => 5,
            WakeReason::Other => 6,
        }
    }

    /// A short name for tables and traces.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.kind()]
    }
}

/// One thing that happened, with times in microseconds since the runtime
/// was built.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A task was spawned.
    Spawn {
        /// The task's number (unique in this runtime).
        task: u64,
        /// Its name, if it was given one.
        name: Option<String>,
        /// Where `spawn` was called.
        location: String,
        /// When.
        at_us: u64,
    },
    /// A task was polled once.
    Poll {
        /// The task's number.
        task: u64,
        /// When the poll began.
        start_us: u64,
        /// When it returned.
        end_us: u64,
    },
    /// A task was queued, and why.
    Wake {
        /// The task's number.
        task: u64,
        /// What woke it.
        reason: WakeReason,
        /// When.
        at_us: u64,
    },
    /// A task finished (completed, panicked or was cancelled).
    Finish {
        /// The task's number.
        task: u64,
        /// When.
        at_us: u64,
    },
    /// The loop waited in `mio::Poll` (with a non-zero timeout).
    Park {
        /// When the wait began.
        start_us: u64,
        /// When `mio::Poll` returned: before the reactor woke the tasks
        /// of the events it brought, which is work, not waiting.
        end_us: u64,
    },
    /// A blocking-pool thread ran a job.
    Blocking {
        /// The pool thread's number.
        thread: usize,
        /// The number of the task that awaits the job: the one behind
        /// `spawn_blocking`'s `JoinHandle` (its [`Event::Spawn`] is named
        /// `spawn_blocking` unless the caller named it).
        task: u64,
        /// When the job started.
        start_us: u64,
        /// When it ended.
        end_us: u64,
    },
}

/// The recorder, owned by the runtime while tracing is on.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Time zero of the trace.
    origin: Instant,
    /// Events from the loop's thread.
    events: RefCell<Vec<Event>>,
    /// Events from blocking-pool threads, which cannot touch `events`.
    remote: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            origin: Instant::now(),
            events: RefCell::new(Vec::new()),
            remote: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Microseconds from the trace's origin to `at`.
    pub(crate) fn us(&self, at: Instant) -> u64 {
        micros_since(self.origin, at)
    }

    pub(crate) fn record(&self, event: Event) {
        self.events.borrow_mut().push(event);
    }

    /// Records a spawn.
    pub(crate) fn spawn(&self, task: u64, name: Option<&str>, location: &Location<'_>) {
        self.record(Event::Spawn {
            task,
            name: name.map(str::to_owned),
            location: location.to_string(),
            at_us: self.us(Instant::now()),
        });
    }

    /// What a blocking-pool thread needs to record its jobs.
    pub(crate) fn remote_sink(&self) -> (Instant, Arc<Mutex<Vec<Event>>>) {
        (self.origin, self.remote.clone())
    }

    /// A copy of everything recorded so far, in time order.
    pub(crate) fn snapshot(&self) -> Trace {
        let mut events = self.events.borrow().clone();
        events.extend(
            self.remote
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        events.sort_by_key(Event::start_us);
        Trace { events }
    }
}

/// Microseconds from `origin` to `at` (zero if `at` is earlier).
pub(crate) fn micros_since(origin: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin).as_micros()).unwrap_or(u64::MAX)
}

impl Event {
    /// When the event (or its span) began.
    pub fn start_us(&self) -> u64 {
        match *self {
            Event::Spawn { at_us, .. }
            | Event::Wake { at_us, .. }
            | Event::Finish { at_us, .. } => at_us,
            Event::Poll { start_us, .. }
            | Event::Park { start_us, .. }
            | Event::Blocking { start_us, .. } => start_us,
        }
    }

    /// When the event (or its span) ended; an instant event's end is its
    /// start.
    pub fn end_us(&self) -> u64 {
        match *self {
            Event::Poll { end_us, .. }
            | Event::Park { end_us, .. }
            | Event::Blocking { end_us, .. } => end_us,
            ref other => other.start_us(),
        }
    }
}

/// A recorded timeline, from [`Runtime::trace`](crate::Runtime::trace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every event, ordered by start time.
    pub events: Vec<Event>,
}

impl Trace {
    /// The trace as Chrome trace-event JSON (the "JSON Object Format": a
    /// `traceEvents` array plus metadata), for Perfetto or `chrome://tracing`.
    pub fn to_chrome_json(&self) -> String {
        chrome::render(self)
    }

    /// The trace as an SVG timing diagram titled `title` (see
    /// [`Trace::to_diagram`]).
    pub fn to_svg(&self, title: &str) -> String {
        self.to_diagram().to_svg(title)
    }

    /// The time from the first event to the last.
    pub fn duration(&self) -> Duration {
        let end = self.events.iter().map(Event::end_us).max().unwrap_or(0);
        let start = self.events.first().map_or(0, Event::start_us);
        Duration::from_micros(end.saturating_sub(start))
    }

    /// The name to show for `task`: its given name, or `task N`.
    pub fn task_label(&self, task: u64) -> String {
        let name = self.events.iter().find_map(|e| match e {
            Event::Spawn { task: t, name, .. } if *t == task => Some(name.as_deref()),
            _ => None,
        });
        label(task, name.flatten())
    }
}

/// How every view names a task: by its given name, or as `task N`. The
/// renderers call it as they meet each spawn, rather than
/// [`Trace::task_label`], which searches the whole trace.
pub(super) fn label(task: u64, name: Option<&str>) -> String {
    name.map_or_else(|| format!("task {task}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Builder::trace` tells what a trace costs in memory from this size:
    /// a new field that grows `Event` must update that doc too.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_event_is_the_64_bytes_builder_trace_says() {
        assert_eq!(std::mem::size_of::<Event>(), 64);
    }
}
