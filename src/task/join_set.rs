//! [`JoinSet`]: a set of tasks that it owns, handed back in the order they
//! finish.
//!
//! # Why a set that aborts on drop
//!
//! A [`JoinHandle`] is a permission to await a task, not ownership of it:
//! drop the handle and the task runs on, detached. For a task meant to
//! outlive its spawner (a connection's handler) that is right. For work
//! fanned out by one function and gathered back by it, it leaks. Let the
//! function return early (an error after the first result, a timeout
//! around it, or its own task aborted) and the handles it held are
//! dropped while their tasks keep running, with nobody left to await
//! them.
//!
//! *Structured concurrency* (Trio's nurseries, Kotlin's coroutine scopes)
//! says a task should not outlive the code that started it. A `JoinSet` is
//! the small step towards that which a library type can take: the set owns
//! its tasks, and dropping it aborts every task still running. It is not
//! the whole rule. `Drop` cannot await, so the set aborts its tasks but
//! does not wait for them: each is cancelled when the loop next reaches
//! it, and its destructors run then. A task can still be let go on purpose
//! ([`detach_all`](JoinSet::detach_all)). And [`shutdown`](JoinSet::shutdown)
//! is the awaited version of the drop, for code that must know the tasks
//! are gone before it goes on.
//!
//! # Why `FuturesUnordered`
//!
//! Awaiting "whichever handle finishes first" over a `Vec` of handles polls
//! every handle at every wake: O(n) per result, O(n²) to gather n. The
//! `futures` crate's [`FuturesUnordered`] gives each future it holds a
//! waker of its own, which puts that future on a ready queue and then wakes
//! the task that polls the set. A poll of the set polls only the queued
//! futures. A handle is woken once, when its task finishes (or is
//! cancelled), so [`join_next`](JoinSet::join_next) polls one handle per
//! result, and results come out in the order the tasks finished.
//!
//! One cost comes with it: a pass that polled every future in the set
//! without a result wakes the polling task again before it returns
//! `Pending` (so that a large set cannot hold the loop), which costs the
//! awaiting task one extra poll after a batch of spawns.
//!
//! # Where it differs from tokio's
//!
//! The names and the meaning follow `tokio::task::JoinSet`. As in tokio,
//! `spawn` (and `spawn_on`, `spawn_blocking`) returns an [`AbortHandle`]:
//! the set keeps the `JoinHandle`, and the caller may cancel that one task
//! with the handle (it then comes out of [`join_next`](JoinSet::join_next)
//! as a cancelled [`JoinError`]) or drop the handle, which changes
//! nothing. Unlike tokio's, the handle is not `Send`, as no local handle
//! is. `spawn_on` takes a [`Runtime`], whose [`spawn`](Runtime::spawn) returns a local
//! `JoinHandle` (a [`Handle`](crate::runtime::Handle)'s tasks come back as
//! `RemoteJoinHandle`s and cannot join this set). There is no
//! `spawn_local`: coop's `spawn` takes futures that are not `Send`
//! already.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::stream::{FuturesUnordered, StreamExt};

use super::{AbortHandle, Id, JoinError, JoinHandle};
use crate::runtime::Runtime;

/// A collection of spawned tasks, owned by the set, whose results come
/// back in the order the tasks finish.
///
/// Dropping the set aborts every task still in it: each is cancelled
/// when the loop next reaches it (its future is dropped, running its
/// destructors). The output of a task that finished and was not taken is
/// dropped with the set.
///
/// ```
/// use coop::task::JoinSet;
/// use std::time::Duration;
///
/// coop::block_on(async {
///     let mut set = JoinSet::new();
///     for ms in [30, 10, 20] {
///         set.spawn(async move {
///             coop::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut sum = 0;
///     while let Some(result) = set.join_next().await {
///         sum += result.unwrap();
///     }
///     assert_eq!(sum, 60);
///     assert!(set.is_empty());
/// });
/// ```
pub struct JoinSet<T> {
    /// The handles of the tasks still in the set. A handle leaves it when
    /// its result is returned (or when the set is emptied by
    /// [`detach_all`](Self::detach_all)). Each handle is polled only when
    /// its own task has woken it.
    tasks: FuturesUnordered<WithId<T>>,
    /// The waker of the last [`poll_join_next`](Self::poll_join_next) that
    /// returned `Pending`. [`try_join_next`](Self::try_join_next) has no
    /// waker of its own, but polling the set registers one: given a waker
    /// that wakes nobody, it would replace this one, and the task that was
    /// promised a wake by `poll_join_next` would never get it.
    waker: Option<Waker>,
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: FuturesUnordered::new(),
            waker: None,
        }
    }

    /// How many tasks are in the set: running, or finished with a result
    /// not yet taken.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns `future` on the current runtime, as [`coop::spawn`](crate::spawn)
    /// does, and keeps its handle in the set. The spawn is recorded (in
    /// traces and slow-poll warnings) at the caller's line.
    ///
    /// Returns an [`AbortHandle`] for this one task: aborted, the task
    /// stays in the set and comes out of [`join_next`](Self::join_next) as
    /// a cancelled [`JoinError`] (or with its output, if it had finished).
    /// Dropping the handle does nothing.
    ///
    /// ```
    /// coop::block_on(async {
    ///     let mut set = coop::task::JoinSet::new();
    ///     let stuck = set.spawn(std::future::pending::<u32>());
    ///     stuck.abort();
    ///     let result = set.join_next().await.unwrap();
    ///     assert!(result.unwrap_err().is_cancelled());
    /// });
    /// ```
    ///
    /// # Panics
    /// If called outside a `coop` runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::spawn(future))
    }

    /// Keeps `handle` in the set and returns an abort handle for its task.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        self.tasks.push(WithId(handle));
        abort
    }

    /// Spawns `future` on `runtime` from outside it, as [`Runtime::spawn`]
    /// does: the task runs when a `block_on` on that runtime next runs the
    /// loop. A set can thus be filled before the loop starts.
    ///
    /// ```
    /// let rt = coop::Runtime::new().unwrap();
    /// let mut set = coop::task::JoinSet::new();
    /// for i in 1..=3 {
    ///     set.spawn_on(async move { i * 10 }, &rt);
    /// }
    /// let mut all = rt.block_on(set.join_all());
    /// all.sort();
    /// assert_eq!(all, [10, 20, 30]);
    /// ```
    ///
    /// Returns an [`AbortHandle`] for the task, as [`spawn`](Self::spawn)
    /// does.
    #[track_caller]
    pub fn spawn_on<F>(&mut self, future: F, runtime: &Runtime) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(runtime.spawn(future))
    }

    /// Runs `f` on the blocking pool, as [`coop::spawn_blocking`](crate::spawn_blocking)
    /// does, and keeps its handle in the set.
    ///
    /// Aborting it (by the returned [`AbortHandle`], by
    /// [`abort_all`](Self::abort_all) or by dropping the set) cancels the
    /// wait for the result, not the closure: a closure that has started
    /// runs to its end on its pool thread, and its result is dropped.
    ///
    /// # Panics
    /// If called outside a `coop` runtime.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        self.insert(crate::spawn_blocking(f))
    }

    /// Waits until a task of the set finishes and returns its result,
    /// removing the task from the set; `None` at once if the set is
    /// empty. Results come in the order the tasks finish: `Err` for a task
    /// that panicked or was cancelled (its [`id`](JoinError::id) says
    /// which).
    ///
    /// Cancel safe: if this future is dropped before it is ready (the
    /// losing branch of a `select!`), no task has left the set.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// As [`join_next`](Self::join_next), with the [`Id`] of the task
    /// beside its output: the id of the [`AbortHandle`] that
    /// [`spawn`](Self::spawn) returned, so that a result can be matched
    /// to the task it came from. (An error names its task by
    /// [`JoinError::id`].)
    ///
    /// ```
    /// coop::block_on(async {
    ///     let mut set = coop::task::JoinSet::new();
    ///     let first = set.spawn(async { "first" }).id();
    ///     let (id, output) = set.join_next_with_id().await.unwrap().unwrap();
    ///     assert_eq!((id, output), (first, "first"));
    /// });
    /// ```
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// Polls for the next task to finish, as [`join_next`](Self::join_next)
    /// awaits it: `Ready(Some(result))` removes that task from the set,
    /// `Ready(None)` means the set is empty, and `Pending` means the waker
    /// of `cx` will be woken when a task finishes. Only the waker of the
    /// latest call is kept.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx).map(without_id)
    }

    /// As [`poll_join_next`](Self::poll_join_next), with the task's [`Id`]
    /// beside its output (see [`join_next_with_id`](Self::join_next_with_id)).
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        let next = self.tasks.poll_next_unpin(cx);
        if next.is_pending() {
            match &self.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => self.waker = Some(cx.waker().clone()),
            }
        }
        next
    }

    /// The result of a task that has finished, without waiting: `None` if
    /// no task has finished (or the set is empty).
    ///
    /// It polls the handles whose tasks woke them, under the waker of the
    /// last [`poll_join_next`](Self::poll_join_next), so that the task it
    /// promised a wake still gets one.
    ///
    /// The budget does not hold a result back here, as it does in
    /// `join_next` (each finished handle spends a unit): a function that is
    /// not `async` cannot yield, and with the unit refused it would say
    /// `None`, "no task has finished", when one has. tokio's polls its
    /// handles unconstrained too.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        without_id(self.try_join_next_with_id())
    }

    /// As [`try_join_next`](Self::try_join_next), with the task's [`Id`]
    /// beside its output (see [`join_next_with_id`](Self::join_next_with_id)).
    pub fn try_join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        let _lifted = super::budget::Unconstrained::lift();
        let waker = self.waker.as_ref().unwrap_or(Waker::noop());
        match self.tasks.poll_next_unpin(&mut Context::from_waker(waker)) {
            Poll::Ready(result) => result,
            Poll::Pending => None,
        }
    }

    /// Aborts every task and waits until all have left the set, ignoring
    /// their results (panics included). The set is empty when this
    /// returns. A task that finished before its abort came is simply
    /// dropped with its output.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs, in the order the
    /// tasks finished.
    ///
    /// # Panics
    /// As tokio's does: if a task panicked, with that task's panic
    /// (resumed, so its message and payload are the task's); if a task
    /// was cancelled, with the `JoinError`'s message ("task 7 was
    /// cancelled"). The panic drops the set, which aborts the tasks still
    /// in it. To handle errors otherwise, call
    /// [`join_next`](Self::join_next) in a loop.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some(result) = self.join_next().await {
            match result {
                Ok(output) => outputs.push(output),
                Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("{e}"),
            }
        }
        outputs
    }
}

impl<T> JoinSet<T> {
    /// Aborts every task in the set (see [`JoinHandle::abort`]). The tasks
    /// stay in the set: each comes out of [`join_next`](Self::join_next)
    /// as a cancelled [`JoinError`], or with its output if it had finished
    /// before the abort.
    pub fn abort_all(&mut self) {
        for WithId(handle) in self.tasks.iter() {
            handle.abort();
        }
    }

    /// Empties the set without aborting anything: the tasks run on,
    /// detached, as if each `JoinHandle` had been dropped.
    pub fn detach_all(&mut self) {
        self.tasks.clear();
    }
}

/// A handle in the set: a future of its task's result with the task's
/// [`Id`] beside the output, so that the `_with_id` methods are the only
/// road out of the set and the others drop the id (see [`without_id`]).
/// An error carries the id already: [`JoinHandle`] stamps it.
struct WithId<T>(JoinHandle<T>);

impl<T> Future for WithId<T> {
    type Output = Result<(Id, T), JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.0.id();
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|result| result.map(|output| (id, output)))
    }
}

/// A `_with_id` result as its plain method returns it.
fn without_id<T>(next: Option<Result<(Id, T), JoinError>>) -> Option<Result<T, JoinError>> {
    next.map(|result| result.map(|(_, output)| output))
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

/// Aborts every task still in the set. The handles are dropped after this
/// (with the set's fields), and with them the outputs of tasks that had
/// finished and were never taken.
impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

/// Spawns each future, as [`JoinSet::spawn`] does.
impl<T: 'static, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    #[track_caller]
    fn extend<I: IntoIterator<Item = F>>(&mut self, futures: I) {
        // A `for` loop, not `for_each`: a closure would end the
        // `#[track_caller]` chain, and every spawn would be recorded here.
        for future in futures {
            self.spawn(future);
        }
    }
}

/// Collects futures into a set, spawning each, as [`JoinSet::spawn`]
/// does. `collect` is not `#[track_caller]`, so the caller's line cannot
/// reach these spawns: they are recorded at a line of this file. Use
/// [`extend`](Extend::extend) on a new set to record the caller's.
impl<T: 'static, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn from_iter<I: IntoIterator<Item = F>>(futures: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        set.extend(futures);
        set
    }
}
