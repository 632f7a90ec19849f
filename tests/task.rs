//! Tasks: spawn, join, abort, detach, panic, and how often tasks are polled.
#![allow(clippy::async_yields_async)] // tests return join handles from block_on on purpose

mod util;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::{Poll, Waker};

use coop::{JoinError, JoinHandle};
use util::{PanicOnDrop, probe, turns, with_deadline};

#[test]
fn spawn_and_join_returns_output() {
    with_deadline(10, || {
        let out = coop::block_on(async {
            let handles: Vec<_> = (0..100u64)
                .map(|i| coop::spawn(async move { i * i }))
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(out, (0..100u64).map(|i| i * i).sum());
    });
}

#[test]
fn tasks_need_not_be_send() {
    with_deadline(10, || {
        coop::block_on(async {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let s = shared.clone();
            // The task holds the `Rc` across an `.await`: its future is not `Send`.
            coop::spawn(async move {
                coop::yield_now().await;
                s.borrow_mut().push(1)
            })
            .await
            .unwrap();
            assert_eq!(*shared.borrow(), vec![1]);
        });
    });
}

#[test]
fn abort_drops_the_future_and_reports_cancelled() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, polls, drops) = probe();
            let handle = coop::spawn(p);
            turns(2).await;
            assert_eq!(polls.get(), 1);
            assert!(!handle.is_finished());
            handle.abort();
            turns(2).await;
            assert_eq!(drops.get(), 1, "abort drops the future");
            assert_eq!(polls.get(), 1, "an aborted task is not polled again");
            assert!(handle.is_finished());
            let id = handle.id();
            let err = handle.await.unwrap_err();
            assert!(err.is_cancelled() && !err.is_panic());
            assert_eq!(err.id(), id);
            assert_eq!(err.to_string(), format!("task {id} was cancelled"));
            assert_eq!(format!("{err:?}"), format!("JoinError::Cancelled({id:?})"));
        });
    });
}

#[test]
fn abort_before_first_poll_never_polls() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, polls, drops) = probe();
            let handle = coop::spawn(p);
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
            assert_eq!((polls.get(), drops.get()), (0, 1));
        });
    });
}

#[test]
fn abort_after_completion_keeps_the_output() {
    with_deadline(10, || {
        coop::block_on(async {
            let handle = coop::spawn(async { 7 });
            turns(2).await;
            assert!(handle.is_finished());
            handle.abort();
            assert_eq!(handle.await.unwrap(), 7);
        });
    });
}

#[test]
fn dropping_the_handle_detaches_the_task() {
    with_deadline(10, || {
        coop::block_on(async {
            let done = Rc::new(Cell::new(false));
            let d = done.clone();
            drop(coop::spawn(async move {
                turns(3).await;
                d.set(true);
            }));
            turns(6).await;
            assert!(done.get(), "a detached task runs to completion");
        });
    });
}

#[test]
fn a_panicking_task_reaches_its_handle_and_not_the_loop() {
    with_deadline(10, || {
        coop::block_on(async {
            let bystander = coop::spawn(async {
                turns(3).await;
                "still here"
            });
            let handle = coop::spawn(async {
                turns(1).await;
                panic!("boom");
            });
            let id = handle.id();
            let err: JoinError = handle.await.unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled());
            assert_eq!(err.id(), id);
            assert_eq!(err.to_string(), format!("task {id} panicked: boom"));
            assert_eq!(
                format!("{err:?}"),
                format!("JoinError::Panic({id:?}, \"boom\")")
            );
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
            assert_eq!(bystander.await.unwrap(), "still here");
        });
    });
}

#[test]
fn a_task_whose_destructor_panics_does_not_stop_the_loop() {
    with_deadline(10, || {
        coop::block_on(async {
            let h = coop::spawn(async {
                let _guard = PanicOnDrop("destructor panic");
                turns(1).await;
                5
            });
            // The guard is dropped inside the poll: an ordinary poll panic.
            let result = h.await;
            assert!(result.is_err_and(|e| e.is_panic()));
            assert_eq!(coop::spawn(async { 1 }).await.unwrap(), 1);
        });
    });
}

#[test]
fn many_wakes_between_polls_queue_the_task_once() {
    with_deadline(10, || {
        coop::block_on(async {
            let polls = Rc::new(Cell::new(0));
            let p = polls.clone();
            let handle = coop::spawn(poll_fn(move |cx| {
                p.set(p.get() + 1);
                if p.get() == 1 {
                    for _ in 0..1000 {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }));
            handle.await.unwrap();
            assert_eq!(polls.get(), 2, "1000 wakes, one extra poll");
        });
    });
}

/// Spawns a task that keeps a clone of its waker and finishes at once,
/// waits for it, and returns that waker: a wake for a task that is gone.
async fn waker_of_a_finished_task() -> Waker {
    let stash: Rc<RefCell<Option<Waker>>> = Rc::default();
    let s = stash.clone();
    coop::spawn(poll_fn(move |cx| {
        *s.borrow_mut() = Some(cx.waker().clone());
        Poll::Ready(())
    }))
    .await
    .unwrap();
    stash.borrow_mut().take().unwrap()
}

#[test]
fn a_stale_waker_does_not_poll_the_task_that_reused_its_slot() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            // Task A stores its waker and finishes: its slab slot is freed.
            let stale = waker_of_a_finished_task().await;
            // Task B takes the freed slot (the slab reuses it) and waits.
            let (p, polls, _drops) = probe();
            let b = coop::spawn(p);
            turns(2).await;
            assert_eq!(polls.get(), 1);
            // Waking A's stale waker must not poll B.
            stale.wake();
            turns(3).await;
            assert_eq!(polls.get(), 1, "stale waker polled another task");
            b.abort();
            assert!(b.await.unwrap_err().is_cancelled());
        });
        assert_eq!(rt.metrics().tasks_alive, 0);
    });
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let err = std::panic::catch_unwind(|| {
        coop::spawn(async {});
    })
    .unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("outside of a coop runtime"), "{msg}");
}

/// A future given to `spawn` (or a closure to `spawn_blocking`) outside
/// any runtime is dropped before the panic, and its destructor may use
/// coop: here, run a `block_on` of its own, which is allowed there (no
/// runtime is current). Both used to drop it while the thread-local that
/// names the current runtime was borrowed, so that `block_on` panicked
/// with RefCell's "already borrowed" instead of running, and the clear
/// "outside of a coop runtime" panic never came. (Found in review,
/// session 32.)
#[test]
fn spawn_outside_a_runtime_drops_the_future_where_its_destructor_may_use_coop() {
    struct BlockOnInDrop(Rc<Cell<Option<i32>>>);
    impl Drop for BlockOnInDrop {
        fn drop(&mut self) {
            self.0.set(Some(coop::block_on(async { 7 })));
        }
    }
    fn message(err: Box<dyn std::any::Any + Send>) -> String {
        err.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }
    with_deadline(10, || {
        let ran = Rc::new(Cell::new(None));
        let guard = BlockOnInDrop(ran.clone());
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            coop::spawn(async move { drop(guard) });
        }))
        .unwrap_err();
        let msg = message(err);
        assert!(msg.contains("outside of a coop runtime"), "spawn: {msg}");
        assert_eq!(ran.take(), Some(7), "spawn: the destructor's block_on");

        // `spawn_blocking`'s closure is `Send`: it carries a flag to set.
        let ran = std::sync::Arc::new(std::sync::Mutex::new(None));
        struct SendBlockOnInDrop(std::sync::Arc<std::sync::Mutex<Option<i32>>>);
        impl Drop for SendBlockOnInDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(coop::block_on(async { 7 }));
            }
        }
        let guard = SendBlockOnInDrop(ran.clone());
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            coop::spawn_blocking(move || drop(guard));
        }))
        .unwrap_err();
        let msg = message(err);
        assert!(
            msg.contains("outside of a coop runtime"),
            "spawn_blocking: {msg}"
        );
        assert_eq!(
            ran.lock().unwrap().take(),
            Some(7),
            "spawn_blocking: the destructor's block_on"
        );
    });
}

/// Where the panic of `f`, run on this thread, says it happened: the
/// location a panic hook is given (and prints as "panicked at ...").
/// Panics of other threads (other tests) go on to the hook that was there.
fn panic_location(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    let me = std::thread::current().id();
    let seen = Arc::new(Mutex::new(None));
    let previous = Arc::new(std::panic::take_hook());
    let (seen_by_hook, others) = (seen.clone(), previous.clone());
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            *seen_by_hook.lock().unwrap() = info.location().map(|l| l.file().to_owned());
        } else {
            (**others)(info);
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    drop(std::panic::take_hook()); // ours, which holds the other `previous`
    match Arc::try_unwrap(previous) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(_) => unreachable!("the hook's copy was dropped with it"),
    }
    assert!(result.is_err(), "f did not panic");
    let file = seen.lock().unwrap().take();
    file.expect("the hook saw the panic")
}

/// The panics for a runtime in the wrong place (`spawn` and `spawn_blocking`
/// outside one, `block_on` inside one) point at the caller's line, not at a
/// line inside coop: the "panicked at" line is the first thing a user
/// reads. They pointed into `src/task/mod.rs`, `src/blocking.rs` and
/// `src/runtime/context.rs` (found in review, session 29).
#[test]
fn a_runtime_in_the_wrong_place_panics_at_the_caller_s_line() {
    with_deadline(10, || {
        let here = file!();
        let spawn = panic_location(|| drop(coop::spawn(async {})));
        assert_eq!(spawn, here);
        let blocking = panic_location(|| drop(coop::spawn_blocking(|| ())));
        assert_eq!(blocking, here);
        let named = panic_location(|| drop(coop::task::Builder::new().spawn(async {})));
        assert_eq!(named, here);
        let nested = panic_location(|| coop::block_on(async { coop::block_on(async {}) }));
        assert_eq!(nested, here);
        let rt = coop::Runtime::new().unwrap();
        let nested = panic_location(|| rt.block_on(async { rt.block_on(async {}) }));
        assert_eq!(nested, here);
    });
}

#[test]
fn block_on_inside_a_running_loop_panics() {
    with_deadline(10, || {
        coop::block_on(async {
            let handle = coop::spawn(async { coop::block_on(async {}) });
            let err = handle.await.unwrap_err();
            assert!(
                err.to_string().contains("inside a running coop runtime"),
                "{err}"
            );
        });
    });
}

#[test]
fn handles_and_streams_are_unpin_and_errors_are_std_errors() {
    fn unpin<T: Unpin>() {}
    fn error<T: std::error::Error + std::fmt::Display + std::fmt::Debug>() {}
    fn send_sync<T: Send + Sync>() {}
    unpin::<JoinHandle<String>>();
    unpin::<coop::net::TcpStream>();
    error::<JoinError>();
    send_sync::<JoinError>(); // fits in io::Error::other
}

#[test]
fn a_runtime_keeps_its_tasks_between_block_on_calls() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        let handle = rt.block_on(async {
            coop::spawn(async {
                turns(3).await;
                9
            })
        });
        assert_eq!(rt.block_on(handle).unwrap(), 9);
    });
}

/// A task that aborts itself is cancelled at its next poll; if the poll
/// that called `abort` returns, there is no next poll and the output is
/// kept (`JoinHandle::abort`'s docs; tokio does the same).
#[test]
fn a_task_that_aborts_itself_is_cancelled_at_its_next_poll_if_it_has_one() {
    type Shared = Rc<RefCell<Option<JoinHandle<u32>>>>;
    /// Spawns a task that aborts itself after a yield, then returns 5 at
    /// once (`then_wait` false) or after one more `.await` (true).
    async fn self_abort(then_wait: bool) -> (Result<u32, JoinError>, u32) {
        let (p, polls, drops) = probe();
        let own: Shared = Rc::default();
        let o = own.clone();
        let handle = coop::spawn(async move {
            coop::yield_now().await;
            o.borrow().as_ref().unwrap().abort();
            if then_wait {
                p.await; // Pending for ever: the next poll is the cancellation
            } else {
                drop(p);
            }
            5
        });
        *own.borrow_mut() = Some(handle);
        turns(4).await;
        let handle = own.borrow_mut().take().unwrap();
        assert!(handle.is_finished());
        assert_eq!(drops.get(), 1, "the future was dropped");
        (handle.await, polls.get())
    }
    with_deadline(10, || {
        coop::block_on(async {
            let (returned, _) = self_abort(false).await;
            assert_eq!(returned.unwrap(), 5);
            let (waited, polls) = self_abort(true).await;
            assert!(waited.unwrap_err().is_cancelled());
            assert_eq!(polls, 1, "not polled after the abort");
        });
    });
}

#[test]
fn a_destructor_panic_after_the_output_reaches_the_handle() {
    with_deadline(10, || {
        /// Ready at once, but panics when dropped (after returning its output).
        struct ReadyThenPanic;
        impl Future for ReadyThenPanic {
            type Output = u8;
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<u8> {
                Poll::Ready(5)
            }
        }
        impl Drop for ReadyThenPanic {
            fn drop(&mut self) {
                panic!("late destructor panic");
            }
        }
        coop::block_on(async {
            let handle = coop::spawn(ReadyThenPanic);
            let id = handle.id();
            let err = handle.await.unwrap_err();
            assert!(err.is_panic());
            assert_eq!(
                err.to_string(),
                format!("task {id} panicked: late destructor panic")
            );
        });
    });
}

#[test]
fn a_waker_from_an_earlier_block_on_does_not_poll_the_next_one() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        let old = rt.block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let polls = Cell::new(0);
        rt.block_on(poll_fn(|cx| {
            polls.set(polls.get() + 1);
            if polls.get() == 1 {
                for _ in 0..10 {
                    old.wake_by_ref(); // stale: must not poll this future
                }
                let me = cx.waker().clone();
                coop::spawn(async move {
                    turns(2).await;
                    me.wake();
                });
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        assert_eq!(
            polls.get(),
            2,
            "polled once, then once more when truly woken"
        );
    });
}

/// The remote road has its own "queued once": a thread that wakes a task a
/// thousand times before the loop looks puts it in the remote queue once,
/// and the task is polled once more. The loop is held still (the main
/// future blocks on the thread) so that it cannot drain between wakes.
#[test]
fn many_wakes_from_another_thread_between_polls_queue_the_task_once() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            let polls = Rc::new(Cell::new(0));
            let stash: Rc<RefCell<Option<Waker>>> = Rc::default();
            let (p, s) = (polls.clone(), stash.clone());
            let handle = coop::spawn(poll_fn(move |cx| {
                p.set(p.get() + 1);
                if p.get() == 1 {
                    *s.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }));
            turns(2).await;
            assert_eq!(polls.get(), 1);
            let waker = stash.borrow_mut().take().unwrap();
            // Blocks the loop on purpose, for the length of the thread.
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    waker.wake_by_ref();
                }
            })
            .join()
            .unwrap();
            handle.await.unwrap();
            assert_eq!(polls.get(), 2, "1000 remote wakes, one extra poll");
        });
        assert_eq!(rt.metrics().wakes.remote, 1);
    });
}

/// A wake from another thread for a task that has finished in the meantime
/// is dropped when the loop picks it up: no poll, no panic, not counted.
/// Not even when another task has taken the finished one's slab slot: the
/// wake's generation is not that task's. (With the slot left empty and the
/// waker dropped by its wake, as this test once had them, a loop that
/// ignored the generation passed too.)
#[test]
fn a_remote_wake_of_a_finished_task_is_dropped() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            let stale = waker_of_a_finished_task().await;
            // Task B takes the freed slot (the slab reuses it) and waits.
            let (p, polls, _drops) = probe();
            let b = coop::spawn(p);
            turns(2).await;
            assert_eq!(polls.get(), 1);
            // A clone stays alive here: the remote queue holds wakers
            // weakly, and skips one already dropped before it looks at
            // the id at all.
            let kept = stale.clone();
            std::thread::spawn(move || stale.wake()).join().unwrap();
            turns(3).await;
            drop(kept);
            assert_eq!(polls.get(), 1, "a stale remote wake polled another task");
            b.abort();
            assert!(b.await.unwrap_err().is_cancelled());
        });
        assert_eq!(rt.metrics().wakes.remote, 0);
        assert_eq!(rt.metrics().tasks_alive, 0);
    });
}

/// Dropping the handle of a finished task drops its output there. A panic
/// in the output's destructor is caught and logged, as tokio does, and the
/// loop carries on; it used to unwind out of the code that dropped the
/// handle, here `block_on`'s own future. (Found in review, session 21.)
#[test]
fn dropping_a_handle_whose_output_panics_in_drop_does_not_unwind() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the output's destructor panics");
        }
    }
    with_deadline(10, || {
        coop::block_on(async {
            let handle = coop::spawn(async { Bomb });
            while !handle.is_finished() {
                coop::yield_now().await;
            }
            drop(handle);
            assert_eq!(coop::spawn(async { 7 }).await.unwrap(), 7);
        });
    });
}

/// A `JoinHandle` goes into `futures::select!` without `.fuse()`: it is
/// terminated once it has returned the result, so a loop of `select!`
/// passes does not poll it again (which would panic).
/// A `JoinHandle` wakes whoever polled it last, as the `Future` contract
/// asks: polled once under another waker (a `select!` arm that lost, a
/// handle moved to another task), then awaited here, it must wake this
/// task when its task finishes, not only the waker it saw first. (A
/// handle that kept its first waker would leave this wait to the
/// timeout's 5 s.)
#[test]
fn a_join_handle_wakes_the_waker_of_its_latest_poll() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    struct Counting(AtomicUsize);
    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    with_deadline(20, || {
        coop::block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let mut handle = coop::spawn(async move {
                rx.await.unwrap();
                7
            });
            let first = Arc::new(Counting(AtomicUsize::new(0)));
            let first_waker = Waker::from(first.clone());
            let polled =
                std::pin::Pin::new(&mut handle).poll(&mut Context::from_waker(&first_waker));
            assert!(polled.is_pending());

            tx.send(()).unwrap();
            let start = std::time::Instant::now();
            let out = coop::time::timeout(std::time::Duration::from_secs(5), handle).await;
            assert_eq!(out.expect("no output in 5 s").unwrap(), 7);
            assert!(
                start.elapsed() < std::time::Duration::from_secs(4),
                "the handle woke only the waker of its first poll ({} wakes of it); \
                 this task waited {:?} for its timeout",
                first.0.load(Ordering::SeqCst),
                start.elapsed()
            );
        });
    });
}

#[test]
fn a_join_handle_that_returned_sits_out_select() {
    use futures::future::FusedFuture;
    with_deadline(20, || {
        coop::block_on(async {
            let mut quick = coop::spawn(async { 7 });
            let mut slow = coop::spawn(async {
                coop::time::sleep(std::time::Duration::from_millis(30)).await;
                8
            });
            assert!(!quick.is_terminated());
            let mut got = Vec::new();
            for _ in 0..2 {
                // Biased, `quick` first: the order holds even if a stall
                // makes both ready at once, and a second poll of `quick`
                // would come first.
                futures::select_biased! {
                    q = quick => got.push(q.unwrap()),
                    s = slow => got.push(s.unwrap()),
                }
            }
            assert_eq!(got, [7, 8]);
            assert!(quick.is_terminated() && slow.is_terminated());
        });
    });
}

#[test]
fn a_task_knows_its_id_and_its_handles_say_the_same() {
    with_deadline(10, || {
        coop::block_on(async {
            let handle = coop::spawn(async { coop::task::id() });
            let abort = handle.abort_handle();
            let id = handle.id();
            assert_eq!(abort.id(), id);
            assert_eq!(handle.await.unwrap(), id, "the task saw another id");
            // A JoinSet's abort handle names the task it cancels.
            let mut set = coop::task::JoinSet::new();
            let abort = set.spawn(async { coop::task::id() });
            assert_eq!(set.join_next().await.unwrap().unwrap(), abort.id());
        });
    });
}

#[test]
fn ids_are_never_reused_though_slots_are() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..100 {
                // Each finishes before the next is spawned: all of them
                // take the same slab slot, and each a new id.
                let handle = coop::spawn(async { coop::task::id() });
                let id = handle.await.unwrap();
                assert!(seen.insert(id), "id {id} came twice");
            }
            // And they count up in spawn order.
            let first = coop::spawn(async {}).id();
            let second = coop::spawn(async {}).id();
            assert!(first < second);
        });
    });
}

#[test]
fn try_id_is_none_outside_a_task() {
    with_deadline(10, || {
        assert_eq!(coop::task::try_id(), None, "outside every runtime");
        let runtime = coop::Runtime::new().unwrap();
        runtime.block_on(async {
            assert_eq!(coop::task::try_id(), None, "in the block_on future");
            let inside = coop::spawn(async { coop::task::try_id() });
            let id = inside.id();
            assert_eq!(inside.await.unwrap(), Some(id), "in a task");
            assert_eq!(coop::task::try_id(), None, "back in block_on");
        });
        let _entered = runtime.enter();
        assert_eq!(coop::task::try_id(), None, "under Runtime::enter");
    });
}

#[test]
#[should_panic(expected = "coop::task::id called outside of a task")]
fn id_outside_a_task_panics() {
    coop::block_on(async {
        coop::task::id();
    });
}

/// Notes `task::try_id()` when dropped.
struct NoteIdOnDrop(Rc<Cell<Option<Option<coop::task::Id>>>>);

impl Drop for NoteIdOnDrop {
    fn drop(&mut self) {
        self.0.set(Some(coop::task::try_id()));
    }
}

#[test]
fn a_task_s_destructor_knows_its_id_when_aborted_but_not_when_its_runtime_drops_it() {
    with_deadline(10, || {
        let aborted = Rc::new(Cell::new(None));
        let dropped = Rc::new(Cell::new(None));
        let runtime = coop::Runtime::new().unwrap();
        let (note_aborted, note_dropped) = (aborted.clone(), dropped.clone());
        let id = runtime.block_on(async move {
            let handle = coop::spawn(async move {
                let _note = NoteIdOnDrop(note_aborted);
                std::future::pending::<()>().await;
            });
            let id = handle.id();
            turns(2).await; // polled once: it holds the note
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
            coop::spawn(async move {
                let _note = NoteIdOnDrop(note_dropped);
                std::future::pending::<()>().await;
            });
            turns(2).await;
            id
        });
        assert_eq!(aborted.get(), Some(Some(id)), "dropped by its abort");
        drop(runtime);
        assert_eq!(dropped.get(), Some(None), "dropped with its runtime");
    });
}

/// A `JoinError` names the task it came from: the id its `JoinHandle`
/// gives, whichever way the task failed (a panic, an abort by the join
/// handle or by an abort handle, the runtime's drop; a blocking job's
/// panic and abort), among several tasks at once, so that a mixed-up id
/// shows.
#[test]
fn a_join_error_carries_the_id_of_its_task() {
    with_deadline(10, || {
        let runtime = coop::Runtime::new().unwrap();
        let unfinished = runtime.block_on(async {
            let panics = coop::spawn(async {
                coop::yield_now().await;
                panic!("boom")
            });
            let aborted = coop::spawn(std::future::pending::<()>());
            let by_abort_handle = coop::spawn(std::future::pending::<()>());
            let fine = coop::spawn(async { coop::task::id() });
            let job_panics = coop::spawn_blocking(|| -> u8 { panic!("job failed") });
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let job_aborted = coop::spawn_blocking(move || wait.recv().ok());
            let ids = [
                panics.id(),
                aborted.id(),
                by_abort_handle.id(),
                fine.id(),
                job_panics.id(),
                job_aborted.id(),
            ];
            let mut distinct = ids.to_vec();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), ids.len(), "{ids:?}");

            aborted.abort();
            by_abort_handle.abort_handle().abort();
            job_aborted.abort();
            let errors = [
                panics.await.unwrap_err(),
                aborted.await.unwrap_err(),
                by_abort_handle.await.unwrap_err(),
                job_panics.await.unwrap_err(),
                job_aborted.await.unwrap_err(),
            ];
            drop(release);
            let got: Vec<_> = errors.iter().map(JoinError::id).collect();
            assert_eq!(got, [ids[0], ids[1], ids[2], ids[4], ids[5]]);
            assert_eq!(fine.await.unwrap(), ids[3], "task::id agrees");
            let kinds: Vec<_> = errors.iter().map(|e| e.is_panic()).collect();
            assert_eq!(kinds, [true, false, false, true, false]);
            // Left pending when the runtime drops.
            coop::spawn(std::future::pending::<()>())
        });
        let id = unfinished.id();
        drop(runtime);
        let err = futures::executor::block_on(unfinished).unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!((err.id(), err.try_id()), (id, Some(id)));
        assert_eq!(err.to_string(), format!("task {id} was cancelled"));
    });
}

/// A panic with a formatted message has a `String` payload, not a
/// `&str`: its message is in the `JoinError`'s `Display` and `Debug` too.
#[test]
fn a_join_error_shows_a_formatted_panic_message() {
    with_deadline(10, || {
        coop::block_on(async {
            let seven = 7;
            let handle = coop::spawn(async move {
                turns(1).await;
                panic!("boom {seven}");
            });
            let id = handle.id();
            let err = handle.await.unwrap_err();
            assert_eq!(err.to_string(), format!("task {id} panicked: boom 7"));
            assert_eq!(
                format!("{err:?}"),
                format!("JoinError::Panic({id:?}, \"boom 7\")")
            );
        });
    });
}
