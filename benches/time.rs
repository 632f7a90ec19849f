//! Timer benchmarks through the public API: coop against tokio's
//! current-thread runtime, in the same criterion groups.
//!
//! ```text
//! cargo bench --bench time
//! ```
//!
//! One iteration is one operation, timed inside a single `block_on` per
//! sample (`iter_custom`), so neither runtime construction nor `block_on`
//! itself is measured.
//!
//! * `sleep_create_drop`: create a 1 s sleep, poll it once (which registers
//!   its timer) and drop it (which removes the timer): the life of most
//!   timeouts, which never fire.
//! * `timeout_fast_path`: `timeout(1 s, ready)` awaited, where the future is
//!   ready at once, so no timer should ever be registered.
//! * `sleep_zero`: `sleep(Duration::ZERO)` awaited: a deadline already
//!   reached. Not a like-for-like race: coop compares the deadline with
//!   `Instant::now()` and returns at once, while tokio rounds the deadline
//!   up to its next 1 ms tick and registers a timer, so its zero sleep
//!   parks the thread for a whole tick: its park timeout is the deadline's
//!   tick minus the current tick rounded down, 1 ms, so each zero sleep
//!   takes a millisecond or a little more. The group
//!   shows that difference in behaviour; its ratio is not a speed ratio.
//!
//! The tokio loops run inside `tokio::task::unconstrained`, so that tokio's
//! cooperative budget (128 operations per poll) cannot make a poll of a
//! tokio `Sleep` return `Pending` without touching the timer wheel. With
//! tokio 1.54 it would not anyway: a `Sleep` poll that returns `Pending`
//! gives its unit of budget back, a `timeout` whose future is ready spends
//! none, and a zero sleep parks, after which the task is polled with a fresh
//! budget. So this is a guard for other tokio versions, not a correction of
//! these numbers. coop has no budget.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

mod common;
use common::{coop_rt, group, tokio_rt};

/// The length of the sleeps and timeouts that are not meant to fire.
const LONG: Duration = Duration::from_secs(1);

/// Times `iters` runs of `op` inside one `block_on` of each runtime.
fn bench_both<CF, CO, TF, TO>(g: &mut BenchmarkGroup<WallTime>, coop_op: CO, tokio_op: TO)
where
    CO: Fn() -> CF,
    CF: Future<Output = ()>,
    TO: Fn() -> TF,
    TF: Future<Output = ()>,
{
    let rt = coop_rt();
    g.bench_function("coop", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    coop_op().await;
                }
                start.elapsed()
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(tokio::task::unconstrained(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio_op().await;
                }
                start.elapsed()
            }))
        })
    });
}

fn sleep_create_drop(c: &mut Criterion) {
    let mut g = group(c, "sleep_create_drop");
    bench_both(
        &mut g,
        || async {
            let mut sleep = pin!(coop::time::sleep(LONG));
            assert!(futures::poll!(sleep.as_mut()).is_pending());
        },
        || async {
            let mut sleep = pin!(tokio::time::sleep(LONG));
            assert!(futures::poll!(sleep.as_mut()).is_pending());
        },
    );
    g.finish();
}

fn timeout_fast_path(c: &mut Criterion) {
    let mut g = group(c, "timeout_fast_path");
    bench_both(
        &mut g,
        || async {
            let out = coop::time::timeout(LONG, std::future::ready(black_box(1))).await;
            black_box(out.unwrap());
        },
        || async {
            let out = tokio::time::timeout(LONG, std::future::ready(black_box(1))).await;
            black_box(out.unwrap());
        },
    );
    g.finish();
}

fn sleep_zero(c: &mut Criterion) {
    let mut g = group(c, "sleep_zero");
    bench_both(
        &mut g,
        || coop::time::sleep(Duration::ZERO),
        || tokio::time::sleep(Duration::ZERO),
    );
    g.finish();
}

criterion_group!(benches, sleep_create_drop, timeout_fast_path, sleep_zero);
criterion_main!(benches);
