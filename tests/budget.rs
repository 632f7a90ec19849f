//! The cooperative budget: a task whose sockets never make it wait still
//! gives the loop back (chapter 01, "A task that never has to wait").
//!
//! Each test fills a kernel buffer first, so that every operation of the
//! task under test succeeds at once, and spawns a second task behind it
//! that notes how far the first had got when it was first polled. Without
//! a budget that is "all the way": the first task would never return
//! `Pending`, and the second would wait for it to finish.

mod util;

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::{TcpStream, UdpSocket};
use coop::runtime::TASK_BUDGET;
use coop::task::{consume_budget, unconstrained};
use coop::time::MissedTickBehavior;
use util::{listener, with_deadline};

/// Enough operations to run past the budget more than twice.
const OPS: u32 = 4 * TASK_BUDGET as u32;

/// Spawns `hog`, then a second task, and returns the count `progress` had
/// when the second task first ran, and the count once `hog` finished.
async fn seen_by_the_next_task(
    hog: impl Future<Output = ()> + 'static,
    progress: Rc<Cell<u32>>,
) -> (u32, u32) {
    let hog = coop::spawn(hog);
    let look = progress.clone();
    let seen = coop::spawn(async move { look.get() }).await.unwrap();
    hog.await.unwrap();
    (seen, progress.get())
}

/// One more for `count`.
fn bump(count: &Cell<u32>) {
    count.set(count.get() + 1);
}

/// A connected pair whose server side has `OPS` chunks of 64 bytes
/// waiting in its receive buffer (checked with `peek`, so that no read
/// below can come up short of data still on its way).
async fn stream_with_data_waiting() -> (TcpStream, std::net::TcpStream) {
    let listener = listener();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.write_all(&vec![7; OPS as usize * 64]).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let mut all = vec![0; OPS as usize * 64];
    while server.peek(&mut all).await.unwrap() < all.len() {
        coop::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    (server, client)
}

/// Reads `OPS` chunks of 64 bytes, each there before it is asked for.
async fn read_chunks(mut server: TcpStream, reads: Rc<Cell<u32>>) {
    let mut chunk = [0; 64];
    for _ in 0..OPS {
        server.read_exact(&mut chunk).await.unwrap();
        bump(&reads);
    }
}

#[test]
fn a_reader_whose_data_is_all_there_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let (server, _client) = stream_with_data_waiting().await;
            let reads = Rc::new(Cell::new(0));
            let (seen, done) =
                seen_by_the_next_task(read_chunks(server, reads.clone()), reads).await;
            assert_eq!(done, OPS);
            assert_eq!(
                seen,
                u32::from(TASK_BUDGET),
                "the next task ran after {seen} reads, not after one budget"
            );
        });
    });
}

#[test]
fn a_writer_whose_buffer_has_room_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = listener();
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (_server, _) = listener.accept().await.unwrap();
            let writes = Rc::new(Cell::new(0));
            let count = writes.clone();
            // OPS x 64 bytes = 32 KiB: the peer's receive window takes
            // them all, unread.
            let writer = async move {
                for _ in 0..OPS {
                    client.write_all(&[1; 64]).await.unwrap();
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(writer, writes).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn an_accept_loop_under_a_backlog_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            // The handshakes end in the kernel, before any accept.
            let clients: Vec<_> = (0..OPS)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            let accepted = Rc::new(Cell::new(0));
            let count = accepted.clone();
            let acceptor = async move {
                for _ in 0..OPS {
                    listener.accept().await.unwrap();
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(acceptor, accepted).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
            drop(clients);
        });
    });
}

#[test]
fn a_udp_receiver_with_datagrams_queued_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            // Room for every datagram: each costs the kernel far more
            // than its 8 bytes.
            socket2::SockRef::from(&socket)
                .set_recv_buffer_size(4 << 20)
                .unwrap();
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for n in 0..OPS {
                sender
                    .send_to(&u64::from(n).to_le_bytes(), socket.local_addr().unwrap())
                    .unwrap();
            }
            let received = Rc::new(Cell::new(0));
            let count = received.clone();
            let receiver = async move {
                let mut buf = [0; 8];
                for n in 0..OPS {
                    let (len, _) = socket.recv_from(&mut buf).await.unwrap();
                    assert_eq!(buf[..len], u64::from(n).to_le_bytes());
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(receiver, received).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn unconstrained_lets_a_task_run_past_its_budget() {
    with_deadline(20, || {
        coop::block_on(async {
            let (server, _client) = stream_with_data_waiting().await;
            let reads = Rc::new(Cell::new(0));
            let hog = unconstrained(read_chunks(server, reads.clone()));
            let (seen, _) = seen_by_the_next_task(hog, reads).await;
            assert_eq!(seen, OPS, "an unconstrained reader was stopped");
        });
    });
}

#[test]
fn the_budget_is_back_after_an_unconstrained_future_returns() {
    with_deadline(20, || {
        coop::block_on(async {
            let (server, _client) = stream_with_data_waiting().await;
            let reads = Rc::new(Cell::new(0));
            let count = reads.clone();
            let hog = async move {
                // A few budget-free steps first; the reads after them are
                // counted again, from where the task's budget stood.
                unconstrained(async {
                    for _ in 0..2 * u32::from(TASK_BUDGET) {
                        consume_budget().await;
                    }
                })
                .await;
                read_chunks(server, count).await;
            };
            let (seen, _) = seen_by_the_next_task(hog, reads).await;
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn consume_budget_makes_a_cpu_loop_give_the_loop_back() {
    with_deadline(20, || {
        let runtime = coop::Runtime::new().unwrap();
        runtime.block_on(async {
            let steps = Rc::new(Cell::new(0));
            let count = steps.clone();
            let cpu = async move {
                for _ in 0..OPS {
                    consume_budget().await;
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(cpu, steps).await;
            assert_eq!(done, OPS);
            // 128 calls spend the budget; the next gives the loop back.
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
        // Each time the budget ran out the task woke itself: a yield.
        let yields = runtime.metrics().wakes.yields;
        assert!(
            yields >= u64::from(OPS / u32::from(TASK_BUDGET)) - 1,
            "{yields} yields"
        );
    });
}

#[test]
fn consume_budget_outside_a_runtime_is_ready_at_once() {
    futures::executor::block_on(async {
        for _ in 0..OPS {
            consume_budget().await;
        }
    });
}

#[test]
fn a_socket_polled_outside_its_loop_is_not_held_to_a_budget() {
    with_deadline(20, || {
        let (server, client) = coop::block_on(stream_with_data_waiting());
        // Another executor, no coop loop: ready reads never return
        // Pending for want of budget (no coop task would renew it).
        let polls = Rc::new(Cell::new(0));
        let count = polls.clone();
        let reads = Rc::new(Cell::new(0));
        let mut read = Box::pin(read_chunks(server, reads.clone()));
        futures::executor::block_on(futures::future::poll_fn(|cx| {
            bump(&count);
            read.as_mut().poll(cx)
        }));
        assert_eq!(reads.get(), OPS);
        assert_eq!(polls.get(), 1, "the reads were cut into several polls");
        drop(client);
    });
}

#[test]
fn consume_budget_gives_the_loop_back_once_every_budget() {
    with_deadline(20, || {
        coop::block_on(async {
            let steps = Rc::new(Cell::new(0));
            let count = steps.clone();
            let cpu = coop::spawn(async move {
                for _ in 0..OPS {
                    consume_budget().await;
                    bump(&count);
                }
            });
            // Runs after each of the CPU task's turns (both yield, and
            // the CPU task was queued first), and notes how far it got.
            let seen = coop::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    seen.push(steps.get());
                    if steps.get() == OPS {
                        return seen;
                    }
                    coop::yield_now().await;
                }
            });
            let seen = seen.await.unwrap();
            cpu.await.unwrap();
            // Every call spends a unit, the one that gave the loop back
            // too (in the turn where it returns, as a socket operation
            // tried again does): each turn takes exactly one budget.
            let budget = u32::from(TASK_BUDGET);
            assert_eq!(seen, [budget, 2 * budget, 3 * budget, OPS]);
        });
    });
}

/// A waker that opens (and closes) a coop socket when woken, then wakes
/// `0`: a combinator's waker may run any code, the reactor's included.
struct OpensASocket(std::task::Waker);

impl std::task::Wake for OpensASocket {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        drop(UdpSocket::bind("127.0.0.1:0").unwrap());
        self.0.wake_by_ref();
    }
}

#[test]
fn the_waker_of_an_operation_over_budget_may_use_the_reactor() {
    with_deadline(20, || {
        coop::block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let target = socket.local_addr().unwrap();
            // Spend this poll's budget: the send below, ready, must yield.
            for _ in 0..TASK_BUDGET {
                consume_budget().await;
            }
            let mut yields = 0;
            let sent = std::future::poll_fn(|cx| {
                let waker =
                    std::task::Waker::from(std::sync::Arc::new(OpensASocket(cx.waker().clone())));
                let polled =
                    socket.poll_send_to(&mut std::task::Context::from_waker(&waker), b"x", target);
                yields += usize::from(polled.is_pending());
                polled
            })
            .await
            .unwrap();
            assert_eq!((sent, yields), (1, 1));
        });
    });
}

#[test]
fn a_loop_over_sleeps_already_due_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let sleeps = Rc::new(Cell::new(0));
            let count = sleeps.clone();
            let hog = async move {
                for _ in 0..OPS {
                    coop::time::sleep(Duration::ZERO).await; // due at its first poll
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(hog, sleeps).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn an_interval_whose_ticks_are_overdue_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let mut ticks = coop::time::interval(Duration::from_micros(1));
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            // Tens of thousands of ticks fall due meanwhile, far more than
            // the loop below takes before the deadline of its last one.
            std::thread::sleep(Duration::from_millis(50));
            let count = Rc::new(Cell::new(0));
            let counted = count.clone();
            let hog = async move {
                for _ in 0..OPS {
                    ticks.tick().await;
                    bump(&counted);
                }
            };
            let (seen, done) = seen_by_the_next_task(hog, count).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn awaiting_tasks_that_have_finished_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            // Queued ahead of the two tasks below, so all have finished
            // when the first of those awaits them.
            let handles: Vec<_> = (0..OPS).map(|n| coop::spawn(async move { n })).collect();
            let joined = Rc::new(Cell::new(0));
            let count = joined.clone();
            let hog = async move {
                for (n, handle) in (0..OPS).zip(handles) {
                    assert_eq!(handle.await.unwrap(), n);
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(hog, joined).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn a_join_set_of_finished_tasks_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let mut set = coop::task::JoinSet::new();
            for n in 0..OPS {
                set.spawn(async move { n });
            }
            let joined = Rc::new(Cell::new(0));
            let count = joined.clone();
            let hog = async move {
                while let Some(result) = set.join_next().await {
                    result.unwrap();
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(hog, joined).await;
            assert_eq!(done, OPS);
            assert!(
                seen < OPS && seen >= u32::from(TASK_BUDGET),
                "the next task ran after {seen} joins"
            );
        });
    });
}

#[test]
fn a_timeout_fires_though_its_future_spends_every_budget() {
    with_deadline(20, || {
        coop::block_on(async {
            // Spends its whole budget at every poll and never finishes: the
            // deadline, polled after it each time, finds nothing left. It
            // must fire all the same.
            let spender = async {
                loop {
                    consume_budget().await;
                }
            };
            let result = coop::time::timeout(Duration::from_millis(10), spender).await;
            assert!(result.is_err());
        });
    });
}

/// A timeout whose deadline has passed completes as a due sleep does, and
/// spends a unit as one: a loop over such timeouts (a retry loop past its
/// overall deadline, a "try" with `Duration::ZERO`) around a future that
/// spends nothing itself is the same hog as a loop over due sleeps. Only a
/// deadline whose future spent the last unit in the same poll is spared
/// (the test above), as in tokio. The deadline spent nothing whenever the
/// budget was there as the timeout's poll began, so this loop never gave
/// the loop back.
#[test]
fn a_loop_over_timeouts_already_elapsed_lets_the_next_task_run() {
    with_deadline(20, || {
        coop::block_on(async {
            let timeouts = Rc::new(Cell::new(0));
            let count = timeouts.clone();
            let hog = async move {
                for _ in 0..OPS {
                    let never = std::future::pending::<()>();
                    let result = coop::time::timeout(Duration::ZERO, never).await;
                    assert!(result.is_err());
                    bump(&count);
                }
            };
            let (seen, done) = seen_by_the_next_task(hog, timeouts).await;
            assert_eq!(done, OPS);
            assert_eq!(seen, u32::from(TASK_BUDGET));
        });
    });
}

#[test]
fn a_task_held_back_by_its_budget_completes_its_sleep_at_the_next_poll() {
    with_deadline(20, || {
        coop::block_on(async {
            for _ in 0..TASK_BUDGET {
                consume_budget().await;
            }
            // The budget is spent: this sleep yields once, then completes;
            // the budget it finds then is a new one.
            let sleep = coop::time::sleep(Duration::ZERO);
            let mut sleep = std::pin::pin!(sleep);
            assert!(futures::poll!(sleep.as_mut()).is_pending());
            assert!(!futures::future::FusedFuture::is_terminated(&*sleep));
            sleep.await;
        });
    });
}

/// `try_join_next` cannot yield (it is not `async`), so it returns a
/// finished task's result whatever is left of the budget, as tokio's does
/// (it polls the handles unconstrained). With the handle's unit charged,
/// a task that had spent its budget got `None` ("no task has finished")
/// though one had.
#[test]
fn try_join_next_returns_a_finished_task_though_the_budget_is_spent() {
    with_deadline(20, || {
        coop::block_on(async {
            let mut set = coop::task::JoinSet::new();
            set.spawn(async { 5 });
            coop::yield_now().await; // the task runs, and finishes
            coop::yield_now().await; // a fresh budget, spent below
            for _ in 0..TASK_BUDGET {
                consume_budget().await;
            }
            assert_eq!(set.try_join_next().unwrap().unwrap(), 5);
            assert!(set.try_join_next().is_none());
        });
    });
}

#[test]
fn a_timeout_entered_with_the_budget_spent_lets_its_future_go_first() {
    with_deadline(20, || {
        coop::block_on(async {
            for _ in 0..TASK_BUDGET {
                consume_budget().await;
            }
            // The budget is spent, and the deadline has passed: the future
            // (ready as soon as it may run) is held back by the budget, not
            // by being slow, so it must not lose to the deadline.
            let past = std::time::Instant::now() - Duration::from_millis(1);
            let result = coop::time::timeout_at(past, consume_budget()).await;
            assert!(
                result.is_ok(),
                "the deadline beat a future the budget held back"
            );
        });
    });
}
