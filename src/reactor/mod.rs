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
//! 3. When the loop has nothing left to run, it calls [`Reactor::poll`],
//!    which sleeps in `mio::Poll::poll` until some socket changes state (or
//!    the timeout passes), marks each such source ready, and wakes the task
//!    waiting on it.
//!
//! # Edge-triggered readiness
//!
//! mio registers sources *edge-triggered*: the OS reports a socket when it
//! *becomes* readable, not again while it *stays* readable. So we remember
//! readiness ourselves (`read_ready`, `write_ready`) and clear it only when
//! an operation actually returns `WouldBlock`. A task that reads less than
//! everything will find the flag still set and read again without waiting.
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

pub(crate) mod registration;

use std::cell::RefCell;
use std::io;
use std::task::Waker;
use std::time::Duration;

use mio::{Events, Poll, Token};
use slab::Slab;

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
    pub(crate) io_events: std::cell::Cell<u64>,
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
    /// Writing can no longer succeed (mio's `is_write_closed`: a hang-up,
    /// or `EPOLLOUT` together with `EPOLLERR`): the same rule.
    pub(crate) write_closed: bool,
    /// The tasks waiting to read. Separate from `writers` so that one task
    /// may read a socket while another writes it.
    pub(crate) readers: Waiters,
    /// The tasks waiting to write.
    pub(crate) writers: Waiters,
}

/// The tasks waiting on one direction of a source. Almost always zero or
/// one (a connection's own task), which `first` holds without allocating;
/// a second waiter (two tasks sharing a `UdpSocket` or a listener) spills
/// into `more`, boxed so that the common case pays 8 bytes for it, not 24
/// (this struct exists once per direction per socket: at 10,000
/// connections, bytes here are memory per connection).
#[derive(Default)]
pub(crate) struct Waiters {
    /// The first waiting task.
    first: Option<Waker>,
    /// Any others. A thin box on purpose: 8 bytes in every socket instead
    /// of a `Vec`'s 24, for a case that is rare.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Waker>>>,
}

impl Waiters {
    /// Adds `waker` unless it would wake a task already waiting. Inlined:
    /// it runs at every wait, and its usual case is a test and a clone.
    #[inline]
    pub(crate) fn add(&mut self, waker: &Waker) {
        match &self.first {
            None => self.first = Some(waker.clone()),
            Some(w) if w.will_wake(waker) => {}
            Some(_) => self.add_another(waker),
        }
    }

    /// The rare case: a second task waits on this direction.
    #[cold]
    #[inline(never)]
    fn add_another(&mut self, waker: &Waker) {
        let more = self.more.get_or_insert_default();
        if !more.iter().any(|w| w.will_wake(waker)) {
            more.push(waker.clone());
        }
    }

    /// Whether no task is waiting.
    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_none()
    }

    /// Wakes every waiter (consuming them).
    #[inline]
    fn wake_all(self) {
        let Waiters { first, more } = self;
        if let Some(waker) = first {
            waker.wake();
        }
        if let Some(more) = more {
            wake_each(*more);
        }
    }
}

/// The rare case: a second (third...) task waiting on one direction.
#[cold]
fn wake_each(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

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

    /// Records what one event says about this source.
    fn note(&mut self, event: &mio::event::Event) {
        self.read_ready |= event.is_readable() || event.is_error();
        self.write_ready |= event.is_writable() || event.is_error();
        self.read_closed |= event.is_read_closed();
        self.write_closed |= event.is_write_closed();
    }

    /// Takes the tasks waiting on `dir` if `dir` is ready (they are to be
    /// woken), or nobody if it is not.
    fn take_ready(&mut self, dir: Direction) -> Waiters {
        if !self.ready(dir) {
            return Waiters::default();
        }
        std::mem::take(self.waiters(dir))
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
            io_events: std::cell::Cell::new(0),
        };
        Ok((reactor, waker))
    }

    /// Waits for I/O events for at most `timeout` (`None`: until one
    /// arrives), then marks their sources ready and wakes their tasks,
    /// calling `before_wake(source)` before each wake (the executor labels
    /// the wake with it). Returns the number of events of registered
    /// sources (the cross-thread waker's, and those of sources dropped this
    /// turn, are not counted).
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        before_wake: impl Fn(usize),
    ) -> io::Result<usize> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: just a shorter sleep.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut count = 0;
        for event in events.iter() {
            let key = event.token().0;
            // Update the source and take the tasks it can now serve; the
            // borrow ends before any of them is woken, because a waker may
            // run arbitrary code (ours only queue a task, but a waker from
            // a combinator or another executor could reach the reactor).
            let (readers, writers) = {
                let mut sources = self.sources.borrow_mut();
                let Some(io) = sources.get_mut(key) else {
                    continue; // the waker token, or a source dropped this turn
                };
                count += 1;
                io.note(event);
                (
                    io.take_ready(Direction::Read),
                    io.take_ready(Direction::Write),
                )
            };
            if readers.is_empty() && writers.is_empty() {
                continue;
            }
            before_wake(key);
            readers.wake_all();
            writers.wake_all();
        }
        self.io_events.set(self.io_events.get() + count as u64);
        Ok(count)
    }

    /// The number of registered sources.
    pub(crate) fn sources(&self) -> usize {
        self.sources.borrow().len()
    }
}
