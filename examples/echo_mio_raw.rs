//! The same echo server as a hand-written mio state machine: no runtime, no tasks.
//!
//! ```text
//! cargo run --release --example echo_mio_raw -- --addr 127.0.0.1:7000
//! ```
//!
//! Then, from a second terminal:
//!
//! ```text
//! nc 127.0.0.1 7000
//! ```
//!
//! This is the ceiling for any design built on mio: one thread, one `Poll`, and
//! for each connection only the state it must keep between events. A runtime
//! like `coop` does the same work with a task per connection; everything it adds
//! (wakers, a task queue, futures) costs something, and this server shows how
//! much there is to cost. It also shows what a runtime does for you, because
//! here it is all done by hand:
//!
//! 1. **Tokens.** The listener is `Token(0)`; connection slot `i` is `Token(i + 1)`.
//!    Slots live in a `Vec<Option<Conn>>` with a free list, so a token is an index.
//! 2. **Edge-triggered readiness.** mio reports a *change* to ready, once. So on
//!    every event we read (or accept) until the socket is known to be empty;
//!    stopping early would mean never hearing about the rest. Each socket is
//!    registered once, for `READABLE` and `WRITABLE` (and `PRIORITY`, below),
//!    and never re-registered.
//!    A read that returns fewer bytes than asked for already proves the socket
//!    empty (data arriving later raises a new edge), which saves the extra read
//!    that would only return `WouldBlock`; tokio makes the same deduction. The
//!    exceptions: once the client's FIN has been reported, the edge for it has
//!    been spent, so we read on until the read returns 0; and once the client
//!    has sent TCP urgent data (`MSG_OOB`, reported as a priority event, which
//!    is why sockets also register for `PRIORITY` on Linux), a read stops
//!    short at the urgent mark with bytes still queued behind it, so from then
//!    on we read until `WouldBlock` (coop's reactor does the same).
//!    [`Conn::readable`], [`Conn::read_closed`] and [`Conn::urgent`] carry
//!    this between events, as a runtime's per-socket readiness bits do.
//! 3. **Backpressure.** Data read is written straight back. If the write would
//!    block, the unsent bytes stay in the connection's buffer and we stop reading
//!    it until a `WRITABLE` event says the client has made room. A client that
//!    sends without reading fills its own socket buffers, not our memory.
//! 4. **Fairness.** One connection gets at most [`BUDGET`] reads per turn; if it
//!    still has data, it goes on a list to be driven again after everyone else's
//!    events (tokio's "coop budget" does this for tasks). Without this, one fast
//!    client could keep the thread to itself.
//! 5. **Running out of descriptors.** If `accept` fails with `EMFILE` and the
//!    like, we pause accepting for a moment and then try again ourselves: the
//!    waiting connections will produce no new edge to remind us.
//!
//! Per event there is no allocation and no system call but `read`, `write` and
//! `accept`; besides them the loop makes one `epoll_wait` per turn. Opening and
//! closing a connection add `setsockopt` (`TCP_NODELAY`) and `epoll_ctl`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use log::{debug, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

mod common;

/// The listener's token. Connection slot `i` uses `Token(i + 1)`.
const LISTENER: Token = Token(0);

/// What a connection registers for: reads and writes, and on Linux urgent
/// data (`EPOLLPRI`), without which a read stopped at an urgent mark could
/// wait for ever for an edge that has already been spent.
#[cfg(any(target_os = "linux", target_os = "android"))]
const STREAM_INTEREST: Interest = Interest::READABLE
    .add(Interest::WRITABLE)
    .add(Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const STREAM_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// Reads (each followed by writing the data back) one connection may do per turn.
///
/// tokio gives a task 128 operations per turn, and one read plus one write are
/// two of them; 64 makes this server as patient as `echo_tokio`.
const BUDGET: usize = 64;

#[derive(Parser, Debug)]
#[command(about = "Echo server as a hand-written mio state machine, no runtime.")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
    /// How many ready events one `poll` call may return. 128, as coop's
    /// default: at 10,000 connections this server, too, spends about 4% less
    /// CPU per echo with 128 than with 1,024, and as the ceiling for any mio
    /// design it gets every tuning coop gets (see
    /// `coop::runtime::EVENT_CAPACITY`).
    #[arg(long, value_name = "N", default_value_t = 128)]
    events: usize,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    common::init_logging();
    common::raise_fd_limit();

    let listener = TcpListener::from_std(common::bind_listener(args.server.addr)?);
    let mut server = Server::new(listener, args.server.buf)?;
    common::announce(server.listener.local_addr()?)?;
    server.run(args.events)
}

/// One connection, between events.
struct Conn {
    /// The socket, registered once for [`STREAM_INTEREST`].
    stream: TcpStream,
    /// The client's address, for logs.
    peer: SocketAddr,
    /// `--buf` bytes. `buf[start..end]` has been read but not yet written back.
    buf: Box<[u8]>,
    /// Start of the bytes still to write back.
    start: usize,
    /// End of the bytes still to write back.
    end: usize,
    /// Bytes echoed so far, for the log line when it closes.
    echoed: u64,
    /// The socket may hold bytes to read. Set by a readable event; cleared by a
    /// read that returns `WouldBlock` or (unless [`Conn::urgent`]) fewer bytes
    /// than the buffer holds.
    readable: bool,
    /// The client's FIN (or a socket error) has been reported. From then on only
    /// `WouldBlock` or a 0-byte read clears `readable`.
    read_closed: bool,
    /// The client has sent urgent data at some time: a short read may have
    /// stopped at the urgent mark, so it no longer proves the socket empty.
    /// Never cleared (urgent data is rare, and a wrong clear is a hang).
    urgent: bool,
}

/// Where [`Conn::drive`] left a connection.
enum Progress {
    /// Nothing more to do until the socket's next event: a write said
    /// `WouldBlock`, or a read did, or the socket is known to be empty.
    Blocked,
    /// The budget ran out while there was still work: drive it again next turn.
    Yielded,
    /// The client shut down its write side and everything has been echoed.
    Finished,
}

impl Conn {
    /// Records what an event says about the socket.
    fn note(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_read_closed() || event.is_error() {
            self.read_closed = true;
        }
        if event.is_priority() {
            self.readable = true;
            self.urgent = true;
        }
    }

    /// Makes as much progress as the socket allows, up to [`BUDGET`] reads.
    ///
    /// The loop alternates two steps: write back what the buffer holds, then
    /// (only once it is empty, and only if the socket may have data) read more.
    /// A read of 0 bytes means the client shut down its write side; the buffer
    /// is empty then, so we are done.
    fn drive(&mut self) -> io::Result<Progress> {
        for _ in 0..BUDGET {
            while self.start < self.end {
                match self.stream.write(&self.buf[self.start..self.end]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.start += n,
                    // Backpressure: keep the bytes, read nothing, wait for WRITABLE.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Progress::Blocked);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if !self.readable {
                return Ok(Progress::Blocked);
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Ok(Progress::Finished),
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    self.echoed += n as u64;
                    // A short read emptied the socket; write this back, then wait.
                    self.readable = n == self.buf.len() || self.read_closed || self.urgent;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(Progress::Blocked);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Progress::Yielded)
    }
}

/// The whole server: everything the event loop needs between two `poll` calls.
struct Server {
    /// Where we wait: one epoll instance for the listener and every connection.
    poll: Poll,
    /// The listening socket, registered as [`LISTENER`] for `READABLE`.
    listener: TcpListener,
    /// Connection slots; slot `i` is `Token(i + 1)`. `None` is a free slot.
    conns: Vec<Option<Conn>>,
    /// Indices of the free slots, reused before `conns` grows.
    free: Vec<usize>,
    /// `--buf`: the size of each connection's buffer.
    buf_len: usize,
    /// Connections that used up their budget this turn, to be driven next turn.
    yielded: Vec<Token>,
    /// Set when `accept` ran out of resources: accept nothing until then.
    accept_paused_until: Option<Instant>,
}

impl Server {
    fn new(mut listener: TcpListener, buf_len: usize) -> io::Result<Server> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            buf_len,
            yielded: Vec::new(),
            accept_paused_until: None,
        })
    }

    /// The event loop. Each turn: wait for events, handle them, then drive the
    /// connections that yielded in the previous turn.
    fn run(&mut self, event_capacity: usize) -> io::Result<()> {
        let mut events = Events::with_capacity(event_capacity.max(1));
        let mut again = Vec::new();
        loop {
            // Do not sleep while a connection is waiting for its next turn, nor
            // past the end of an accept pause.
            let timeout = if self.yielded.is_empty() {
                self.accept_paused_until
                    .map(|until| until.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            std::mem::swap(&mut self.yielded, &mut again);

            if let Some(until) = self.accept_paused_until
                && Instant::now() >= until
            {
                self.accept_paused_until = None;
                self.accept();
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => {
                        if self.accept_paused_until.is_none() {
                            self.accept();
                        }
                    }
                    token => {
                        if let Some(Some(conn)) = self.conns.get_mut(token.0 - 1) {
                            conn.note(event);
                        }
                        self.drive(token);
                    }
                }
            }
            for token in again.drain(..) {
                self.drive(token);
            }
        }
    }

    /// Accepts connections until `WouldBlock` (or until accepting must pause).
    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.add(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if common::accept_error_needs_pause(&e) {
                        self.accept_paused_until = Some(Instant::now() + common::ACCEPT_PAUSE);
                        return;
                    }
                }
            }
        }
    }

    /// Puts a new connection in a free slot and registers it under that slot's token.
    ///
    /// Registering a socket that is already readable produces an event at once,
    /// so there is no need to drive it here.
    fn add(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if let Err(e) = stream.set_nodelay(true) {
            warn!("{peer}: {e}");
            return; // dropping the stream closes it
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let interest = STREAM_INTEREST;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(index + 1), interest)
        {
            warn!("{peer}: {e}");
            self.free.push(index);
            return;
        }
        debug!("{peer} connected");
        self.conns[index] = Some(Conn {
            stream,
            peer,
            buf: vec![0; self.buf_len].into_boxed_slice(),
            start: 0,
            end: 0,
            echoed: 0,
            readable: false,
            read_closed: false,
            urgent: false,
        });
    }

    /// Drives the connection behind `token`, and closes it if it is done or failed.
    ///
    /// The slot may be empty: an earlier event in the same batch closed it. It may
    /// even hold a newer connection that reused the slot; driving that one when
    /// nothing happened to it is harmless, it reads `WouldBlock` and waits.
    fn drive(&mut self, token: Token) {
        let index = token.0 - 1;
        let Some(Some(conn)) = self.conns.get_mut(index) else {
            return;
        };
        match conn.drive() {
            Ok(Progress::Blocked) => {}
            Ok(Progress::Yielded) => self.yielded.push(token),
            Ok(Progress::Finished) => {
                debug!("{} disconnected after {} bytes", conn.peer, conn.echoed);
                self.close(index);
            }
            Err(e) => {
                warn!("{}: {e}", conn.peer);
                self.close(index);
            }
        }
    }

    /// Deregisters and drops the connection in slot `index` (dropping closes the
    /// socket), and frees the slot.
    fn close(&mut self, index: usize) {
        if let Some(mut conn) = self.conns[index].take() {
            if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
                warn!("{}: deregister: {e}", conn.peer);
            }
            self.free.push(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// TCP urgent data: a read stops short at the urgent mark even when
    /// ordinary bytes are queued behind it, so a short read does not prove
    /// the socket empty. Everything here arrives before the server first
    /// looks (one readable edge, no later one): the bytes behind the mark
    /// must still come back.
    #[test]
    fn bytes_behind_an_urgent_mark_are_echoed() {
        let listener = common::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut server = Server::new(TcpListener::from_std(listener), 4096).unwrap();
        let addr = server.listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.write_all(b"ab").unwrap();
        socket2::SockRef::from(&client)
            .send_out_of_band(b"!")
            .unwrap();
        client.write_all(b"cd").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        std::thread::spawn(move || server.run(128));

        // Ample for a loaded machine: the server answers at once, or, with
        // the bug, never.
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 4 {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        // The urgent byte itself goes out of band (no SO_OOBINLINE).
        assert_eq!(
            got, b"abcd",
            "the bytes behind the urgent mark never came back"
        );
    }
}
