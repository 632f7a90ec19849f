//! I/O-bound work: fetch `pages` pages from the delay server.
//!
//! Each fetch spends almost all its time *waiting* for the server (50 ms)
//! and almost none computing. The four models differ only in how many
//! fetches may wait at the same time:
//!
//! | model        | who waits                     | at once   |
//! |--------------|-------------------------------|-----------|
//! | `sequential` | the main thread               | 1         |
//! | `threads`    | one OS thread per page        | `pages`   |
//! | `pool`       | a fixed pool of threads       | pool size |
//! | `coop`       | one task per page, one thread | `pages`   |

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::Report;
use crate::server::{fetch, fetch_blocking};
use crate::timeline::{Picture, Timeline};

/// One page after another on the main thread.
pub fn sequential(addr: SocketAddr, pages: usize, delay: Duration) -> io::Result<Report> {
    let mut timeline = Timeline::new();
    for page in 0..pages {
        let start = Instant::now();
        let sent = fetch_blocking(addr, delay)?;
        timeline.request(format!("page {page} · main"), start, sent, Instant::now());
    }
    Ok(Report::picture(Picture::Lanes(timeline)))
}

/// A new OS thread for every page; each blocks in `read` until its reply.
pub fn threads(addr: SocketAddr, pages: usize, delay: Duration) -> io::Result<Report> {
    let mut timeline = Timeline::new();
    let spans = thread::scope(|scope| {
        let handles: Vec<_> = (0..pages)
            .map(|_| {
                scope.spawn(move || {
                    let start = Instant::now();
                    let sent = fetch_blocking(addr, delay)?;
                    Ok((start, sent, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fetch thread panicked"))
            .collect::<io::Result<Vec<_>>>()
    })?;
    for (page, (start, sent, end)) in spans.into_iter().enumerate() {
        timeline.request(format!("page {page} · thread {page}"), start, sent, end);
    }
    Ok(Report::picture(Picture::Lanes(timeline)))
}

/// `size` threads take the next page from a shared counter until none is
/// left: at most `size` fetches wait at once.
pub fn pool(addr: SocketAddr, pages: usize, delay: Duration, size: usize) -> io::Result<Report> {
    let mut timeline = Timeline::new();
    let next = AtomicUsize::new(0);
    let mut spans = thread::scope(|scope| {
        let handles: Vec<_> = (0..size)
            .map(|worker| {
                let next = &next;
                scope.spawn(move || -> io::Result<Vec<_>> {
                    let mut done = Vec::new();
                    loop {
                        let page = next.fetch_add(1, Ordering::Relaxed);
                        if page >= pages {
                            return Ok(done);
                        }
                        let start = Instant::now();
                        let sent = fetch_blocking(addr, delay)?;
                        done.push((page, worker, start, sent, Instant::now()));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().expect("a pool thread panicked")?);
        }
        Ok::<_, io::Error>(all)
    })?;
    spans.sort_by_key(|&(page, ..)| page);
    for (page, worker, start, sent, end) in spans {
        let label = format!("page {page} · pool {worker}");
        timeline.request(label, start, sent, end);
    }
    Ok(Report::picture(Picture::Lanes(timeline)))
}

/// One coop task per page, all on this thread's loop.
pub fn coop(addr: SocketAddr, pages: usize, delay: Duration, trace: bool) -> io::Result<Report> {
    let rt = coop::Runtime::builder()
        .trace(trace)
        .slow_poll_warnings(true)
        .build()?;
    rt.block_on(async {
        let tasks: Vec<_> = (0..pages)
            .map(|page| {
                coop::task::Builder::new()
                    .name(format!("page {page}"))
                    .spawn(fetch(addr, delay))
            })
            .collect();
        for task in tasks {
            task.await.map_err(io::Error::other)??;
        }
        Ok::<_, io::Error>(())
    })?;
    Ok(Report::coop(&rt))
}
