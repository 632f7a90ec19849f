//! [`IoSource`]: a mio source registered with the reactor.
//!
//! Every `coop` socket type is a thin wrapper around `IoSource<mio socket>`.
//! The pattern for every operation is [`IoSource::poll_io`]:
//!
//! ```text
//! loop {
//!     wait until the reactor says "ready" (else store waker, return Pending)
//!     spend a unit of the task's budget (if none is left: wake the task,
//!         return Pending, a yield)
//!     try the non-blocking operation
//!         WouldBlock  → clear "ready", store the waker, return Pending
//!         anything else (data, EOF, a real error) → return it
//! }
//! ```
//!
//! The budget ([`TASK_BUDGET`] operations per poll) is what makes a task
//! whose sockets never make it wait give the loop back all the same.
//!
//! [`TASK_BUDGET`]: crate::runtime::TASK_BUDGET
//!
//! A waker is stored only where a loop will see the event: a source polled
//! outside its own runtime's loop gets an error instead (see
//! [`IoSource::poll_io_drain`]).
//!
//! A source leaves its reactor when it is dropped, or when a socket's
//! `into_std` hands it back ([`IoSource::into_inner`]): either way the
//! descriptor is deregistered and the slot freed, once.
//!
//! A new source starts out *ready* in both directions: the first read is
//! simply tried, which saves a trip through `mio::Poll` when data is already
//! waiting (an accepted connection whose client wrote at once).
//!
//! The sockets' `readable` / `try_read` pairs expose the two halves apart:
//! [`IoSource::poll_ready`] is the wait alone, [`IoSource::try_io_drain`]
//! the operation alone, which stores no waker and answers `WouldBlock`
//! where the wait would begin.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{Reactor, ScheduledIo};
use crate::runtime::context;

/// Why [`IoSource::attempt`] brought no result.
enum Stop {
    /// The source is not ready, or the operation would block: wait for
    /// the next event.
    Wait,
    /// The running task's budget is spent: give the loop back.
    Budget,
}

/// Which half of a source an operation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// A registered source. Deregistered, and its slot freed, on drop, or
/// when [`into_inner`](Self::into_inner) hands the socket back.
///
/// The deregistration lives in [`Registration`]'s `Drop`, not in one of
/// `IoSource`'s own: a type with a `Drop` cannot be taken apart in safe
/// code, and `into_inner` must move the socket out.
pub(crate) struct IoSource<S: Source> {
    /// Where the source is registered. Declared before `io`, and so
    /// dropped before it (Rust drops fields in declaration order): the
    /// descriptor leaves the epoll set *before* `io` closes it. Closed
    /// first, a descriptor whose file a duplicate keeps open (a `dup`, a
    /// child process) would stay in the set, its events naming a slot
    /// another source may have taken.
    reg: Registration,
    /// The mio socket.
    io: S,
}

/// A source's place in a reactor: its slot and its registered
/// descriptor. Dropping it deregisters the descriptor and frees the slot.
///
/// 16 bytes, so that an `IoSource` of a mio socket (a 4-byte descriptor)
/// stays 24, the size it had before `into_std` needed the descriptor
/// here too: every connection's task holds one (twice, in the echo
/// server's `serve` future), so bytes here are memory per connection.
/// Hence a `u32` key and a sentinel descriptor instead of an `Option`.
struct Registration {
    /// The reactor it is registered with; an `Rc` so the socket can be
    /// dropped cleanly even after its runtime is gone.
    reactor: Rc<Reactor>,
    /// Its slot in the reactor's slab, which is also its mio `Token`
    /// (`new` refuses a slot past `u32::MAX`: four billion sockets).
    key: u32,
    /// The registered descriptor (deregistered by number, as mio's
    /// sockets do it themselves: `SourceFd`), or [`RELEASED`] once
    /// [`release`](Self::release) has deregistered it, so that the drop
    /// which follows does not do it twice.
    fd: RawFd,
}

/// `Registration::fd` once the descriptor has left the reactor: no
/// descriptor is negative.
const RELEASED: RawFd = -1;

impl<S: Source + AsRawFd> IoSource<S> {
    /// Registers `io` with the current runtime's reactor for reads and
    /// writes.
    pub(crate) fn new(io: S) -> io::Result<IoSource<S>> {
        Self::with_interest(io, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `io` for the given interest (a listener only reads).
    pub(crate) fn with_interest(mut io: S, interest: Interest) -> io::Result<IoSource<S>> {
        let reactor = context::with_current(|core| core.reactor.clone()).ok_or_else(no_runtime)?;
        let key = reactor.sources.borrow_mut().insert(ScheduledIo {
            read_ready: true,
            write_ready: true,
            ..ScheduledIo::default()
        });
        let registered = reactor
            .poll
            .borrow()
            .registry()
            .register(&mut io, Token(key), interest);
        if let Err(e) = registered {
            reactor.sources.borrow_mut().remove(key);
            return Err(e);
        }
        let Ok(key) = u32::try_from(key) else {
            let _ = reactor.poll.borrow().registry().deregister(&mut io);
            reactor.sources.borrow_mut().remove(key);
            return Err(io::Error::other("coop: more than u32::MAX sources"));
        };
        let fd = io.as_raw_fd();
        let reg = Registration { reactor, key, fd };
        Ok(IoSource { reg, io })
    }
}

impl<S: Source> IoSource<S> {
    /// Deregisters the source, frees its slot, and gives the mio socket
    /// back, still open and still non-blocking: behind the sockets'
    /// `into_std`. Whatever the slot held goes with it: readiness the
    /// reactor had recorded (the data stays queued in the kernel, for
    /// the new owner to read) and the wakers of futures that were
    /// dropped while waiting (no future can be waiting still: the socket
    /// is taken by value, and every future of this runtime that borrows
    /// it is gone).
    ///
    /// It works wherever dropping the socket does: outside any runtime,
    /// or after its runtime was dropped, the `Rc` keeps the reactor's
    /// epoll instance open to deregister from. A deregistration that
    /// fails (which epoll does not do for a descriptor it holds) is the
    /// error; the slot is freed all the same, and the socket is closed.
    ///
    /// The socket is for handing out, not for registering again as it is:
    /// the deregistration went by descriptor number (`SourceFd`), so in a
    /// debug build mio's own socket still believes itself registered, and
    /// a second `register` of it fails ("already registered"). Convert it
    /// first (`into_std` does: a std socket, then `from_std` makes a new
    /// mio one).
    pub(crate) fn into_inner(self) -> io::Result<S> {
        let IoSource { mut reg, io } = self;
        reg.release()?;
        Ok(io)
    }

    /// The mio socket, for operations that never block (addresses, options).
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Runs the non-blocking `op` once the source is ready in `dir`,
    /// waiting (returning `Pending`) for as long as it would block.
    #[inline]
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_drain(cx, dir, op, |_| false)
    }

    /// [`poll_io`](Self::poll_io), and when `drained` says a result
    /// emptied the kernel's buffer (a short read, a short write), forgets
    /// readiness in `dir` at once: with edge-triggered readiness more data
    /// brings a new event, so the next operation can wait for it instead
    /// of trying a system call that would only say `WouldBlock`.
    ///
    /// One visit to the source's slot does it all: the slab is borrowed
    /// once, for the readiness check, the operation, and what it teaches.
    /// Holding the borrow across `op` is fine because every `op` in this
    /// crate is a system call on this socket, which never reaches the
    /// reactor (one that did would panic on the borrow); and nothing can
    /// make the source ready meanwhile, because events are read only
    /// between polls. The borrow also covers storing the waker, which
    /// clones it when it is not the task's own: a hand-made `RawWaker`
    /// whose `clone` opened or dropped a socket would panic there
    /// (chapter 02, "The one pattern every socket operation follows").
    #[inline]
    pub(crate) fn poll_io_drain<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        let mut sources = self.reg.reactor.sources.borrow_mut();
        let io = &mut sources[self.reg.key as usize];
        // An operation about to be tried costs a unit of the task's budget
        // (`take_budget`); one that waits costs nothing, as it gives the
        // loop back anyway. With the budget spent, the task has done its
        // share for this poll without waiting once: it gives the loop
        // back, as a yield, and tries again at its next poll, with a new
        // budget.
        match self.attempt(io, dir, &mut op, &drained, || {
            self.reg.reactor.take_budget()
        }) {
            Ok(result) => return Poll::Ready(result),
            Err(Stop::Budget) => {
                // The slab's borrow ends first: a waker that is not the
                // task's own runs its owner's code, which may open, drop
                // or poll a socket (a `Wake` impl does it in safe code).
                drop(sources);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Err(Stop::Wait) => {}
        }
        // Not ready: store the waker, to be woken by the next event. Only
        // this socket's own reactor will see that event, and only while
        // its loop runs. A socket moved out of `block_on` may be polled
        // under another runtime, or after its own is gone (or while it is
        // being dropped), and a wait stored then would never end. Inside
        // its own loop some task is always being polled; outside, the wait
        // is allowed only if this reactor is the current runtime's and
        // that runtime's loop is running, and is an error otherwise, as
        // tokio's is.
        let running = self.reg.reactor.running();
        if running.is_none()
            && let Some(error) = self.not_current()
        {
            return Poll::Ready(Err(error));
        }
        io.waiters(dir).add(cx.waker(), running);
        Poll::Pending
    }

    /// The operation itself, shared by the waiting and the trying roads:
    /// `op` runs while the slot says `dir` is ready and `may_try` agrees
    /// (the waiting road's budget), and what it returns teaches the slot.
    /// `Err` says why there is no result: the slot is not ready, or the
    /// operation would block (readiness is then forgotten, and so is any
    /// closed state: a `WouldBlock` proves the direction open), or
    /// `may_try` said no.
    #[inline(always)]
    fn attempt<R>(
        &self,
        io: &mut ScheduledIo,
        dir: Direction,
        op: &mut impl FnMut(&S) -> io::Result<R>,
        drained: &impl Fn(&R) -> bool,
        may_try: impl Fn() -> bool,
    ) -> Result<io::Result<R>, Stop> {
        if !io.ready(dir) {
            return Err(Stop::Wait);
        }
        if !may_try() {
            return Err(Stop::Budget);
        }
        loop {
            match op(&self.io) {
                Ok(result) => {
                    if drained(&result) && !io.urgent {
                        io.clear_ready(dir);
                    }
                    return Ok(Ok(result));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The direction is neither ready nor closed, whatever
                    // earlier events said: forget that, and wait.
                    io.clear_ready(dir);
                    match dir {
                        Direction::Read => io.read_closed = false,
                        Direction::Write => io.write_closed = false,
                    }
                    return Err(Stop::Wait);
                }
                // EINTR: the call was cut short by a signal; just retry.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    /// Waits until the reactor says `dir` is ready (or closed), and does no
    /// I/O: the first half of [`poll_io`](Self::poll_io) alone, behind the
    /// sockets' `readable` and `writable`. Ready may be stale (a spurious
    /// wake, or data another reader took first); the `try_` operation that
    /// follows finds out, and its `WouldBlock` makes the next wait real.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        self.poll_io(cx, dir, |_| Ok(()))
    }

    /// [`poll_io_drain`](Self::poll_io_drain) without the wait: runs `op`
    /// only if the slot says `dir` is ready, and otherwise, or when `op`
    /// would block, returns `WouldBlock` and stores no waker. Behind the
    /// sockets' `try_` operations, which a task calls after its own
    /// `readable().await` or `writable().await`. Readiness is what the
    /// loop last learned from `mio::Poll`, so outside its loop this may
    /// say `WouldBlock` while data waits.
    pub(crate) fn try_io_drain<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let mut sources = self.reg.reactor.sources.borrow_mut();
        self.attempt(
            &mut sources[self.reg.key as usize],
            dir,
            &mut op,
            &drained,
            || true,
        )
        .unwrap_or_else(|_| Err(io::ErrorKind::WouldBlock.into()))
    }

    /// [`try_io_drain`](Self::try_io_drain) for an operation with no
    /// drain shortcut.
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.try_io_drain(dir, op, |_| false)
    }

    /// The error for a wait outside this source's runtime, or `None` if its
    /// reactor is the current runtime's and that runtime's loop runs. Out
    /// of line: it is asked only when no task of this reactor is being
    /// polled.
    #[cold]
    #[inline(never)]
    fn not_current(&self) -> Option<io::Error> {
        // Running, not merely current: a runtime is current while it is
        // dropped too, with no loop to come.
        let current = context::with_running(|core| Rc::ptr_eq(&core.reactor, &self.reg.reactor))
            .unwrap_or(false);
        (!current).then(|| {
            io::Error::other(
                "coop: this socket (or signal) belongs to a runtime that is not running \
                 on this thread (it was moved out of its runtime, or its runtime was \
                 dropped or is being dropped); use sockets and signals inside the runtime \
                 that created them",
            )
        })
    }
}

/// `Ok` where a coop runtime is current (its loop running, or entered),
/// else [`no_runtime`]'s error: asked
/// before an operation that would register a socket afterwards (an
/// `accept(2)`, a `connect(2)`) or needs the blocking pool (a name look-up),
/// so that it fails before it has done anything the failure would undo.
pub(crate) fn require_runtime() -> io::Result<()> {
    context::with_current(|_| ()).ok_or_else(no_runtime)
}

/// The error for a socket or signal made (or a name looked up for a
/// socket) where no coop runtime is current. (A `Signal` waits on a pipe
/// registered like a socket, so it shares these errors.)
pub(crate) fn no_runtime() -> io::Error {
    io::Error::other(
        "coop sockets and signals must be created inside a coop runtime \
         (from a future run by coop::block_on, or under the guard of \
         Runtime::enter)",
    )
}

impl Registration {
    /// Deregisters the descriptor and frees the slot, once: a second call
    /// does nothing. Returns the deregistration's error, after the slot
    /// is freed all the same.
    fn release(&mut self) -> io::Result<()> {
        let fd = std::mem::replace(&mut self.fd, RELEASED);
        if fd == RELEASED {
            return Ok(());
        }
        // The poll instance is still open, even if the runtime is gone:
        // this `Rc` keeps the reactor.
        let deregistered = self
            .reactor
            .poll
            .borrow()
            .registry()
            .deregister(&mut SourceFd(&fd));
        // Free the slot; wakers left in it are dropped here, after the
        // borrow has ended.
        let slot = self
            .reactor
            .sources
            .borrow_mut()
            .try_remove(self.key as usize);
        drop(slot);
        deregistered
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Runs before the socket closes (see `IoSource::reg`). An error
        // would have nobody to go to: a destructor returns none.
        let _ = self.release();
    }
}

impl<S: Source + std::fmt::Debug> std::fmt::Debug for IoSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.io.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    /// Every connection's task holds its stream's `IoSource` (twice, in
    /// the echo server's `serve` future): the registration's `u32` key and
    /// sentinel descriptor keep it at two words besides the socket, three
    /// in a release build (mio's socket is its 4-byte descriptor there; a
    /// debug build adds a selector id), the size it had before `into_std`
    /// needed the descriptor (an `Option<RawFd>` made it four).
    #[test]
    fn an_io_source_of_a_socket_stays_two_words_besides_the_socket() {
        use std::mem::size_of;
        type Mio = mio::net::TcpStream;
        assert_eq!(size_of::<super::Registration>(), 16);
        let socket = size_of::<Mio>().next_multiple_of(8);
        assert_eq!(size_of::<super::IoSource<Mio>>(), 16 + socket);
        assert_eq!(size_of::<crate::net::TcpStream>(), 16 + socket);
        if !cfg!(debug_assertions) {
            assert_eq!(size_of::<crate::net::TcpStream>(), 24);
        }
    }
}
