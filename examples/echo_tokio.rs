//! The industry reference: the same echo server on tokio's current-thread runtime.
//!
//! ```text
//! cargo run --release --example echo_tokio -- --addr 127.0.0.1:7000
//! ```
//!
//! Then, from a second terminal:
//!
//! ```text
//! nc 127.0.0.1 7000
//! ```
//!
//! One task per connection, all on one thread, like `coop`. tokio is built with
//! `new_current_thread()` rather than `#[tokio::main]` (which would start one
//! worker thread per core), so that it is compared with `coop` on equal terms:
//! one thread, one `mio::Poll`, tasks multiplexed over it. Each task owns a
//! `--buf` byte buffer and runs the same loop as the blocking servers, with
//! `.await` where they would block.

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use log::{debug, warn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Echo server on tokio's current-thread runtime, one task per connection.")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
    /// How many ready events one wait on the OS may return (tokio's
    /// `max_io_events_per_tick`). Left at tokio's default, 1,024: tokio is
    /// the reference as people run it, and 128 measured no different for
    /// it at 10,000 connections (0.999 in alternation), unlike coop and
    /// the raw mio server. At least 1: tokio's builder panics at 0 (coop
    /// and the raw mio server take 0 as 1).
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    events: usize,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    common::init_logging();
    common::raise_fd_limit();

    let listener = common::bind_listener(args.server.addr)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(args.events)
        .build()?;
    runtime.block_on(accept_loop(listener, args.server.buf))
}

/// Accepts connections forever, spawning one task for each.
async fn accept_loop(listener: std::net::TcpListener, buf_len: usize) -> io::Result<()> {
    // `from_std` registers the (already non-blocking) socket with this runtime.
    let listener = TcpListener::from_std(listener)?;
    common::announce(listener.local_addr()?)?;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                debug!("{peer} connected");
                tokio::spawn(serve(stream, peer, buf_len));
            }
            Err(error) => {
                if common::accept_error_needs_pause(&error) {
                    tokio::time::sleep(common::ACCEPT_PAUSE).await;
                }
            }
        }
    }
}

/// One connection's task: echo, then log how it ended.
async fn serve(stream: TcpStream, peer: SocketAddr, buf_len: usize) {
    match echo(stream, buf_len).await {
        Ok(bytes) => debug!("{peer} disconnected after {bytes} bytes"),
        Err(error) => warn!("{peer}: {error}"),
    }
}

/// Echoes until the client closes its write side; returns the bytes echoed.
///
/// Returning drops the stream, which closes the connection.
async fn echo(mut stream: TcpStream, buf_len: usize) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; buf_len];
    let mut echoed = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(echoed); // the client shut down its write side
        }
        stream.write_all(&buf[..n]).await?;
        echoed += n as u64;
    }
}
