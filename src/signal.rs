//! Unix signals as futures: [`ctrl_c`], [`terminate`], and [`Signal`].
//!
//! A signal handler may run on any thread, between any two instructions,
//! so it may do almost nothing: no locks, no allocation, no waking of
//! tasks. What it *may* do is write one byte to a pipe. That is the
//! classic **self-pipe trick**, and it turns a signal into I/O the loop
//! already knows how to wait for:
//!
//! ```text
//!   kernel delivers SIGTERM                       the loop's thread
//!   ───────────────────────                       ─────────────────
//!   signal-hook's handler ── writes b"X" ──▶ ┌──────────────┐
//!   (async-signal-safe:                      │ UnixStream   │  registered with the
//!    one send(2), nothing else)              │ pair         │  reactor like any socket
//!                                            └──────┬───────┘
//!                                mio::Poll reports "readable" → the task awaiting
//!                                Signal::recv is woken, reads the bytes, returns
//! ```
//!
//! The handler itself comes from the [`signal_hook`] crate: installing a
//! handler and chaining it with others is subtle `unsafe` code that `coop`
//! (which forbids `unsafe`) leaves to a well-kept library. The loop
//! integration is ours: the read end is an ordinary
//! [`IoSource`], so a signal wakes
//! the loop exactly as a socket does, and the task waiting for it is woken
//! through the same waker path.
//!
//! ```no_run
//! coop::block_on(async {
//!     coop::signal::ctrl_c().await?;
//!     println!("Ctrl-C: shutting down");
//!     Ok::<(), std::io::Error>(())
//! })
//! # .unwrap();
//! ```
//!
//! # Ground rules
//!
//! 1. **A handler is installed when a [`Signal`] is created** (for
//!    [`ctrl_c`] and [`terminate`]: when the future is first polled).
//!    Before that, the signal's default action applies: SIGINT and SIGTERM
//!    end the process. Create the `Signal` early if a signal may arrive
//!    early (the echo server does, before it announces its port). One
//!    that arrives *while* the first handler for its kind is installed
//!    (a window of microseconds) is lost: signal-hook sets the handler
//!    before it has stored the pipe to write to, and in that window its
//!    handler runs no action, not even the default one (found in review,
//!    session 25: a SIGTERM sent 2 ms after the echo server started was
//!    ignored, twice in some forty tries). Closing the window would mean
//!    blocking the signal around the installation, which needs `unsafe`.
//! 2. **Signals coalesce.** Ten SIGTERMs that arrive while nobody reads
//!    wake [`Signal::recv`] once; the kernel coalesces pending signals too.
//!    `recv` means "at least one arrived since the last `recv`".
//! 3. **Each `Signal` sees every delivery.** Two `Signal`s for SIGINT (in
//!    one runtime or in two) each have their own pipe, and each is woken.
//! 4. **Once handled, the default action is gone for good.** Dropping a
//!    `Signal` removes its handler, but signal-hook does not reinstall the
//!    default action, so a later SIGINT is *ignored*, not fatal (tokio
//!    behaves the same). A program that stops listening for Ctrl-C should
//!    exit soon after.
//!
//! Unix only, like the rest of `coop`.

use std::future::poll_fn;
use std::io::{self, Read};
use std::task::{Context, Poll};

use mio::Interest;
use signal_hook::SigId;
use signal_hook::consts::signal as consts;

use crate::reactor::registration::{Direction, IoSource};

/// Which signal to listen for. The common ones have constructors; any
/// other number goes through [`SignalKind::from_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// SIGINT: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(consts::SIGINT)
    }

    /// SIGTERM: the polite "please exit" (`kill PID`, `docker stop`,
    /// systemd).
    pub const fn terminate() -> SignalKind {
        SignalKind(consts::SIGTERM)
    }

    /// SIGHUP: the terminal went away; daemons often reload on it.
    pub const fn hangup() -> SignalKind {
        SignalKind(consts::SIGHUP)
    }

    /// SIGUSR1: for the program to define.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(consts::SIGUSR1)
    }

    /// SIGUSR2: for the program to define.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(consts::SIGUSR2)
    }

    /// Any signal by number. Signals that cannot be handled (SIGKILL,
    /// SIGSTOP, and the fault signals SIGSEGV, SIGILL, SIGFPE), and numbers
    /// that are no signal the C library lets a program handle, make
    /// [`signal`] return an error.
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

/// A stream of deliveries of one signal, woken through the reactor.
///
/// Created by [`signal`]; see the [module docs](self) for the self-pipe
/// design. The handler is removed when the `Signal` is dropped.
#[derive(Debug)]
pub struct Signal {
    /// Which signal this is.
    kind: SignalKind,
    /// The read end of the self-pipe, registered with the reactor for
    /// reading. The handler owns the write end.
    pipe: IoSource<mio::net::UnixStream>,
    /// The handler's registration, to remove it on drop.
    handler: SigId,
}

/// Starts listening for `kind`: installs a handler that writes to a pipe
/// this runtime's reactor watches.
///
/// Must be called inside a `coop` runtime (the pipe registers with its
/// reactor). Errors: the OS refused the socket pair, or `kind` cannot be
/// handled (SIGKILL, SIGSTOP, SIGSEGV, ..., or a number that is no signal).
///
/// ```no_run
/// use coop::signal::{SignalKind, signal};
/// coop::block_on(async {
///     let mut hangups = signal(SignalKind::hangup())?;
///     loop {
///         hangups.recv().await?;
///         println!("SIGHUP: reloading the configuration");
///     }
///     # #[allow(unreachable_code)] Ok::<(), std::io::Error>(())
/// })
/// # .unwrap();
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    // signal-hook panics on these; an error is friendlier.
    if signal_hook::consts::FORBIDDEN.contains(&kind.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {} cannot be handled", kind.0),
        ));
    }
    let (read_end, write_end) = std::os::unix::net::UnixStream::pair()?;
    read_end.set_nonblocking(true)?;
    // Register with the reactor first: if we are outside a runtime, this
    // fails before any handler is installed.
    let pipe =
        IoSource::with_interest(mio::net::UnixStream::from_std(read_end), Interest::READABLE)?;
    // signal-hook takes the write end (and closes it when the handler is
    // removed); its handler does one non-blocking send(2) per delivery.
    // A number that is no signal fails here (sigaction's EINVAL); say which.
    let handler = signal_hook::low_level::pipe::register(kind.0, write_end)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot handle signal {}: {e}", kind.0)))?;
    Ok(Signal {
        kind,
        pipe,
        handler,
    })
}

impl Signal {
    /// Which signal this listens for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Waits until the signal has been delivered at least once since the
    /// previous `recv` (or since this `Signal` was created).
    ///
    /// Errors if the pipe fails, which should not happen while the
    /// `Signal` is alive, and if it would wait outside the runtime that
    /// created the `Signal` (moved to another runtime, or kept after its
    /// own was dropped): the pipe is registered with that runtime's
    /// reactor, and no other loop would see the signal, so this is the
    /// same error, not a hang, as for a socket used there.
    pub async fn recv(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Self::recv), for hand-written futures.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Drain every byte that is there: deliveries coalesce into one
        // wake-up (ground rule 2). If there are none, say WouldBlock, and
        // poll_io_drain stores our waker until the handler writes again.
        // A drain reads until WouldBlock, so every success leaves the pipe
        // empty (`|_| true`): readiness is forgotten, and the next recv
        // waits for the next byte's edge.
        let drained = self.pipe.poll_io_drain(
            cx,
            Direction::Read,
            |pipe| {
                let mut buf = [0u8; 64];
                let mut total = 0;
                loop {
                    match (&*pipe).read(&mut buf) {
                        Ok(0) if total == 0 => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "signal pipe closed: the handler is gone",
                            ));
                        }
                        Ok(0) => return Ok(total),
                        Ok(n) => total += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && total > 0 => {
                            return Ok(total);
                        }
                        // Cut short by a signal: read again here. Returned,
                        // it would make `poll_io_drain` retry from zero and
                        // meet `WouldBlock`, and the deliveries already read
                        // would wake no one.
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            },
            |_| true,
        );
        std::task::ready!(drained)?;
        Poll::Ready(Ok(()))
    }
}

/// The deliveries as a `futures` stream that never ends: each item is what
/// [`recv`](Signal::recv) returns (deliveries since the last item coalesce
/// into one). It works with `StreamExt` and in `futures::select!` (as a
/// `FusedStream` that is never terminated).
impl futures::Stream for Signal {
    type Item = io::Result<()>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

impl futures::stream::FusedStream for Signal {
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // Removes our handler and closes the write end. See ground rule 4
        // for what happens to the signal afterwards.
        signal_hook::low_level::unregister(self.handler);
    }
}

/// Completes when the process receives SIGINT (Ctrl-C in a terminal).
///
/// The handler is installed the first time this future is polled and
/// removed when it completes or is dropped (see ground rules 1 and 4 in the
/// [module docs](self)).
///
/// So a `ctrl_c()` made afresh on every pass of a `select!` loop installs
/// and removes a handler each time (a socket pair and a `sigaction`), and
/// a SIGINT that arrives between two passes finds none (ground rule 4).
/// For a loop, make one [`Signal`] before it, and wait on it inside:
/// `let mut interrupts = signal(SignalKind::interrupt())?;` and then
/// `interrupts.recv()` (or `interrupts.next()`: a `Signal` is a stream).
pub async fn ctrl_c() -> io::Result<()> {
    signal(SignalKind::interrupt())?.recv().await
}

/// Completes when the process receives SIGTERM (the default of `kill`,
/// and what `docker stop` and systemd send). Installed like [`ctrl_c`].
pub async fn terminate() -> io::Result<()> {
    signal(SignalKind::terminate())?.recv().await
}
