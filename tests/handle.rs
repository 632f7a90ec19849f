//! `Handle`: spawning onto a loop from other threads (the injection queue).

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;

use coop::Runtime;
use coop::runtime::Handle;
use util::{PanicOnDrop, with_deadline};

/// Sets its flag when dropped: tells a test that a future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flag() -> (Arc<AtomicBool>, DropFlag) {
    let flag = Arc::new(AtomicBool::new(false));
    (flag.clone(), DropFlag(flag))
}

/// The loop sleeps in `epoll_wait` with no timer and no socket: only the
/// spawn's `mio::Waker` can wake it. The task runs on the loop's thread,
/// and its output reaches the other thread's handle.
#[test]
fn a_thread_spawns_onto_a_sleeping_loop_and_gets_the_output() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (done_tx, done_rx) = oneshot::channel();
        let loop_thread = thread::current().id();
        let spawner = thread::spawn(move || {
            // Give the loop time to fall asleep first.
            thread::sleep(Duration::from_millis(50));
            let task = handle.spawn(async move {
                let ran_on = thread::current().id();
                done_tx.send(()).unwrap();
                (ran_on, 6 * 7)
            });
            futures::executor::block_on(task).unwrap()
        });
        rt.block_on(async { done_rx.await.unwrap() });
        let (ran_on, answer) = spawner.join().unwrap();
        assert_eq!(ran_on, loop_thread, "the task ran on the loop's thread");
        assert_eq!(answer, 42);
        assert_eq!(rt.metrics().tasks_spawned, 1);
    });
}

/// A task spawned through a handle can be awaited inside the loop too,
/// and `Handle::current` finds the running runtime.
#[test]
fn handle_current_spawns_onto_its_own_loop() {
    with_deadline(20, || {
        let answer = coop::block_on(async {
            let handle = Handle::current();
            let first = handle.spawn(async { 1 });
            let second = handle.spawn(async {
                coop::yield_now().await;
                2
            });
            first.await.unwrap() + second.await.unwrap()
        });
        assert_eq!(answer, 3);
    });
}

#[test]
fn handle_current_outside_a_runtime_panics_with_a_clear_message() {
    let panic = std::panic::catch_unwind(Handle::current).unwrap_err();
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("outside a coop runtime"), "{message}");
}

#[test]
fn a_panic_goes_to_the_remote_handle_and_the_loop_carries_on() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (id_tx, id_rx) = std::sync::mpsc::channel();
        let failed = handle.spawn(async move {
            id_tx.send(coop::task::id()).unwrap();
            panic!("remote task failed")
        });
        let fine = handle.spawn(async { 5 });
        let (failed, fine) = rt.block_on(async { (failed.await, fine.await) });
        let err = failed.unwrap_err();
        assert!(err.is_panic());
        // The id the loop gave the task reaches the error.
        let id = id_rx.recv().unwrap();
        assert_eq!(err.id(), id);
        assert_eq!(
            err.to_string(),
            format!("task {id} panicked: remote task failed")
        );
        assert_eq!(fine.unwrap(), 5);
    });
}

/// A pending task aborted from another thread is woken, its future is
/// dropped, and its handle says cancelled.
#[test]
fn abort_from_another_thread_cancels_a_pending_task() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let (dropped, guard) = flag();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (gone_tx, gone_rx) = oneshot::channel::<()>();
        let task = rt.handle().spawn(async move {
            let _guard = guard;
            let _gone = gone_tx; // dropped with the future: wakes main
            started_tx.send(()).unwrap();
            futures::future::pending::<()>().await
        });
        let aborter = thread::spawn(move || {
            started_rx.recv().unwrap();
            assert!(!task.is_finished());
            task.abort();
            let err = futures::executor::block_on(task).unwrap_err();
            assert!(err.is_cancelled());
        });
        rt.block_on(async { assert!(gone_rx.await.is_err()) });
        aborter.join().unwrap();
        assert!(dropped.load(Ordering::SeqCst));
    });
}

/// A spawn made before any `block_on` waits for the loop, then runs.
#[test]
fn a_spawn_before_the_loop_runs_waits_for_block_on() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let task = rt.handle().spawn(async { "ran" });
        thread::sleep(Duration::from_millis(20));
        assert!(!task.is_finished(), "nothing runs without a loop");
        let output = rt.block_on(task).unwrap();
        assert_eq!(output, "ran");
    });
}

/// A dropped runtime drops the futures still in its queue, and any spawned
/// later, and their handles say cancelled instead of waiting forever.
#[test]
fn a_dropped_runtime_cancels_queued_and_later_spawns() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (queued_dropped, guard) = flag();
        let queued = handle.spawn(async move {
            let _guard = guard;
        });
        drop(rt);
        assert!(queued_dropped.load(Ordering::SeqCst));
        assert!(queued.is_finished());
        let err = futures::executor::block_on(queued).unwrap_err();
        assert!(err.is_cancelled());
        // It never reached the loop, so it never had an id.
        assert_eq!(err.try_id(), None);
        assert_eq!(err.to_string(), "task was cancelled");
        assert_eq!(format!("{err:?}"), "JoinError::Cancelled");

        let (late_dropped, guard) = flag();
        let late = handle.spawn(async move {
            let _guard = guard;
        });
        assert!(late_dropped.load(Ordering::SeqCst));
        assert!(late.is_finished());
        assert!(
            futures::executor::block_on(late)
                .unwrap_err()
                .is_cancelled()
        );
    });
}

/// An output nobody reads, whose destructor panics, is dropped quietly:
/// on the loop when the handle was dropped before the task finished, and
/// on the handle's thread when it had already arrived.
#[test]
fn an_unread_output_that_panics_on_drop_hurts_nobody() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        // Detached before it runs: dropped on the loop.
        drop(handle.spawn(async { PanicOnDrop("a detached output") }));
        // Finished, then dropped unread on another thread.
        let unread = handle.spawn(async { PanicOnDrop("an unread output") });
        rt.block_on(async {
            while !unread.is_finished() {
                coop::yield_now().await;
            }
        });
        thread::spawn(move || drop(unread)).join().unwrap();
        assert_eq!(rt.block_on(handle.spawn(async { 1 })).unwrap(), 1);
    });
}

/// The handle and its join handle are what they must be to cross threads.
#[test]
fn the_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Handle>();
    send_sync::<coop::runtime::RemoteJoinHandle<u8>>();
}

/// As with a local task: a future that returns its output and then panics
/// in its destructor is a task that panicked, and its handle says so (the
/// local `JoinHandle` does, `tests/task.rs`). (Found in review: the panic
/// escaped the wrapper's `catch_unwind`, the reply was dropped unsent,
/// and the handle said cancelled.)
#[test]
fn a_destructor_panic_after_the_output_reaches_the_remote_handle() {
    /// Ready at once, but panics when dropped (after returning its output).
    struct ReadyThenPanic;
    impl std::future::Future for ReadyThenPanic {
        type Output = u8;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<u8> {
            std::task::Poll::Ready(5)
        }
    }
    impl Drop for ReadyThenPanic {
        fn drop(&mut self) {
            panic!("late destructor panic");
        }
    }
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let err = rt.block_on(handle.spawn(ReadyThenPanic)).unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("task {} panicked: late destructor panic", err.id())
        );
        // And the loop carries on.
        assert_eq!(rt.block_on(handle.spawn(async { 1 })).unwrap(), 1);
    });
}

/// A panic in the poll, then another in the destructor of the same
/// future: the handle gets the first (as a local task's does), and the
/// loop carries on.
#[test]
fn a_panic_in_the_poll_then_in_the_destructor_reaches_the_remote_handle() {
    /// Panics when polled, and again when dropped.
    struct PanicTwice;
    impl std::future::Future for PanicTwice {
        type Output = u8;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<u8> {
            panic!("the poll panicked")
        }
    }
    impl Drop for PanicTwice {
        fn drop(&mut self) {
            panic!("and so did the destructor");
        }
    }
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let err = rt.block_on(handle.spawn(PanicTwice)).unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("task {} panicked: the poll panicked", err.id())
        );
        assert_eq!(rt.block_on(handle.spawn(async { 1 })).unwrap(), 1);
    });
}

/// An aborted task whose future panics as it is dropped is still a
/// cancellation (as a local one is): the abort asked for the drop.
#[test]
fn an_aborted_remote_task_whose_destructor_panics_says_cancelled() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let task = handle.spawn(async {
            let _guard = PanicOnDrop("a destructor panic on abort");
            futures::future::pending::<()>().await
        });
        rt.block_on(coop::yield_now());
        task.abort();
        let err = rt.block_on(task).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(rt.block_on(handle.spawn(async { 1 })).unwrap(), 1);
    });
}

/// Polled again after it returned its result, a handle panics, naming
/// itself, as a local `JoinHandle` does (chapter 03's table). (Found in
/// review: it returned `Err(cancelled)`, a second, false answer.)
#[test]
fn a_remote_handle_polled_after_its_result_panics() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let mut task = rt.handle().spawn(async { 7 });
        assert_eq!(rt.block_on(&mut task).unwrap(), 7);
        assert!(task.is_finished());
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures::executor::block_on(&mut task)
        }));
        let panic = match again {
            Ok(answer) => panic!("a second poll answered {answer:?}"),
            Err(panic) => panic,
        };
        let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
        assert_eq!(
            message,
            "RemoteJoinHandle polled after it returned its result"
        );
    });
}

/// A task cancelled by its runtime's drop: its future is dropped (its
/// destructors have run) before its handle says finished, as the abort
/// path promises ("a handle that sees cancelled knows the future is
/// gone"): another thread waiting for the handle may count on what the
/// future held (a port, a file) being released.
#[test]
fn a_runtime_drop_drops_the_future_before_the_handle_says_finished() {
    type Slot = Arc<std::sync::Mutex<Option<coop::runtime::RemoteJoinHandle<()>>>>;
    struct Check {
        slot: Slot,
        finished_while_dropping: Arc<std::sync::Mutex<Option<bool>>>,
    }
    impl Drop for Check {
        fn drop(&mut self) {
            let finished = self.slot.lock().unwrap().as_ref().map(|h| h.is_finished());
            *self.finished_while_dropping.lock().unwrap() = finished;
        }
    }
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let slot: Slot = Arc::default();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let check = Check {
            slot: slot.clone(),
            finished_while_dropping: seen.clone(),
        };
        let started = Arc::new(AtomicBool::new(false));
        let started_in_task = started.clone();
        let (id_tx, id_rx) = std::sync::mpsc::channel();
        let task = rt.handle().spawn(async move {
            let _check = check;
            id_tx.send(coop::task::id()).unwrap();
            started_in_task.store(true, Ordering::SeqCst);
            futures::future::pending::<()>().await
        });
        *slot.lock().unwrap() = Some(task);
        // Taken in and polled: it waits at its `.await` when dropped.
        rt.block_on(async {
            while !started.load(Ordering::SeqCst) {
                coop::yield_now().await;
            }
        });
        drop(rt);
        assert_eq!(
            *seen.lock().unwrap(),
            Some(false),
            "the future's destructor ran while its handle already said finished"
        );
        let task = slot.lock().unwrap().take().unwrap();
        assert!(task.is_finished());
        let err = futures::executor::block_on(task).unwrap_err();
        assert!(err.is_cancelled());
        // Dropped with its runtime, it sent no result: the id still
        // reaches its handle (from the loop, when it took the task in).
        assert_eq!(err.try_id(), Some(id_rx.recv().unwrap()));
    });
}

/// `is_finished` says true only once the result can be had: a thread that
/// sees it true and then polls the handle once gets the result, as with a
/// local `JoinHandle` (whose flag and result are one cell). And a handle
/// that has returned its result says finished. (Found in review: the flag
/// was set before the result was sent, so a poll right after could miss
/// it; a race, so this test repeats it until the deadline's margin.)
#[test]
fn a_remote_handle_that_says_finished_has_its_result() {
    use futures::FutureExt;
    with_deadline(30, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (done_tx, done_rx) = oneshot::channel();
        let observer = thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut misses = 0;
            let mut rounds = 0u32;
            while start.elapsed() < Duration::from_secs(2) && rounds < 20_000 {
                rounds += 1;
                let mut task = handle.spawn(async move { rounds });
                while !task.is_finished() {
                    std::hint::spin_loop();
                }
                match (&mut task).now_or_never() {
                    Some(output) => assert_eq!(output.unwrap(), rounds),
                    None => {
                        misses += 1;
                        assert_eq!(futures::executor::block_on(task).unwrap(), rounds);
                    }
                }
            }
            done_tx.send(()).unwrap();
            (misses, rounds)
        });
        rt.block_on(async { done_rx.await.unwrap() });
        let (misses, rounds) = observer.join().unwrap();
        assert_eq!(
            misses, 0,
            "{misses} of {rounds} finished handles had no result"
        );
    });
}

/// A task spawned from another thread can be named, as a local one is
/// (`task::Builder::spawn_on`, tokio's order: future, then handle; and
/// `spawn_with_on` for a future built on the loop's thread), and
/// the name shows where a local task's does: the trace's spawn event and
/// the SVG's lane. Both remote spawns record their caller's line, not a
/// line inside coop, as a local spawn does (`spawned at file:line`).
#[test]
fn a_builder_names_a_remote_task_and_every_remote_spawn_records_its_caller() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        let handle = rt.handle();
        let spawner = thread::spawn(move || {
            let named = coop::task::Builder::new()
                .name("remote-7")
                .spawn_on(async { 1 }, &handle);
            let unnamed = handle.spawn(async { 2 });
            let built = coop::task::Builder::new()
                .name("remote-built")
                .spawn_with_on(
                    || async {
                        // Not Send: an Rc held across an await.
                        let three = std::rc::Rc::new(3);
                        coop::yield_now().await;
                        *three
                    },
                    &handle,
                );
            (named, unnamed, built)
        });
        let (named, unnamed, built) = spawner.join().unwrap();
        let (one, two, three) = rt.block_on(async {
            (
                named.await.unwrap(),
                unnamed.await.unwrap(),
                built.await.unwrap(),
            )
        });
        assert_eq!((one, two, three), (1, 2, 3));
        let trace = rt.trace().unwrap();
        let spawns: Vec<(Option<String>, String)> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                coop::trace::Event::Spawn { name, location, .. }
                    if name.as_deref() != Some("block_on") =>
                {
                    Some((name.clone(), location.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(spawns.len(), 3, "{spawns:?}");
        assert_eq!(spawns[0].0.as_deref(), Some("remote-7"), "{spawns:?}");
        assert_eq!(spawns[1].0, None, "{spawns:?}");
        assert_eq!(spawns[2].0.as_deref(), Some("remote-built"), "{spawns:?}");
        for (_, location) in &spawns {
            assert!(location.starts_with("tests/handle.rs:"), "{spawns:?}");
        }
        assert!(trace.to_svg("remote").contains("remote-7"));
    });
}

/// Aborted before the loop took it in, a remote task is cancelled without
/// a poll, as a local task aborted before its first poll is
/// (`tests/runtime.rs`): its future is dropped unpolled, and
/// `Metrics::polls` counts nothing, nor does the trace show a poll, even
/// when that drop panics.
/// (Found in review: the wrapper around the future was polled to see the
/// abort, and that poll was counted.)
#[test]
fn a_remote_task_aborted_before_its_first_poll_counts_no_poll() {
    with_deadline(20, || {
        for traced in [false, true] {
            let rt = Runtime::builder().trace(traced).build().unwrap();
            let (dropped, guard) = flag();
            let polled = Arc::new(AtomicBool::new(false));
            let polled_in_task = polled.clone();
            let task = rt.handle().spawn(async move {
                let _guard = guard;
                polled_in_task.store(true, Ordering::SeqCst);
            });
            task.abort();
            let err = rt.block_on(task).unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            // Taken in, then cancelled: a task, with the id it was given.
            assert!(err.try_id().is_some(), "{err:?}");
            assert!(!polled.load(Ordering::SeqCst));
            assert!(dropped.load(Ordering::SeqCst));
            // Still none when the dropped future's destructor panics.
            let guard = PanicOnDrop("the cancelled future's destructor panics");
            let task = rt.handle().spawn(async move {
                let _guard = guard;
            });
            task.abort();
            assert!(rt.block_on(task).unwrap_err().is_cancelled());
            let m = rt.metrics();
            assert_eq!(m.tasks_spawned, 2);
            assert_eq!(m.polls, 0, "traced: {traced}");
            if let Some(trace) = rt.trace() {
                let polls = trace
                    .events
                    .iter()
                    .filter(|e| matches!(e, coop::trace::Event::Poll { task, .. } if trace.task_label(*task) != "block_on"))
                    .count();
                assert_eq!(polls, 0, "{:?}", trace.events);
            }
        }
    });
}

/// The same when the abort arrives after the loop took the task in but
/// before its first poll: a local task, queued ahead of it, aborts it.
#[test]
fn a_remote_task_aborted_after_it_was_taken_in_but_before_its_first_poll_counts_no_poll() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let polled = Arc::new(AtomicBool::new(false));
        let polled_in_task = polled.clone();
        let err = rt.block_on(async move {
            let slot = std::rc::Rc::new(std::cell::RefCell::new(None));
            let slot_in_aborter = slot.clone();
            // Poll 1: it waits for its timer.
            let aborter = coop::spawn(async move {
                coop::time::sleep(Duration::from_millis(20)).await;
                // Poll 2: queued by the timer ahead of the remote task,
                // which was taken in right after it (see below).
                let remote: &Option<coop::runtime::RemoteJoinHandle<()>> =
                    &slot_in_aborter.borrow();
                remote.as_ref().unwrap().abort();
            });
            coop::yield_now().await; // the aborter's first poll
            // Hold the loop past the timer's deadline, then spawn: at the
            // end of this turn the timer fires (the aborter is queued),
            // then the loop takes the remote task in behind it.
            thread::sleep(Duration::from_millis(60));
            *slot.borrow_mut() = Some(Handle::current().spawn(async move {
                polled_in_task.store(true, Ordering::SeqCst);
            }));
            aborter.await.unwrap();
            let remote = slot.borrow_mut().take().unwrap();
            remote.await.unwrap_err()
        });
        assert!(err.is_cancelled(), "{err:?}");
        assert!(!polled.load(Ordering::SeqCst));
        let m = rt.metrics();
        assert_eq!(m.tasks_spawned, 2);
        assert_eq!(
            m.polls, 2,
            "the aborter's two polls, and none of the remote task"
        );
    });
}

/// Aborted after it has run, a remote task is cancelled at its next turn,
/// and that turn is no poll either (the wrapper drops the future without
/// polling it), as a local task's cancellation is (`Ran::NotPolled`):
/// `Metrics::polls` counts only the task's one real poll.
#[test]
fn a_remote_task_s_cancellation_after_it_ran_counts_no_poll() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let (dropped, guard) = flag();
        let task = rt.handle().spawn(async move {
            let _guard = guard;
            futures::future::pending::<()>().await
        });
        rt.block_on(coop::yield_now()); // taken in and polled once
        assert_eq!(rt.metrics().polls, 1);
        task.abort();
        assert!(rt.block_on(task).unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(
            rt.metrics().polls,
            1,
            "the cancellation was counted as a poll"
        );
    });
}

/// `spawn_with` takes a `Send` closure and builds the future on the loop's
/// thread, so the future may hold what cannot cross threads: here an `Rc`
/// and a coop `TcpStream` across `.await`s. `make` runs on the loop.
#[test]
fn spawn_with_builds_a_future_that_is_not_send_on_the_loop() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use std::io::{Read, Write};
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let loop_thread = thread::current().id();
        let (done_tx, done_rx) = oneshot::channel();
        let asker = thread::spawn(move || {
            let task = handle.spawn_with(move || {
                let made_on = thread::current().id();
                let shared = std::rc::Rc::new(std::cell::Cell::new(0u8));
                async move {
                    let mut stream = coop::net::TcpStream::connect(addr).await.unwrap();
                    stream.write_all(b"ping").await.unwrap();
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    shared.set(buf[0]);
                    done_tx.send(()).unwrap();
                    (made_on, buf, shared.get())
                }
            });
            futures::executor::block_on(task).unwrap()
        });
        rt.block_on(async { done_rx.await.unwrap() });
        let (made_on, buf, first) = asker.join().unwrap();
        peer.join().unwrap();
        assert_eq!(made_on, loop_thread, "make ran on the loop's thread");
        assert_eq!((&buf, first), (b"ping", b'p'));
    });
}

/// A panic in `spawn_with`'s `make` runs on the loop's thread, but is the
/// task's panic: the handle says so, and the loop goes on.
#[test]
fn a_panic_in_spawn_with_s_make_goes_to_the_handle_not_the_loop() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let task = handle.spawn_with(|| -> std::future::Ready<u8> { panic!("make failed") });
        let after = handle.spawn(async { 5 });
        let (first, second) = rt.block_on(async { futures::join!(task, after) });
        let error = first.unwrap_err();
        assert!(error.is_panic(), "{error}");
        // No task was made, so the error has no id, and none is made up.
        assert_eq!(error.try_id(), None);
        assert_eq!(error.to_string(), "task panicked: make failed");
        assert_eq!(second.unwrap(), 5, "the loop went on");
        assert_eq!(
            rt.metrics().tasks_spawned,
            1,
            "the panicking make spawned nothing"
        );
    });
}

/// `abort` reaches the future that `make` built: it is dropped
/// with the task, and the handle says cancelled.
#[test]
fn aborting_a_spawn_with_task_drops_the_future_make_built() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (dropped, guard) = flag();
        let task = handle.spawn_with(move || async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        let result = rt.block_on(async {
            coop::yield_now().await; // the task is taken in and waits
            task.abort();
            task.await
        });
        assert!(result.unwrap_err().is_cancelled());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the built future was dropped"
        );
    });
}

/// A remote task's cancellation is never reported as a slow poll, however
/// long the drop of its future takes, as a local task's is not (chapter
/// 03): aborted before its first poll or after it ran, its cancellation
/// counts neither a poll nor a slow poll, and the flag that says so
/// (`Executor::poll_was_none`) does not leak into the polls that follow,
/// which are counted and checked as usual. With and without the trace
/// (both take the timed path).
#[test]
fn a_remote_task_s_slow_cancellation_is_no_slow_poll() {
    /// Takes 5 ms to drop: over the 3 ms threshold below.
    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            thread::sleep(Duration::from_millis(5));
        }
    }
    with_deadline(20, || {
        for traced in [false, true] {
            let rt = Runtime::builder()
                .trace(traced)
                .slow_poll_threshold(Duration::from_millis(3))
                .build()
                .unwrap();
            let guard = SlowDrop;
            let early = rt.handle().spawn(async move {
                let _guard = guard;
            });
            early.abort();
            let guard = SlowDrop;
            let late = rt.handle().spawn(async move {
                let _guard = guard;
                futures::future::pending::<()>().await
            });
            rt.block_on(async {
                // One slow poll, after the first cancellation.
                let slow = coop::spawn(async {
                    thread::sleep(Duration::from_millis(5));
                });
                assert!(early.await.unwrap_err().is_cancelled());
                coop::yield_now().await; // `late` has had its one poll
                late.abort();
                assert!(late.await.unwrap_err().is_cancelled());
                slow.await.unwrap();
            });
            let m = rt.metrics();
            assert_eq!(
                m.polls, 2,
                "`late`'s first poll and `slow`'s; traced: {traced}"
            );
            assert_eq!(m.slow_polls, 1, "`slow`'s poll only; traced: {traced}");
        }
    });
}

/// A remote handle is terminated once it has returned its result, so that
/// `select!` in a loop skips it instead of polling it again (which would
/// panic: see `a_remote_handle_polled_after_its_result_panics`).
#[test]
fn a_remote_handle_that_returned_sits_out_select() {
    use futures::future::FusedFuture;
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let mut quick = rt.handle().spawn(async { 7 });
        // A sleep is not `Send`: built on the loop.
        let mut slow = rt.handle().spawn_with(|| async {
            coop::time::sleep(Duration::from_millis(30)).await;
            8
        });
        assert!(!quick.is_terminated());
        let got = rt.block_on(async {
            let mut got = Vec::new();
            for _ in 0..2 {
                // Biased, `quick` first: a second poll of it would come
                // first even if both were ready at once.
                futures::select_biased! {
                    q = quick => got.push(q.unwrap()),
                    s = slow => got.push(s.unwrap()),
                }
            }
            got
        });
        assert_eq!(got, [7, 8]);
        assert!(quick.is_terminated() && slow.is_terminated());
    });
}
