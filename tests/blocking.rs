//! The blocking pool: results, panics, sizing, and that the loop stays free.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use coop::Runtime;
use util::with_deadline;

#[test]
fn results_come_back_to_the_loop() {
    with_deadline(20, || {
        coop::block_on(async {
            let handles: Vec<_> = (0..20u64)
                .map(|i| coop::spawn_blocking(move || i * 2))
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            assert_eq!(total, (0..20u64).map(|i| i * 2).sum());
        });
    });
}

#[test]
fn a_panic_in_the_closure_becomes_a_join_error() {
    with_deadline(20, || {
        coop::block_on(async {
            let err = coop::spawn_blocking(|| -> u8 { panic!("job failed") })
                .await
                .unwrap_err();
            assert!(err.is_panic());
            assert_eq!(err.to_string(), "task panicked: job failed");
            // The pool survives its job's panic.
            assert_eq!(coop::spawn_blocking(|| 3).await.unwrap(), 3);
        });
    });
}

#[test]
fn the_pool_never_runs_more_threads_than_configured() {
    with_deadline(30, || {
        let rt = Runtime::builder().blocking_threads(3).build().unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let handles: Vec<_> = (0..12)
                .map(|_| {
                    let (running, peak) = (running.clone(), peak.clone());
                    coop::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        });
        assert_eq!(
            peak.load(Ordering::SeqCst),
            3,
            "3 threads, all used, never more"
        );
        let m = rt.metrics();
        assert_eq!(m.blocking_jobs, 12);
        assert!(m.blocking_threads <= 3);
    });
}

#[test]
fn jobs_run_in_parallel_up_to_the_pool_size() {
    with_deadline(30, || {
        let rt = Runtime::builder().blocking_threads(4).build().unwrap();
        rt.block_on(async {
            // Four jobs that can only finish together: a pool that ran them
            // one at a time would deadlock (and the deadline would fail us).
            let barrier = Arc::new(Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let b = barrier.clone();
                    coop::spawn_blocking(move || {
                        b.wait();
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        });
    });
}

#[test]
fn idle_threads_exit_after_the_keep_alive() {
    with_deadline(30, || {
        let rt = Runtime::builder()
            .blocking_keep_alive(Duration::from_millis(50))
            .build()
            .unwrap();
        rt.block_on(async {
            coop::spawn_blocking(|| ()).await.unwrap();
        });
        assert_eq!(rt.metrics().blocking_threads, 1);
        let start = Instant::now();
        while rt.metrics().blocking_threads > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the idle thread never exited"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn the_loop_keeps_serving_while_a_job_blocks() {
    with_deadline(30, || {
        coop::block_on(async {
            let job = coop::spawn_blocking(|| std::thread::sleep(Duration::from_millis(300)));
            // Meanwhile the loop ticks along every 10 ms.
            let mut ticks = 0;
            let mut interval = coop::time::interval(Duration::from_millis(10));
            while !job.is_finished() {
                interval.tick().await;
                ticks += 1;
            }
            job.await.unwrap();
            assert!(
                ticks >= 15,
                "the loop was blocked: only {ticks} ticks in 300 ms"
            );
        });
    });
}

#[test]
fn named_blocking_jobs_via_the_task_builder() {
    coop::block_on(async {
        let h = coop::task::Builder::new()
            .name("hash-file")
            .spawn_blocking(|| 7);
        assert_eq!(h.await.unwrap(), 7);
    });
}
