//! The delay server: a stand-in for a slow web site, and its two clients.
//!
//! The protocol is one line each way. The client sends `<delay_ms>\n`; the
//! server waits that long, answers with a [`PAGE_BYTES`]-byte "page" and
//! closes the connection:
//!
//! ```text
//!  client                          server (coop, its own thread)
//!  connect, "50\n"  ───────────▶   task: read the line
//!                                  coop::time::sleep(50 ms)   (no thread held)
//!  read to EOF      ◀───────────   4096 bytes, close
//! ```
//!
//! The server is itself a coop program: one task per connection, each
//! sleeping on a timer, so it answers 100 requests at once on one thread
//! and never becomes the bottleneck of the experiments.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Size of every reply.
pub const PAGE_BYTES: usize = 4096;

/// Starts the server on `127.0.0.1:0` in a thread of its own and returns
/// its address. It runs until the process exits.
pub fn start() -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("delay-server".into())
        .spawn(move || {
            coop::block_on(async move {
                let listener = match coop::net::TcpListener::bind("127.0.0.1:0") {
                    Ok(listener) => listener,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                let _ = tx.send(listener.local_addr());
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => drop(coop::spawn(serve(stream))),
                        Err(e) => {
                            // Out of descriptors (EMFILE), say: the
                            // connection waits in the backlog, so an
                            // accept retried at once would fail at once,
                            // and spin (chapter 07, "Out of file descriptors").
                            log::warn!("delay server: accept failed: {e}");
                            coop::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("the delay server did not start"))?
}

/// One connection: read the delay, sleep, answer, close. The line `cpu`
/// asks instead for the CPU time the server's thread has used so far (in
/// ns), so that a run's CPU column can leave the server's share out.
async fn serve(stream: coop::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    if line.trim() == "cpu" {
        let ns = (crate::measure::thread_cpu_secs_now() * 1e9) as u64;
        let _ = reader
            .into_inner()
            .write_all(ns.to_string().as_bytes())
            .await;
        return;
    }
    let delay_ms: u64 = line.trim().parse().unwrap_or(0);
    coop::time::sleep(Duration::from_millis(delay_ms)).await;
    let mut stream = reader.into_inner();
    let _ = stream.write_all(&[b'.'; PAGE_BYTES]).await;
}

/// The CPU time the delay server's thread has used so far, in seconds.
pub fn cpu_secs(addr: SocketAddr) -> io::Result<f64> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"cpu\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let ns: u64 = answer
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("delay server's CPU time: {answer:?}")))?;
    Ok(ns as f64 / 1e9)
}

/// Fetches one page with blocking `std::net`: the calling thread sleeps in
/// the kernel until the reply comes. Returns when the request was sent.
pub fn fetch_blocking(addr: SocketAddr, delay: Duration) -> io::Result<Instant> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    // One write: two small ones could meet Nagle's algorithm.
    stream.write_all(format!("{}\n", delay.as_millis()).as_bytes())?;
    let sent = Instant::now();
    let mut page = Vec::with_capacity(PAGE_BYTES);
    stream.read_to_end(&mut page)?;
    check(page.len()).map(|()| sent)
}

/// Fetches one page with coop's sockets: at every `.await` that would
/// block, the task gives the loop back.
pub async fn fetch(addr: SocketAddr, delay: Duration) -> io::Result<()> {
    let mut stream = coop::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("{}\n", delay.as_millis()).as_bytes())
        .await?;
    let mut page = Vec::with_capacity(PAGE_BYTES);
    stream.read_to_end(&mut page).await?;
    check(page.len())
}

fn check(len: usize) -> io::Result<()> {
    if len == PAGE_BYTES {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "short page: {len} of {PAGE_BYTES} bytes"
        )))
    }
}
