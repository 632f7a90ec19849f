//! A paused clock: timers that jump instead of waiting, and what holds the
//! jump back (a ready socket, an awaited blocking job).
//!
//! Every test here would take minutes or hours of real time if the clock
//! did not jump, so each runs under a deadline of a few seconds: a clock
//! that waits fails the test instead of stalling it.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::Runtime;
use coop::net::TcpStream;
use coop::time::{self, MissedTickBehavior, TimerBackend};
use util::{listener, with_deadline};

fn paused(backend: TimerBackend) -> Runtime {
    Runtime::builder()
        .start_paused(true)
        .timer_backend(backend)
        .build()
        .unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn an_hour_of_sleep_takes_no_time_on_every_backend() {
    for backend in [TimerBackend::Wheel, TimerBackend::Heap, TimerBackend::BTree] {
        with_deadline(10, move || {
            let rt = paused(backend);
            let wall = Instant::now();
            let (slept, order) = rt.block_on(async {
                let start = time::now();
                let order = Rc::new(std::cell::RefCell::new(Vec::new()));
                // Three sleepers, spawned longest first: they must still
                // wake in deadline order, each at its own deadline.
                let sleepers: Vec<_> = [3u64, 1, 2]
                    .into_iter()
                    .map(|minutes| {
                        let order = order.clone();
                        coop::spawn(async move {
                            time::sleep(Duration::from_secs(60 * minutes)).await;
                            order.borrow_mut().push((minutes, time::now() - start));
                        })
                    })
                    .collect();
                time::sleep(HOUR).await;
                for sleeper in sleepers {
                    sleeper.await.unwrap();
                }
                let order = order.borrow().clone();
                (time::now() - start, order)
            });
            assert_eq!(slept, HOUR, "{backend:?}");
            let minute = |m: u64| Duration::from_secs(60 * m);
            assert_eq!(
                order,
                vec![(1, minute(1)), (2, minute(2)), (3, minute(3))],
                "{backend:?}"
            );
            assert!(
                wall.elapsed() < Duration::from_secs(5),
                "{:?}",
                wall.elapsed()
            );
            // No timer was late by the clock that fired it.
            assert_eq!(rt.metrics().timer_lateness.max(), Duration::ZERO);
        });
    }
}

#[test]
fn a_timeout_on_a_silent_peer_fires_at_once_in_real_time() {
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        let wall = Instant::now();
        rt.block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (_silent, _) = listener.accept().await.unwrap();
            let start = time::now();
            let mut buf = [0u8; 16];
            let read = time::timeout(Duration::from_secs(30), client.read(&mut buf)).await;
            assert!(
                read.is_err(),
                "the peer never wrote, yet the read got {read:?}"
            );
            assert_eq!(time::now() - start, Duration::from_secs(30));
        });
        assert!(
            wall.elapsed() < Duration::from_secs(5),
            "{:?}",
            wall.elapsed()
        );
    });
}

#[test]
fn a_ready_socket_wins_over_the_jump() {
    // The writer sleeps 10 ms of clock time, then writes. The reader's
    // timeout is a second. After the jump to 10 ms, the reply is on the
    // loopback socket before the loop next decides to jump: it must look
    // at the sockets first, and the read must get the reply.
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        rt.block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let start = time::now();
            let writer = coop::spawn(async move {
                time::sleep(Duration::from_millis(10)).await;
                server.write_all(b"pong").await.unwrap();
                server // kept open
            });
            let mut buf = [0u8; 4];
            let read = time::timeout(Duration::from_secs(1), client.read_exact(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(()))),
                "the reply was ready, but the clock jumped to the timeout: {read:?}"
            );
            assert_eq!(&buf, b"pong");
            assert_eq!(time::now() - start, Duration::from_millis(10));
            drop(writer.await.unwrap());
        });
    });
}

#[test]
fn an_awaited_blocking_job_holds_the_clock_back() {
    // The job takes 50 ms of real time; the timeout is 10 ms of clock
    // time. A clock that jumped while the job ran would time it out.
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        rt.block_on(async {
            let start = time::now();
            let job = coop::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(50));
                7
            });
            let result = time::timeout(Duration::from_millis(10), job).await;
            assert!(
                matches!(result, Ok(Ok(7))),
                "the clock jumped past a job still running: {result:?}"
            );
            assert_eq!(time::now(), start, "nothing moved the clock");
        });
    });
}

#[test]
fn an_aborted_blocking_job_no_longer_holds_the_clock() {
    // Nobody waits for the job's result once its handle is aborted, so the
    // clock may jump again while the job's thread still sleeps.
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        let wall = Instant::now();
        rt.block_on(async {
            let job = coop::spawn_blocking(|| std::thread::sleep(Duration::from_secs(3)));
            job.abort();
            assert!(job.await.unwrap_err().is_cancelled());
            time::sleep(HOUR).await;
        });
        assert!(
            wall.elapsed() < Duration::from_secs(2),
            "the sleep waited for the aborted job: {:?}",
            wall.elapsed()
        );
    });
}

#[test]
fn advance_fires_what_came_due_and_nothing_else() {
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        rt.block_on(async {
            let fired = Rc::new(Cell::new(0));
            for secs in [10, 20, 30] {
                let fired = fired.clone();
                coop::spawn(async move {
                    time::sleep(Duration::from_secs(secs)).await;
                    fired.set(fired.get() + 1);
                });
            }
            coop::yield_now().await; // the sleepers file their timers
            time::advance(Duration::from_secs(9)).await;
            assert_eq!(fired.get(), 0);
            time::advance(Duration::from_secs(1)).await;
            assert_eq!(
                fired.get(),
                1,
                "advance returned before the due timer's task ran"
            );
            time::advance(Duration::from_secs(15)).await;
            assert_eq!(fired.get(), 2);
        });
    });
}

#[test]
fn an_interval_ticks_exactly_on_its_grid() {
    // On a real clock every tick is served a little late (1 ms ticks, a
    // busy loop). On a paused one each is served exactly when it is due,
    // whatever the policy: no tick is ever missed.
    for policy in [
        MissedTickBehavior::Burst,
        MissedTickBehavior::Delay,
        MissedTickBehavior::Skip,
    ] {
        with_deadline(10, move || {
            let rt = paused(TimerBackend::Wheel);
            rt.block_on(async move {
                let start = time::now();
                let period = Duration::from_millis(250);
                let mut ticks = time::interval(period);
                ticks.set_missed_tick_behavior(policy);
                for k in 0..1000u32 {
                    let scheduled = ticks.tick().await;
                    assert_eq!(scheduled, start + period * k, "{policy:?}");
                    assert_eq!(time::now(), scheduled, "{policy:?}");
                }
            });
        });
    }
}

#[test]
fn pause_and_resume_from_a_task() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let wall = Instant::now();
        rt.block_on(async {
            time::pause();
            let paused_at = time::now();
            time::sleep(HOUR).await;
            // Paused mid-millisecond: the deadline rounds up to the next
            // whole tick of the runtime's clock, and the jump lands there.
            let slept = time::now() - paused_at;
            assert!(
                slept >= HOUR && slept < HOUR + Duration::from_millis(1),
                "{slept:?}"
            );
            time::resume();
            // Running again, an hour ahead of the machine, at its pace.
            let resumed_at = time::now();
            time::sleep(Duration::from_millis(20)).await;
            let slept = time::now() - resumed_at;
            assert!(slept >= Duration::from_millis(20), "{slept:?}");
            assert!(time::now() > Instant::now() + HOUR - Duration::from_secs(60));
        });
        assert!(
            wall.elapsed() < Duration::from_secs(5),
            "{:?}",
            wall.elapsed()
        );
    });
}

#[test]
fn a_real_clock_still_waits() {
    // The control: the same sleep on a runtime whose clock runs takes its
    // time, and advance refuses a running clock.
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let wall = Instant::now();
        rt.block_on(time::sleep(Duration::from_millis(30)));
        assert!(wall.elapsed() >= Duration::from_millis(30));
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(time::advance(Duration::from_secs(1)))
        }));
        let message = refused.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("not paused"), "{message}");
    });
}

#[test]
fn time_outside_a_runtime_is_the_real_time() {
    let before = Instant::now();
    let now = time::now();
    assert!(before <= now && now <= Instant::now());
    assert!(std::panic::catch_unwind(time::pause).is_err());
}

/// Thirty years: `sleep(Duration::MAX)`'s "never" is about that far.
const DECADES: Duration = Duration::from_secs(86_400 * 365 * 29);

#[test]
fn a_sleep_of_duration_max_never_ends_early_even_after_a_far_jump() {
    // The first `sleep(Duration::MAX)` is the only timer, so the clock
    // jumps to its "never", 30 years ahead of the machine. The second one
    // must again be 30 years ahead of the *clock*. (Review, session 34:
    // "never" was counted from the machine's time, so the second sleep,
    // and every interval tick after the first far one, was due at once.)
    for backend in [TimerBackend::Wheel, TimerBackend::Heap, TimerBackend::BTree] {
        with_deadline(10, move || {
            let rt = paused(backend);
            rt.block_on(async {
                let start = time::now();
                time::sleep(Duration::MAX).await;
                let first = time::now();
                assert!(first - start >= DECADES, "{backend:?}: {:?}", first - start);
                time::sleep(Duration::MAX).await;
                let second = time::now() - first;
                assert!(
                    second >= DECADES,
                    "{backend:?}: the second slept {second:?}"
                );
                let mut never = time::interval(Duration::MAX);
                let ticks = [never.tick().await, never.tick().await, never.tick().await];
                assert!(ticks[1] - ticks[0] >= DECADES, "{backend:?}");
                assert!(
                    ticks[2] - ticks[1] >= DECADES,
                    "{backend:?}: the third tick came {:?} after the second",
                    ticks[2] - ticks[1]
                );
            });
        });
    }
}

#[test]
fn a_filed_sleep_is_elapsed_by_its_runtimes_clock_between_block_on_calls() {
    // The clock stands still while the machine's runs on, so between two
    // `block_on` calls the machine's time says a 20 ms sleep filed on the
    // paused clock is over when it is not. (Review, session 34.)
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        std::thread::sleep(Duration::from_millis(50));
        #[allow(clippy::async_yields_async)] // the sleep is the point
        let mut sleep = rt.block_on(async {
            let mut sleep = Box::pin(time::sleep(Duration::from_millis(20)));
            assert!(futures::poll!(sleep.as_mut()).is_pending()); // filed
            sleep
        });
        assert!(
            !sleep.is_elapsed(),
            "elapsed by the machine's clock, not by the runtime's"
        );
        let start = rt.block_on(async { time::now() });
        rt.block_on(sleep.as_mut());
        assert!(sleep.is_elapsed());
        assert_eq!(
            rt.block_on(async { time::now() }) - start,
            Duration::from_millis(20)
        );
    });
}

#[test]
fn a_detached_blocking_job_holds_the_clock_until_it_ends() {
    // Nobody awaits the job, but it runs in real time, and its small task
    // on the loop holds the clock until the result is in (as tokio's
    // blocking tasks do): the hour of sleep waits for the job's 100 ms.
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        let wall = Instant::now();
        rt.block_on(async {
            drop(coop::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(100))
            }));
            time::sleep(HOUR).await;
        });
        let waited = wall.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    });
}

/// `reset` restarts the schedule from now: the next tick is a whole
/// period later (not at once, nor on the old grid), and the ticks after it
/// keep the new grid.
#[test]
fn an_interval_reset_ticks_a_period_from_now() {
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        rt.block_on(async {
            let period = Duration::from_millis(100);
            let start = time::now();
            let mut ticks = time::interval(period);
            assert_eq!(ticks.tick().await, start);
            time::sleep(Duration::from_millis(30)).await;
            let reset_at = time::now();
            ticks.reset();
            assert_eq!(ticks.tick().await, reset_at + period);
            assert!(time::now() >= reset_at + period);
            assert_eq!(ticks.tick().await, reset_at + period * 2);
        });
    });
}

/// A zero period is refused, as the docs say (an interval due again at
/// the instant of every tick would never let its task wait).
#[test]
fn an_interval_with_a_zero_period_panics() {
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                drop(time::interval(Duration::ZERO));
            })
        }));
        let panic = refused.expect_err("an interval of period zero was made");
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(message.contains("the period must be non-zero"), "{message}");
    });
}

/// An interval reads back its period and the policy it was given.
#[test]
fn an_interval_reads_back_its_period_and_policy() {
    with_deadline(10, || {
        let rt = paused(TimerBackend::Wheel);
        rt.block_on(async {
            let mut ticks = time::interval(Duration::from_millis(70));
            assert_eq!(ticks.period(), Duration::from_millis(70));
            assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Burst);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Skip);
        });
    });
}
