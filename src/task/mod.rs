//! Tasks: spawned futures, their identity, wakers and join handles.
//!
//! A *task* is a future handed to [`spawn`]. The executor owns it, polls it
//! whenever its waker fires, and keeps its output for the [`JoinHandle`].
//! Tasks are Rust's stackless coroutines: all the state a task keeps across
//! an `.await` lives inside the future value, and "switching tasks" is
//! returning from one `poll` and calling the next.
//!
//! - [`id`](mod@id): how a slot in the slab is named safely (key + generation),
//!   and a task's public number, [`Id`].
//! - [`waker`]: `std::task::Wake`, and the two roads to the run queue.
//! - [`cell`]: the task's life cycle and the state it shares with its handle.
//! - [`join`]: `JoinHandle` and `JoinError`.
//! - [`abort`]: `AbortHandle`, the right to cancel a task without the
//!   right to await it.
//! - [`join_set`]: `JoinSet`, a set of tasks that it owns, joined in the
//!   order they finish.
//! - [`budget`]: the cooperative budget, by hand: `consume_budget` and
//!   `unconstrained`.

mod abort;
mod budget;
pub(crate) mod cell;
pub(crate) mod id;
pub(crate) mod join;
mod join_set;
pub(crate) mod waker;
mod yield_now;

pub use abort::AbortHandle;
pub(crate) use budget::{budget_left, poll_proceed};
pub use budget::{consume_budget, unconstrained};
pub use id::Id;
pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use yield_now::yield_now;

use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use crate::runtime::context;
use crate::runtime::{Handle, RemoteJoinHandle};

/// Spawns a task on the current runtime and returns its [`JoinHandle`].
///
/// The future needs no `Send` bound: tasks never leave the loop's thread, as
/// in Python's asyncio, so they may hold `Rc` and `RefCell` freely. The task
/// starts on one of the loop's next turns, not inside `spawn`.
///
/// # Panics
/// If called outside a `coop` runtime (outside `block_on`, and not under
/// the guard of [`Runtime::enter`](crate::Runtime::enter), whose spawns
/// run at the runtime's next `block_on`). A destructor
/// run while a runtime is dropped may still spawn on it: that task is
/// dropped with the others, never polled.
///
/// ```
/// coop::block_on(async {
///     let a = coop::spawn(async { 1 });
///     let b = coop::spawn(async { 2 });
///     assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    spawn_named(future, None, Location::caller())
}

/// The [`Id`] of the task being polled.
///
/// Inside a task's destructor too, when the task returns or an abort
/// cancels it: both drop its future in the task's own turn.
///
/// # Panics
/// Outside a task: outside every runtime, in the future given to
/// `block_on` (which is not a task, as in tokio), and in a task's
/// destructor when its runtime drops it, or after it panicked (both drop
/// the future outside the task's turn). [`try_id`] says `None` instead.
#[track_caller]
pub fn id() -> Id {
    try_id().expect("coop::task::id called outside of a task")
}

/// The [`Id`] of the task being polled, or `None` outside a task (see
/// [`id`](id())).
///
/// ```
/// coop::block_on(async {
///     assert_eq!(coop::task::try_id(), None); // the block_on future
///     let inside = coop::spawn(async { coop::task::try_id() });
///     assert!(inside.await.unwrap().is_some());
/// });
/// assert_eq!(coop::task::try_id(), None); // no runtime
/// ```
pub fn try_id() -> Option<Id> {
    let running = context::with_current(|core| core.reactor.running()).flatten()?;
    let task = running.task();
    (task.key != id::TaskId::MAIN_KEY).then(|| Id::new(task.generation))
}

/// `#[track_caller]`, and the panic outside any closure, so that a spawn
/// outside a runtime is reported at the caller's line, not at this one.
#[track_caller]
fn spawn_named<F>(
    future: F,
    name: Option<String>,
    location: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    // The runtime is taken out of the thread-local before `future` is
    // touched. Moved into `with_current`'s closure, the future was dropped
    // (no runtime, no call) while the thread-local was borrowed: a
    // destructor that used coop there (a `block_on`) hit that borrow, and
    // the process aborted on the second panic, in the runtime's drop.
    let Some(core) = context::with_current(Rc::clone) else {
        // Dropped before the panic, not by it: a destructor that panics
        // too (a `spawn` of its own) then panics once, not twice.
        drop(future);
        panic!(
            "coop::spawn called outside of a coop runtime: \
             spawn tasks from inside coop::block_on (or Runtime::block_on), \
             or under the guard of Runtime::enter"
        )
    };
    core.executor.spawn(future, name, location).1
}

/// Spawns tasks with a name, which shows in slow-poll warnings and traces:
/// on the current runtime ([`spawn`](Builder::spawn)), on the blocking pool
/// ([`spawn_blocking`](Builder::spawn_blocking)), or on a runtime reached
/// from any thread through its [`Handle`] ([`spawn_on`](Builder::spawn_on),
/// or [`spawn_with_on`](Builder::spawn_with_on) to build the future there).
///
/// ```
/// coop::block_on(async {
///     let handle = coop::task::Builder::new()
///         .name("download-3")
///         .spawn(async { "done" });
///     assert_eq!(handle.await.unwrap(), "done");
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    /// The name to give the next task.
    name: Option<String>,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Spawns `future` as [`spawn`] does.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        spawn_named(future, self.name, Location::caller())
    }

    /// Spawns `future` onto `handle`'s runtime, from any thread, as
    /// [`Handle::spawn`] does, with this builder's name: it shows in the
    /// trace, the SVG's lanes and slow-poll warnings as a local task's
    /// does. The arguments come in tokio's order: the future, then the
    /// handle.
    ///
    /// ```
    /// let rt = coop::Runtime::new().unwrap();
    /// let handle = rt.handle();
    /// let task = std::thread::spawn(move || {
    ///     coop::task::Builder::new()
    ///         .name("from-a-thread")
    ///         .spawn_on(async { 6 * 7 }, &handle)
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(rt.block_on(task).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn_named(move || future, self.name, Location::caller())
    }

    /// Builds a future on `handle`'s loop thread and spawns it there, as
    /// [`Handle::spawn_with`] does (for a future that is not `Send`: one
    /// that holds coop sockets), with this builder's name.
    ///
    /// ```
    /// let rt = coop::Runtime::new().unwrap();
    /// let handle = rt.handle();
    /// let task = std::thread::spawn(move || {
    ///     coop::task::Builder::new()
    ///         .name("listener")
    ///         .spawn_with_on(|| async {
    ///             let listener = coop::net::TcpListener::bind("127.0.0.1:0")?;
    ///             listener.local_addr()
    ///         }, &handle)
    /// })
    /// .join()
    /// .unwrap();
    /// assert!(rt.block_on(task).unwrap().is_ok());
    /// ```
    #[track_caller]
    pub fn spawn_with_on<M, F>(self, make: M, handle: &Handle) -> RemoteJoinHandle<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn_named(make, self.name, Location::caller())
    }

    /// Runs `f` on the blocking pool as [`spawn_blocking`](crate::spawn_blocking) does.
    #[track_caller]
    pub fn spawn_blocking<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::blocking::spawn_blocking_named(f, self.name, Location::caller())
    }
}
