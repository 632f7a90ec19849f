//! The async echo server: one `coop` task per connection, on one thread.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7000 --buf 4096
//! ```
//!
//! and talk to it from a second terminal: `nc 127.0.0.1 7000` (type a line,
//! get it back). Every connection is a task that reads into its own
//! `--buf`-byte buffer and writes back what it read; while one connection
//! waits for data, the loop serves the others. It serves 10,000 concurrent
//! connections on one thread (`examples/loadgen.rs --conns 10000`).
//!
//! Connects and disconnects are logged at `info`; set `RUST_LOG=warn` to
//! silence them under load.

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::{TcpListener, TcpStream};

/// An echo server on the coop runtime.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// Bytes of buffer per connection.
    #[arg(long, default_value_t = 4096)]
    buf: usize,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    // 10,000 connections need 10,000 descriptors: raise the soft limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    coop::block_on(async move {
        let listener = TcpListener::bind(&args.addr)?;
        let local = listener.local_addr()?;
        log::info!("listening on {local}");
        // A parent process (the shootout) reads this line for the port.
        println!("listening on {local}");

        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    log::info!("{peer}: connected");
                    coop::spawn(serve(stream, peer, args.buf));
                }
                // Out of descriptors (EMFILE), or a connection reset before
                // we accepted it: log it and keep serving everyone else.
                Err(e) => log::warn!("accept failed: {e}"),
            }
        }
    })
}

/// Echoes everything `peer` sends until it closes its side.
async fn serve(mut stream: TcpStream, peer: SocketAddr, buf_size: usize) {
    let mut buf = vec![0u8; buf_size];
    let result: io::Result<()> = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(()); // the client shut down its write side
            }
            stream.write_all(&buf[..n]).await?;
        }
    }
    .await;
    match result {
        Ok(()) => log::info!("{peer}: disconnected"),
        Err(e) => log::warn!("{peer}: connection error: {e}"),
    }
}
