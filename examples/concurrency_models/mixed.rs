//! Mixed work: CPU chunks and latency-sensitive I/O on the same loop.
//!
//! One task computes `chunks` jobs one after another; beside it, `pings`
//! tasks each wake at their own moment (ping i at i × `every`) and fetch a
//! page from the delay server (`delay`, a few ms). A ping's *latency* is
//! from the moment it was due to the moment its reply arrived: the server's
//! delay, plus however long the loop kept it waiting.
//!
//! - `coop` (inline): the CPU task computes on the loop and calls
//!   `yield_now` between chunks, a well-behaved CPU task. While a chunk
//!   runs, no ping can start or finish, however ready it is.
//! - `blocking`: the same task awaits `spawn_blocking(chunk)` instead. The
//!   loop stays free, and the pings are served on time.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Report;
use crate::cpu_bound::job;
use crate::server::fetch;

/// The sizes of the mixed experiment.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// CPU chunks (jobs 0..chunks of the CPU experiment), one after another.
    pub chunks: u64,
    /// Ping tasks.
    pub pings: u32,
    /// Ping i is due at i × every after the start.
    pub every: Duration,
    /// The server's delay for a ping.
    pub delay: Duration,
}

/// Runs the mix; `offload` chooses spawn_blocking over inline computing.
pub fn run(addr: SocketAddr, mix: Mix, offload: bool, trace: bool) -> io::Result<Report> {
    let rt = coop::Runtime::builder()
        .trace(trace)
        .slow_poll_warnings(true)
        .blocking_threads(1) // the chunks run one after another either way
        .build()?;
    let (mut latencies, answer) = rt.block_on(async {
        let start = Instant::now();
        let pings: Vec<_> = (0..mix.pings)
            .map(|i| {
                let due = start + mix.every * i;
                coop::task::Builder::new()
                    .name(format!("ping {i}"))
                    .spawn(async move {
                        coop::time::sleep_until(due).await;
                        fetch(addr, mix.delay).await?;
                        Ok::<_, io::Error>(due.elapsed())
                    })
            })
            .collect();
        let cpu = coop::task::Builder::new()
            .name("cpu chunks")
            .spawn(async move {
                let mut answer = 0u64;
                for x in 0..mix.chunks {
                    let sum = if offload {
                        coop::task::Builder::new()
                            .name(format!("chunk {x}"))
                            .spawn_blocking(move || job(x))
                            .await
                            .map_err(io::Error::other)?
                    } else {
                        let sum = job(x);
                        coop::yield_now().await; // let the loop look at the network
                        sum
                    };
                    answer = answer.wrapping_add(sum);
                }
                Ok::<_, io::Error>(answer)
            });
        let mut latencies = Vec::new();
        for ping in pings {
            latencies.push(ping.await.map_err(io::Error::other)??);
        }
        let answer = cpu.await.map_err(io::Error::other)??;
        Ok::<_, io::Error>((latencies, answer))
    })?;
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = latencies[(latencies.len() - 1) / 2];
    let max = latencies[latencies.len() - 1];
    Ok(Report {
        latency_ms: Some((ms(p50), ms(max))),
        // Both mixed models compute the same chunks: checked equal.
        answer: Some(answer),
        ..Report::coop(&rt)
    })
}
