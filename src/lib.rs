//! # coop: a hand-built event loop, to read and to run
//!
//! `coop` is a single-threaded async runtime in the style of Python's
//! asyncio or Node's event loop, built by hand on [`mio`] so that every part
//! can be read: a reactor, a task queue, wakers, a timer wheel, async TCP
//! and UDP. Tasks are Rust futures (stackless coroutines) that give control
//! back to the loop at every `.await` that is not ready yet.
//!
//! ```no_run
//! use futures::io::{AsyncReadExt, AsyncWriteExt};
//!
//! fn main() -> std::io::Result<()> {
//!     coop::block_on(async {
//!         let listener = coop::net::TcpListener::bind("127.0.0.1:7000")?;
//!         loop {
//!             let (mut stream, _) = listener.accept().await?;
//!             coop::spawn(async move {
//!                 let mut buf = vec![0; 4096];
//!                 while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                     if stream.write_all(&buf[..n]).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!         }
//!     })
//! }
//! ```
//!
//! # A tour of the loop, in reading order
//!
//! 1. **[`block_on`] starts the loop** ([`runtime`]). The future you pass is
//!    polled on this thread; [`spawn`] adds more tasks beside it. Each turn
//!    of the loop polls *only the tasks that were ready when the turn began*.
//!    ([`Runtime::enter`] makes a runtime current without running its loop,
//!    to bind sockets or spawn before `block_on`.)
//! 2. **A task is a slot in a slab** ([`task`]). Spawning boxes the future,
//!    gives it a slab key plus a generation, and queues that id. Its
//!    [`JoinHandle`] shares the slot's cell and receives the output.
//! 3. **A poll runs a task to its next `.await`.** When the task awaits a
//!    socket that would block, the socket tells the reactor who waits (the
//!    task's *waker*, or just its id when that waker is the task's own) and
//!    the poll returns `Pending`; the loop moves on.
//! 4. **Wakers put tasks back in the queue** (`task::waker`). A waker is an
//!    `Arc` implementing [`std::task::Wake`]: on the loop's thread it asks
//!    the executor to queue the task id (once, however many wakes come
//!    before the poll); from another thread it goes through a locked queue
//!    and a `mio::Waker` that interrupts the loop's sleep. A
//!    [`runtime::Handle`] sends whole futures down that same road
//!    ([`runtime::Handle::spawn`]; [`runtime::Handle::spawn_with`] to build
//!    a future that is not `Send` on the loop's thread;
//!    [`task::Builder::spawn_on`] to name the task).
//! 5. **Due timers fire** ([`time`]). Sleeps and timeouts file their
//!    deadline in a hierarchical timer wheel; each turn the loop advances the
//!    wheel to "now" and wakes the tasks whose timers came due. "Now" comes
//!    from the runtime's clock, which a test may pause
//!    ([`Builder::start_paused`]): with nothing else to do, a paused loop
//!    jumps to the next deadline instead of sleeping until it.
//! 6. **With nothing left to run, the loop waits in `mio::Poll`**
//!    ([`reactor`]): until a socket becomes ready, the wheel's next deadline,
//!    or another thread wakes it. An idle loop sleeps in the kernel and burns
//!    no CPU.
//! 7. **Readiness wakes the waiting tasks**: a stored id is queued
//!    directly, a stored waker is called. The next turn begins.
//! 8. **Sockets** ([`net`]) are where tasks meet the reactor: every
//!    `WouldBlock` becomes "note who waits, return `Pending`". Every
//!    operation tried spends a unit of the task's budget
//!    ([`runtime::TASK_BUDGET`] per poll), as does a sleep that completes
//!    and a join handle that returns, so that a task that never has to
//!    wait still gives the loop back
//!    ([`task::consume_budget`], [`task::unconstrained`]).
//!    [`signal`] turns Unix signals into readiness the same way, through a
//!    self-pipe (Ctrl-C as a future, for graceful shutdown).
//! 9. **Blocking work leaves the loop** ([`blocking`]): [`spawn_blocking`]
//!    runs a closure on a pool of OS threads and wakes the awaiting task
//!    through step 4's cross-thread road.
//! 10. **The loop can be watched** ([`trace`]): slow-poll warnings name a
//!     task that held the loop too long (by the name given with
//!     [`task::Builder`], and where it was spawned); the timeline recorder
//!     draws every poll, wake and wait as a timing diagram.
//!
//! The `docs/` folder of the repository has a chapter for each of these, in
//! reading order, with diagrams. To read the internals here, build these
//! docs with `cargo doc --document-private-items --open`.
//!
//! # What `coop` does not do
//!
//! One loop runs on one thread: a task that computes for a second holds up
//! every other task for that second. That is the point it teaches, and the
//! reason async helps I/O-bound work and not CPU-bound work.

#![forbid(unsafe_code)]
// The docs are meant to be read with `cargo doc --document-private-items`,
// where links into the runtime's internals resolve.
#![allow(rustdoc::private_intra_doc_links)]
#![warn(missing_docs)]

pub mod blocking;
pub mod net;
pub mod reactor;
pub mod runtime;
pub mod signal;
pub mod task;
pub mod time;
pub mod trace;

pub use blocking::spawn_blocking;
pub use runtime::{Builder, Histogram, Metrics, Runtime, WakeCounts, block_on};
pub use task::{JoinError, JoinHandle, spawn, yield_now};
