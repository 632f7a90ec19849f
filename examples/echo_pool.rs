//! An echo server on a fixed pool of worker threads, each serving one connection at a time.
//!
//! ```text
//! cargo run --release --example echo_pool -- --addr 127.0.0.1:7000 --workers 8
//! ```
//!
//! Then, from a second terminal (open more than `--workers` of these to see the
//! extra ones wait):
//!
//! ```text
//! nc 127.0.0.1 7000
//! ```
//!
//! This is the design of Python's `ThreadPoolExecutor` or a servlet container's
//! request pool: the main thread accepts connections and sends them over a
//! channel; `--workers` threads (default 8) take them one by one, and each worker
//! serves its connection with blocking reads and writes **until the client
//! closes it**. Then it takes the next one.
//!
//! So with more connections than workers, the extra connections are accepted but
//! not served: their bytes sit in the kernel's socket buffers, and the clients see
//! no echo at all until a worker frees up. That is the point of including it.
//! A pool bounds the threads, which is right for short requests, but a
//! long-lived connection holds its worker for its whole life, so a pool cannot
//! serve many idle or slow connections at once. The event-driven servers
//! (`echo_mio_raw`, `echo_tokio`) can, on one thread.
//!
//! The queue between acceptor and workers is unbounded, like the executor's work
//! queue: every connection is accepted at once and waits in the queue.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

use clap::Parser;
use log::{debug, info, warn};

#[path = "common/blocking_echo.rs"]
mod blocking_echo;
mod common;

#[derive(Parser, Debug)]
#[command(about = "Echo server on a fixed pool of threads, one connection per worker at a time.")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,

    /// Number of worker threads, which is also how many connections are served at once.
    #[arg(long, default_value_t = 8,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    workers: usize,
}

/// An accepted connection, on its way from the acceptor to a worker.
type Job = (TcpStream, SocketAddr);

fn main() -> io::Result<()> {
    let args = Args::parse();
    common::init_logging();
    common::raise_fd_limit();

    let listener = common::bind_listener(args.server.addr)?;
    listener.set_nonblocking(false)?;

    // One channel, many workers: the receiver sits behind a mutex, and whichever
    // worker holds the lock waits in `recv` for the next connection.
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for id in 0..args.workers {
        let receiver = Arc::clone(&receiver);
        let buf_len = args.server.buf;
        thread::Builder::new()
            .name(format!("echo-worker-{id}"))
            .spawn(move || worker(&receiver, buf_len))?;
    }
    info!("{} workers", args.workers);
    common::announce(listener.local_addr()?)?;

    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                debug!("{peer} connected");
                // Fails only if every worker is gone, which `worker` never allows.
                sender
                    .send((stream, peer))
                    .expect("the workers hold the receiver");
            }
            Err(error) => {
                if common::accept_error_needs_pause(&error) {
                    thread::sleep(common::ACCEPT_PAUSE);
                }
            }
        }
    }
}

/// A worker's life: take the next connection, serve it until it closes, repeat.
fn worker(receiver: &Mutex<Receiver<Job>>, buf_len: usize) {
    // One buffer per worker, reused by every connection it serves.
    let mut buf = vec![0u8; buf_len];
    loop {
        // The guard is a temporary: the lock is released as soon as `recv` returns.
        let next = receiver
            .lock()
            .expect("no worker panics while holding the lock")
            .recv();
        let Ok((stream, peer)) = next else {
            return; // the acceptor is gone: the server is shutting down
        };
        match blocking_echo::echo(stream, &mut buf) {
            Ok(bytes) => debug!("{peer} disconnected after {bytes} bytes"),
            Err(error) => warn!("{peer}: {error}"),
        }
    }
}
