//! [`Handle`]: spawning onto a loop from another thread (the injection
//! queue).
//!
//! `coop::spawn` works only on the loop's own thread: the task slab and the
//! run queue are plain `RefCell`s that nothing else may touch. But work
//! sometimes starts elsewhere: a blocking-pool job that wants a reply sent
//! over a socket, a thread that reads a terminal, a test's main thread
//! feeding a server. Every multi-threaded runtime answers with an
//! *injection queue*: a locked queue that any thread may push a future
//! onto, and that the loop empties into its own structures at a moment of
//! its choosing.
//!
//! ```text
//!  any thread                               loop thread
//!  ──────────                               ───────────
//!  handle.spawn(fut)                        step 4 of a turn:
//!    box it, push it on Remote's ──────────▶  take the queue (one lock),
//!    injection queue (a Mutex<Vec>)           spawn each future locally:
//!    first push? mio::Waker (eventfd) ─────▶  slab slot, run queue
//!  RemoteJoinHandle (Send) ◀── oneshot ───── the task's result
//! ```
//!
//! It is the road a cross-thread wake already takes (`task::waker`), with a
//! future in the box instead of a task id: the same `pending` flag, so the
//! usual turn still pays one atomic load for both; the same `mio::Waker`,
//! so a loop asleep in `epoll_wait` wakes up for a spawn. asyncio's
//! `run_coroutine_threadsafe` is the same idea, with a
//! `concurrent.futures.Future` where we have a [`RemoteJoinHandle`].
//!
//! What crosses threads must be `Send`: the future, its output, and the
//! handle. So [`Handle::spawn`] asks for `F: Send` where [`crate::spawn`]
//! does not; [`Handle::spawn_with`] sends a `Send` closure instead, which
//! builds the future on the loop's thread, for the futures that hold
//! coop's own sockets (not `Send`). Both return a [`RemoteJoinHandle`] whose state sits behind
//! atomics and a `futures::channel::oneshot` instead of the task's `Rc`
//! cell. Its cancellation is a `futures::future::AbortHandle`: aborting
//! sets a flag and wakes the task, which sees the flag at its next poll.
//! A task that sees the flag before it polls its future tells the
//! executor that this turn was no poll (`Executor::poll_was_none`), so
//! that its cancellation counts no poll, as a local task's does (and a
//! task aborted before it ran counts none at all).
//!
//! A remote task can be named, as a local one is, with
//! [`task::Builder::spawn_on`](crate::task::Builder::spawn_on); named or
//! not, its spawn location is the line that called `spawn` or `spawn_on`.
//!
//! A runtime that is dropped closes its queue: futures still in it are
//! dropped, a later `spawn` drops its future at once, and each of their
//! handles says cancelled, so nobody waits for a loop that will never run.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable, Aborted};

use super::context;
use super::executor::{Executor, TASK_DROP, drop_quietly};
use crate::task::join::Failure;
use crate::task::waker::Remote;
use crate::task::{Id, JoinError};

/// A future on its way to a loop: a closure that, run on the loop's thread,
/// spawns it there.
pub(crate) type Injected = Box<dyn FnOnce(&Executor) + Send + 'static>;

/// The injection queue's contents, under one lock with the flag that says
/// whether the loop still exists: a `spawn` that checks the flag and
/// pushes cannot slip in between the runtime's close and its last drain.
#[derive(Default)]
pub(crate) struct Injector {
    /// Set when the runtime is dropped; from then on nothing is queued.
    pub(crate) closed: bool,
    /// Futures not yet taken in by the loop, oldest first.
    pub(crate) queue: Vec<Injected>,
}

impl fmt::Debug for Injector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("closed", &self.closed)
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// A way to reach a runtime from any thread: `Send`, `Sync` and cheap to
/// clone (one `Arc`). Get one with [`Runtime::handle`](super::Runtime::handle)
/// or, inside a task, [`Handle::current`].
///
/// ```
/// let rt = coop::Runtime::new().unwrap();
/// let handle = rt.handle();
/// let (tx, rx) = futures::channel::oneshot::channel();
/// let worker = std::thread::spawn(move || {
///     // On another thread: the future runs on `rt`'s loop.
///     let answer = handle.spawn(async { 6 * 7 });
///     tx.send(futures::executor::block_on(answer).unwrap()).unwrap();
/// });
/// // The loop runs while block_on does.
/// assert_eq!(rt.block_on(rx).unwrap(), 42);
/// worker.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Handle {
    /// The runtime's thread-safe part, shared with every waker: the
    /// injection queue lives there beside the remote-wake queue.
    remote: Arc<Remote>,
}

impl Handle {
    pub(crate) fn new(remote: Arc<Remote>) -> Handle {
        Handle { remote }
    }

    /// The handle of the current runtime: the one whose loop runs this
    /// code, or the one entered with [`Runtime::enter`](super::Runtime::enter).
    ///
    /// # Panics
    /// Outside a `coop` runtime (a blocking-pool job is outside: take the
    /// handle before `spawn_blocking` and move it in).
    #[track_caller]
    pub fn current() -> Handle {
        match context::with_current(|core| Handle::new(core.executor.remote.clone())) {
            Some(handle) => handle,
            None => panic!("coop::runtime::Handle::current called outside a coop runtime"),
        }
    }

    /// Spawns `future` as a task of this handle's runtime, from any thread.
    ///
    /// The future is queued and taken in by the loop at its next turn (the
    /// loop is woken if it sleeps); if the runtime's loop is not running
    /// (no `block_on` at the moment), the task waits for the next one, as
    /// with [`Runtime::spawn`](super::Runtime::spawn). If the runtime has
    /// been dropped, the future is dropped here and the handle says
    /// cancelled.
    ///
    /// A panic in the task goes to the returned handle (`is_panic`), as a
    /// spawned task's does.
    ///
    /// The task is unnamed; its spawn location, in traces and slow-poll
    /// warnings, is the caller's line (`#[track_caller]`), as with
    /// [`coop::spawn`](crate::spawn). To name it, use
    /// [`task::Builder::spawn_on`](crate::task::Builder::spawn_on).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_named(move || future, None, Location::caller())
    }

    /// Spawns the future that `make` builds, building it on the runtime's
    /// own thread: for work whose future cannot cross threads, which is
    /// most work with coop's own types (a `TcpStream`, a `JoinHandle` and
    /// a `Sleep` hold `Rc`s, so a future that holds one across an `.await`
    /// is not `Send`, and [`spawn`](Self::spawn) refuses it). Only `make`
    /// and the output travel between threads. (tokio-util's
    /// `LocalPoolHandle::spawn_pinned` has this shape.)
    ///
    /// Everything else is as with `spawn`: queued, taken in at the loop's
    /// next turn, cancelled if the runtime is gone, and abortable through
    /// the returned handle, which reaches the future `make` built. A panic
    /// in `make` itself is the task's panic: the handle says `is_panic`,
    /// and the loop goes on.
    ///
    /// ```
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = coop::Runtime::new().unwrap();
    /// let handle = rt.handle();
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let peer = std::thread::spawn(move || {
    ///     use std::io::{Read, Write};
    ///     let (mut s, _) = listener.accept().unwrap();
    ///     let mut buf = [0u8; 4];
    ///     s.read_exact(&mut buf).unwrap();
    ///     s.write_all(&buf).unwrap();
    /// });
    /// // From another thread, a task that owns a coop socket:
    /// let (answer_tx, answer_rx) = futures::channel::oneshot::channel();
    /// let asker = std::thread::spawn(move || {
    ///     let echoed = handle.spawn_with(move || async move {
    ///         let mut stream = coop::net::TcpStream::connect(addr).await?;
    ///         stream.write_all(b"ping").await?;
    ///         let mut buf = [0u8; 4];
    ///         stream.read_exact(&mut buf).await?;
    ///         Ok::<_, std::io::Error>(buf)
    ///     });
    ///     let buf = futures::executor::block_on(echoed).unwrap().unwrap();
    ///     answer_tx.send(buf).unwrap();
    /// });
    /// // The loop runs (and the task with it) while block_on does.
    /// assert_eq!(&rt.block_on(answer_rx).unwrap(), b"ping");
    /// asker.join().unwrap();
    /// peer.join().unwrap();
    /// ```
    #[track_caller]
    pub fn spawn_with<M, F>(&self, make: M) -> RemoteJoinHandle<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_named(make, None, Location::caller())
    }

    /// The spawn behind [`spawn`](Self::spawn), [`spawn_with`](Self::spawn_with)
    /// and `task::Builder::spawn_on`: `make` builds the future on the loop's
    /// thread, `name` (from `task::Builder`) and the caller's location go
    /// with it. The name travels to the loop inside the queued closure; no
    /// name, no allocation for it (as with a local spawn).
    pub(crate) fn spawn_named<M, F>(
        &self,
        make: M,
        name: Option<String>,
        location: &'static Location<'static>,
    ) -> RemoteJoinHandle<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let (abort, registration) = AbortHandle::new_pair();
        let status = Arc::new(Status {
            finished: AtomicBool::new(false),
            id: AtomicU64::new(0),
        });
        let reply = Reply {
            tx: Some(tx),
            status: status.clone(),
        };
        let loop_status = status.clone();
        let task = move |future: F, reply: Reply<F::Output>| async move {
            // Boxed, so that it can be dropped before the result is sent
            // (a handle that sees "cancelled" knows the future is gone),
            // and inside a catch of its own: a destructor that panics
            // after the future returned is the task's panic, as it is for
            // a local task (`TaskCell::fail`), not an unwinding that would
            // drop `reply` unsent and make the handle say cancelled.
            let mut future = Box::pin(Abortable::new(future, registration));
            let polled = std::future::poll_fn(|cx| {
                if future.is_aborted() {
                    // Aborted since the last poll (or before the first):
                    // the future is dropped without a poll, and this turn
                    // is no poll of the task, as a local task's
                    // cancellation is none (`Ran::NotPolled`):
                    // `Metrics::polls`, the trace and the slow-poll check
                    // do not count it. (`Abortable` would see the flag
                    // too, but inside what the executor counts as a poll.)
                    context::with_current(|core| core.executor.poll_was_none());
                    return Poll::Ready(Ok(Err(Aborted)));
                }
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                    Err(payload) => Poll::Ready(Err(payload)),
                }
            })
            .await;
            let result = match polled {
                Ok(Ok(output)) => match catch_unwind(AssertUnwindSafe(move || drop(future))) {
                    Ok(()) => Ok(output),
                    Err(payload) => {
                        drop_quietly(TASK_DROP, move || drop(output));
                        Err(Failure::panic(payload))
                    }
                },
                // As an aborted local task: a panic in the drop the abort
                // asked for is logged, and the task was still cancelled.
                Ok(Err(Aborted)) => {
                    drop_quietly(TASK_DROP, move || drop(future));
                    Err(Failure::Cancelled)
                }
                // The first panic is the task's; one in the destructor
                // after it is logged (so does `Executor::retire`).
                Err(payload) => {
                    drop_quietly(TASK_DROP, move || drop(future));
                    Err(Failure::panic(payload))
                }
            };
            if result.as_ref().is_err_and(Failure::is_panic) {
                log::debug!(
                    "a task spawned through a Handle panicked; the panic goes to its handle"
                );
            }
            reply.send(result);
        };
        let injected: Injected = Box::new(move |executor: &Executor| {
            // The future is built here, on the loop's thread. A panic in
            // `make` must not unwind the loop: it is the task's panic.
            match catch_unwind(AssertUnwindSafe(make)) {
                Ok(future) => {
                    // Detached at once: the result travels through `reply`.
                    let (number, _) = executor.spawn(task(future, reply), name, location);
                    // The task's id exists from here on, before the task
                    // can run (it is only queued): every result it sends,
                    // or its reply's drop, comes after this store, and the
                    // channel orders the two for the handle's thread.
                    loop_status.id.store(number, Ordering::Release);
                }
                // No task was made, so there is no id to give the error.
                Err(payload) => reply.send(Err(Failure::panic(payload))),
            }
        });
        if let Err(refused) = self.remote.inject(injected) {
            // The runtime is gone. Dropping the closure drops the future
            // and `reply`, whose sender's drop tells the handle.
            drop_quietly("a future spawned on a dropped runtime", move || {
                drop(refused)
            });
        }
        RemoteJoinHandle {
            rx,
            abort,
            status,
            returned: false,
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("runtime", &self.remote.runtime_id)
            .finish()
    }
}

/// What the loop tells a [`RemoteJoinHandle`] besides the result.
struct Status {
    /// Set when the task has finished, however it ended (see `Reply`'s
    /// drop).
    finished: AtomicBool,
    /// The task's id (its generation), 0 until the loop has taken the
    /// spawn in and made it a task; stays 0 if it never does (the runtime
    /// was dropped first, or `make` panicked). The channel carries only
    /// an id-less `Failure`, as a local task's cell stores one: the handle
    /// reads the id here when it hands out the `JoinError`, and it is
    /// known even when the task is dropped unpolled, with no result sent.
    id: AtomicU64,
}

/// The task's end of a [`RemoteJoinHandle`]: the result's sender and the
/// "finished" flag. Dropped without sending (the task was dropped with its
/// runtime, or never reached a loop), it still marks the task finished,
/// and the sender's drop tells the handle it was cancelled.
struct Reply<T> {
    tx: Option<oneshot::Sender<Result<T, Failure>>>,
    status: Arc<Status>,
}

impl<T> Reply<T> {
    fn send(mut self, result: Result<T, Failure>) {
        let tx = self.tx.take().expect("a reply is sent once");
        if let Err(unread) = tx.send(result) {
            // The handle was dropped (detached): the output, or a panic's
            // payload, is dropped here, on the loop, and a panic in its
            // destructor must not unwind into the loop.
            drop_quietly("a detached remote task's output", move || drop(unread));
        }
        // `finished` is set by the drop that follows.
    }
}

/// Sets `finished` *after* the result is sent (or the sender dropped): a
/// thread that reads `is_finished() == true` and then polls the handle
/// gets the result at once, as with a local `JoinHandle`, whose flag and
/// result are one cell. (Set before, a poll in between found nothing: in
/// review, a thread spinning on `is_finished` missed the result one time
/// in ten.) The other way round, a handle that has its result before the
/// flag is set sets the flag itself (`RemoteJoinHandle::poll`).
impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        self.status.finished.store(true, Ordering::Release);
    }
}

/// A task spawned with [`Handle::spawn`]: a future of its result that any
/// thread may hold and await (with any executor, or in a `coop` task).
///
/// Like [`JoinHandle`](crate::JoinHandle): the output is `Ok` with the
/// task's output, or a [`JoinError`] if it panicked (in a poll, or in the
/// future's destructor) or was cancelled (aborted, or its runtime dropped
/// before it finished); dropping the handle detaches the task; polling it
/// again after it returned its result panics.
///
/// The handle has no [`Id`] of its own: the loop gives the task its id
/// when it takes the spawn in, after `spawn` has returned. A
/// [`JoinError`] from this handle still names its task by that id
/// ([`JoinError::id`]), except when the spawn never became a task (see
/// there).
pub struct RemoteJoinHandle<T> {
    /// Where the task sends its result; a sender dropped unsent means the
    /// task was dropped, and so cancelled.
    rx: oneshot::Receiver<Result<T, Failure>>,
    /// Sets the task's abort flag and wakes it.
    abort: AbortHandle,
    /// Whether the task has finished, and its id once the loop gave it one.
    status: Arc<Status>,
    /// Set when `poll` has returned the result: a later poll panics, as a
    /// local `JoinHandle`'s does (the channel, empty then, would answer
    /// "cancelled", which is false).
    returned: bool,
}

impl<T> RemoteJoinHandle<T> {
    /// Asks the runtime to cancel the task, from any thread: the task is
    /// woken, and where its next poll would have been its future is
    /// dropped and the handle resolves to a [`JoinError`] for which
    /// [`is_cancelled`](JoinError::is_cancelled) is true. Aborting a task
    /// that already finished does nothing.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// True once the task has finished: completed, panicked or cancelled.
    /// Once it says so, the result is there: the next poll of the handle
    /// returns it.
    pub fn is_finished(&self) -> bool {
        self.status.finished.load(Ordering::Acquire)
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.returned {
            panic!("RemoteJoinHandle polled after it returned its result");
        }
        let received = std::task::ready!(self.rx.poll_unpin(cx));
        self.returned = true;
        // The loop's thread may not have set it yet (see `Reply`'s drop).
        self.status.finished.store(true, Ordering::Release);
        // The id was stored before the task could send or drop its reply
        // (see `spawn_named`); 0 means the spawn never became a task.
        let id = match self.status.id.load(Ordering::Acquire) {
            0 => None,
            number => Some(Id::new(number)),
        };
        let result = received.unwrap_or(Err(Failure::Cancelled));
        Poll::Ready(result.map_err(|failure| failure.with_id(id)))
    }
}

/// Terminated once it has returned the result, as a
/// [`JoinHandle`](crate::JoinHandle) is: it goes into `futures::select!`
/// without `.fuse()`.
impl<T> futures::future::FusedFuture for RemoteJoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.returned
    }
}

/// Dropping the handle drops an output that arrived and was never taken,
/// and catches a panic in its destructor, as a [`JoinHandle`](crate::JoinHandle)'s
/// drop does. Closing the channel first means that an output sent later is
/// dropped on the loop instead (see `Reply::send`).
impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        self.rx.close();
        if let Ok(Some(unread)) = self.rx.try_recv() {
            drop_quietly(
                "a task's output, dropped with its RemoteJoinHandle,",
                move || drop(unread),
            );
        }
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
