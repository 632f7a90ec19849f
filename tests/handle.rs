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
        let failed = handle.spawn(async { panic!("remote task failed") });
        let fine = handle.spawn(async { 5 });
        let (failed, fine) = rt.block_on(async { (failed.await, fine.await) });
        let err = failed.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: remote task failed");
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
        assert!(
            futures::executor::block_on(queued)
                .unwrap_err()
                .is_cancelled()
        );

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
