//! Runtime benchmarks: coop against tokio's current-thread runtime, in the
//! same criterion groups, under tokio's standard benchmark names.
//!
//! ```text
//! cargo bench --bench runtime
//! ```
//!
//! Each group has two functions, `coop` and `tokio_current_thread`, running
//! the same workload; only the runtime differs. Where the workload needs a
//! channel, both use the same one from the `futures` crate. Each runtime is
//! built once, before its function is measured, so no measurement includes
//! building a runtime.
//!
//! * `spawn_many`: spawn 10,000 tasks that each return a number, then await
//!   every handle.
//! * `yield_many`: 100 tasks each yield 100 times; await every handle.
//! * `ping_pong`: two tasks bounce a message back and forth 1,000 times
//!   over a pair of `futures::channel::mpsc` unbounded channels.
//! * `chained_spawn`: a task spawns a task that spawns a task ... 1,000
//!   deep; the last one completes a `futures::channel::oneshot`.
//! * `remote_wake`: one round trip with a std thread: a task asks the thread
//!   (over a std channel) and waits on a `futures` channel for its answer,
//!   so every answer wakes the loop from another thread. One iteration is
//!   one round trip, and checks that the answer is the one asked for.
//! * `tcp_echo_round_trip`: one TCP connection over loopback to an echo task
//!   in the same runtime; one iteration writes 64 bytes and reads the echo,
//!   and checks it (each round sends a different byte, so a stale or
//!   repeated echo fails).
//!
//! Tokio's cooperative budget stays on here (it is part of what its
//! scheduler costs); coop has none.

use std::hint::black_box;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{coop_rt, group, tokio_rt};
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

/// Tasks in `spawn_many`.
const SPAWN: usize = 10_000;
/// Tasks in `yield_many`.
const YIELD_TASKS: usize = 100;
/// Yields per task in `yield_many`.
const YIELDS: usize = 100;
/// Round trips in one `ping_pong` iteration.
const PINGS: usize = 1_000;
/// Depth of `chained_spawn`.
const CHAIN: usize = 1_000;
/// Bytes per write in `tcp_echo_round_trip`.
const MESSAGE: usize = 64;

fn spawn_many(c: &mut Criterion) {
    let mut g = group(c, "spawn_many");
    let rt = coop_rt();
    g.bench_function("coop", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..SPAWN).map(|i| coop::spawn(async move { i })).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                black_box(sum)
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..SPAWN).map(|i| tokio::spawn(async move { i })).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                black_box(sum)
            })
        })
    });
    g.finish();
}

fn yield_many(c: &mut Criterion) {
    let mut g = group(c, "yield_many");
    let rt = coop_rt();
    g.bench_function("coop", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        coop::spawn(async {
                            for _ in 0..YIELDS {
                                coop::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..YIELDS {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

/// The pinging side: sends `PINGS` messages, waiting for each answer.
async fn ping(tx: mpsc::UnboundedSender<usize>, mut rx: mpsc::UnboundedReceiver<usize>) -> usize {
    let mut last = 0;
    for i in 0..PINGS {
        tx.unbounded_send(i).unwrap();
        last = rx.next().await.unwrap();
    }
    last
}

/// The ponging side: answers every message until the pinger hangs up.
async fn pong(tx: mpsc::UnboundedSender<usize>, mut rx: mpsc::UnboundedReceiver<usize>) {
    while let Some(i) = rx.next().await {
        tx.unbounded_send(i).unwrap();
    }
}

fn ping_pong(c: &mut Criterion) {
    let mut g = group(c, "ping_pong");
    let rt = coop_rt();
    g.bench_function("coop", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (to_pong, pong_rx) = mpsc::unbounded();
                let (to_ping, ping_rx) = mpsc::unbounded();
                let ponger = coop::spawn(pong(to_ping, pong_rx));
                let pinger = coop::spawn(ping(to_pong, ping_rx));
                let last = pinger.await.unwrap();
                ponger.await.unwrap();
                assert_eq!(last, PINGS - 1);
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (to_pong, pong_rx) = mpsc::unbounded();
                let (to_ping, ping_rx) = mpsc::unbounded();
                let ponger = tokio::spawn(pong(to_ping, pong_rx));
                let pinger = tokio::spawn(ping(to_pong, ping_rx));
                let last = pinger.await.unwrap();
                ponger.await.unwrap();
                assert_eq!(last, PINGS - 1);
            })
        })
    });
    g.finish();
}

fn coop_chain(done: oneshot::Sender<()>, n: usize) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        coop::spawn(async move { coop_chain(done, n - 1) });
    }
}

fn tokio_chain(done: oneshot::Sender<()>, n: usize) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        tokio::spawn(async move { tokio_chain(done, n - 1) });
    }
}

fn chained_spawn(c: &mut Criterion) {
    let mut g = group(c, "chained_spawn");
    let rt = coop_rt();
    g.bench_function("coop", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (done, finished) = oneshot::channel();
                coop::spawn(async move { coop_chain(done, CHAIN) });
                finished.await.unwrap();
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (done, finished) = oneshot::channel();
                tokio::spawn(async move { tokio_chain(done, CHAIN) });
                finished.await.unwrap();
            })
        })
    });
    g.finish();
}

/// A std thread that answers every request on `requests` with a message on
/// the returned `futures` channel: each answer is a wake from another
/// thread. The thread ends when the request sender is dropped.
fn echo_thread() -> (
    std_mpsc::Sender<u64>,
    mpsc::UnboundedReceiver<u64>,
    std::thread::JoinHandle<()>,
) {
    let (req_tx, req_rx) = std_mpsc::channel::<u64>();
    let (resp_tx, resp_rx) = mpsc::unbounded();
    let thread = std::thread::spawn(move || {
        for n in req_rx {
            if resp_tx.unbounded_send(n).is_err() {
                break;
            }
        }
    });
    (req_tx, resp_rx, thread)
}

/// `iters` round trips with the helper thread, from a task spawned on the
/// loop. Returns the receiver for the next sample, and the time taken.
async fn remote_round_trips(
    req_tx: std_mpsc::Sender<u64>,
    mut resp_rx: mpsc::UnboundedReceiver<u64>,
    iters: u64,
) -> (
    std_mpsc::Sender<u64>,
    mpsc::UnboundedReceiver<u64>,
    Duration,
) {
    let start = Instant::now();
    for i in 0..iters {
        req_tx.send(i).unwrap();
        let answer = resp_rx.next().await.unwrap();
        // `assert`, not `debug_assert`: benches build without debug
        // assertions, and a check that is compiled out verifies nothing.
        assert_eq!(answer, i);
    }
    (req_tx, resp_rx, start.elapsed())
}

fn remote_wake(c: &mut Criterion) {
    let mut g = group(c, "remote_wake");

    let rt = coop_rt();
    let (req_tx, resp_rx, thread) = echo_thread();
    let mut ends = Some((req_tx, resp_rx));
    g.bench_function("coop", |b| {
        b.iter_custom(|iters| {
            let (req_tx, resp_rx) = ends.take().unwrap();
            let (req_tx, resp_rx, took) = rt.block_on(async move {
                coop::spawn(remote_round_trips(req_tx, resp_rx, iters))
                    .await
                    .unwrap()
            });
            ends = Some((req_tx, resp_rx));
            took
        })
    });
    drop(ends);
    thread.join().unwrap();

    let rt = tokio_rt();
    let (req_tx, resp_rx, thread) = echo_thread();
    let mut ends = Some((req_tx, resp_rx));
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            let (req_tx, resp_rx) = ends.take().unwrap();
            let (req_tx, resp_rx, took) = rt.block_on(async move {
                tokio::spawn(remote_round_trips(req_tx, resp_rx, iters))
                    .await
                    .unwrap()
            });
            ends = Some((req_tx, resp_rx));
            took
        })
    });
    drop(ends);
    thread.join().unwrap();

    g.finish();
}

fn tcp_echo_round_trip(c: &mut Criterion) {
    let mut g = group(c, "tcp_echo_round_trip");

    {
        use futures::io::{AsyncReadExt, AsyncWriteExt};

        let rt = coop_rt();
        // The connection and its echo task live for the whole function.
        let mut client = rt.block_on(async {
            let listener = coop::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            coop::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let client = coop::net::TcpStream::connect(addr).await.unwrap();
            client.set_nodelay(true).unwrap();
            client
        });
        g.bench_function("coop", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut back = [0u8; MESSAGE];
                    let start = Instant::now();
                    for i in 0..iters {
                        // A different byte each round (never 0, what `back`
                        // starts as), checked each round: a lost, repeated
                        // or stale echo cannot pass.
                        let out = [(i % 255) as u8 + 1; MESSAGE];
                        client.write_all(&out).await.unwrap();
                        client.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, out);
                    }
                    start.elapsed()
                })
            })
        });
        // Closing the client ends the echo task at its next read.
        drop(client);
    }

    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let rt = tokio_rt();
        let mut client = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client.set_nodelay(true).unwrap();
            client
        });
        g.bench_function("tokio_current_thread", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut back = [0u8; MESSAGE];
                    let start = Instant::now();
                    for i in 0..iters {
                        // A different byte each round (never 0, what `back`
                        // starts as), checked each round: a lost, repeated
                        // or stale echo cannot pass.
                        let out = [(i % 255) as u8 + 1; MESSAGE];
                        client.write_all(&out).await.unwrap();
                        client.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, out);
                    }
                    start.elapsed()
                })
            })
        });
        drop(client);
    }

    g.finish();
}

criterion_group!(
    benches,
    spawn_many,
    yield_many,
    ping_pong,
    chained_spawn,
    remote_wake,
    tcp_echo_round_trip
);
criterion_main!(benches);
