//! The baseline: an echo server with one OS thread per connection.
//!
//! ```text
//! cargo run --release --example echo_threads -- --addr 127.0.0.1:7000
//! ```
//!
//! Then, from a second terminal, type lines and see them come back:
//!
//! ```text
//! nc 127.0.0.1 7000
//! ```
//!
//! Or load it: `cargo run --release --example loadgen -- --addr 127.0.0.1:7000 --conns 100`.
//!
//! This is the synchronous server every async design is measured against (the
//! async book puts the same kind of server, `09_01_sync_tcp_server`, next to its
//! concurrent one). It is obviously simple: `accept` in a loop, and for each
//! connection a thread that does blocking `read` and `write_all` until the client
//! closes its side. The kernel's scheduler is the event loop. What it costs is one
//! thread per connection: a stack, a kernel task, and a context switch for every
//! message, which is what the other servers avoid.
//!
//! Protocol and flags are the same in every `echo_*` example (see `common/mod.rs`):
//! every byte received is sent back until the client shuts down its write side;
//! then the server finishes echoing and closes.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::thread;

use clap::Parser;
use log::{debug, warn};

#[path = "common/blocking_echo.rs"]
mod blocking_echo;
mod common;

/// Stack size of each connection thread.
///
/// The default (2 MiB) is only address space: Linux commits a stack page when it is
/// first touched, so the memory actually used is the same either way. We ask for
/// 64 KiB anyway, because 10,000 default stacks reserve 20 GiB of address space,
/// which containers with memory limits or strict overcommit may refuse. The
/// smaller reservation only lets the baseline go further before `spawn` fails; it
/// does not make any connection faster. The deepest stack in a connection thread
/// is the echo loop plus a log call, a few KiB; the buffer lives on the heap.
const STACK_SIZE: usize = 64 * 1024;

#[derive(Parser, Debug)]
#[command(about = "Echo server, one OS thread per connection (the baseline).")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    common::init_logging();
    common::raise_fd_limit();

    let listener = common::bind_listener(args.server.addr)?;
    listener.set_nonblocking(false)?;
    common::announce(listener.local_addr()?)?;

    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                if common::accept_error_needs_pause(&error) {
                    thread::sleep(common::ACCEPT_PAUSE);
                }
                continue;
            }
        };
        debug!("{peer} connected");
        let buf_len = args.server.buf;
        let spawned = thread::Builder::new()
            .name("echo-conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || serve(stream, peer, buf_len));
        if let Err(error) = spawned {
            // Out of threads (RLIMIT_NPROC, kernel.threads-max, cgroup pids.max) or
            // memory. The closure, and the stream inside it, has been dropped, which
            // closes this connection; the server carries on with the next one.
            warn!("{peer}: cannot spawn a thread, dropping the connection: {error}");
        }
    }
}

/// Runs on the connection's own thread: echo, then log how it ended.
fn serve(stream: TcpStream, peer: SocketAddr, buf_len: usize) {
    match blocking_echo::echo(stream, &mut vec![0u8; buf_len]) {
        Ok(bytes) => debug!("{peer} disconnected after {bytes} bytes"),
        Err(error) => warn!("{peer}: {error}"),
    }
}
