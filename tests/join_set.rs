//! `JoinSet`: results in the order tasks finish, abort on drop, abort_all,
//! shutdown, detach_all, join_all, try_join_next.
//!
//! A task that must stay pending waits on a read from a real loopback
//! socket whose peer never writes: only an abort can end it. A task whose
//! destructor must be seen holds a [`Flag`].

mod util;

use std::cell::Cell;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::TcpStream;
use coop::task::JoinSet;
use util::{turns, with_deadline};

/// Sets its flag when dropped: shows that a task's future (or output) was
/// dropped.
struct Flag(Rc<Cell<bool>>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn flag() -> (Flag, Rc<Cell<bool>>) {
    let dropped = Rc::new(Cell::new(false));
    (Flag(dropped.clone()), dropped)
}

/// A connected loopback pair, on a listener of its own: (the side a task
/// reads, the side the test writes or keeps silent).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = util::listener();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}
/// The set's next result, taken by `poll_join_next` and, when that is
/// pending, by `try_join_next` in the same poll: pending only while
/// both are, and then woken only by the wake `poll_join_next` promised
/// to this poll's waker.
async fn join_next_then_try(mut set: JoinSet<u8>) -> Option<Result<u8, coop::task::JoinError>> {
    poll_fn(|cx| {
        if let Poll::Ready(result) = set.poll_join_next(cx) {
            return Poll::Ready(result);
        }
        match set.try_join_next() {
            Some(result) => Poll::Ready(Some(result)),
            None => Poll::Pending,
        }
    })
    .await
}

/// Reads one byte, which never comes unless the peer writes it. Holds
/// `guard` meanwhile, so that the future's drop shows in its flag.
async fn read_one(mut stream: TcpStream, guard: Option<Flag>) -> u8 {
    let _guard = guard;
    let mut byte = [0u8];
    stream.read_exact(&mut byte).await.unwrap();
    byte[0]
}

/// A set of three tasks, each reading one byte from its own loopback
/// connection, and the three writing ends: task `i` finishes when
/// `writers[i]` writes.
async fn three_readers() -> (JoinSet<u8>, Vec<TcpStream>) {
    let mut set = JoinSet::new();
    let mut writers = Vec::new();
    for _ in 0..3 {
        let (reader, writer) = pair().await;
        set.spawn(read_one(reader, None));
        writers.push(writer);
    }
    (set, writers)
}

/// `join_next`, failing (instead of hanging) if no result comes within a
/// second.
async fn next<T: 'static>(set: &mut JoinSet<T>) -> Option<Result<T, coop::JoinError>> {
    coop::time::timeout(Duration::from_secs(1), set.join_next())
        .await
        .expect("join_next gave no result within 1 s")
}

/// Three tasks, spawned 0, 1, 2, are made to finish 2, 0, 1 by writing to
/// their sockets in that order; `join_next` hands them back as they finish
/// while the others stay pending.
#[test]
fn results_come_out_in_the_order_the_tasks_finish() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut set, mut writers) = three_readers().await;
            assert_eq!(set.len(), 3);
            for i in [2, 0, 1] {
                writers[i].write_all(&[i as u8]).await.unwrap();
                assert_eq!(next(&mut set).await.unwrap().unwrap(), i as u8);
            }
            assert!(set.is_empty());
        });
    });
}

#[test]
fn a_panicking_task_comes_out_as_a_panic_error_and_the_others_still_finish() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { 1 });
            let boom = set.spawn(async {
                coop::yield_now().await;
                panic!("boom in the set");
            });
            let boom = boom.id();
            set.spawn(async {
                coop::time::sleep(Duration::from_millis(20)).await;
                3
            });
            let mut ok = Vec::new();
            let mut panics = 0;
            while let Some(result) = next(&mut set).await {
                match result {
                    Ok(n) => ok.push(n),
                    Err(e) => {
                        assert!(e.is_panic(), "{e:?}");
                        assert_eq!(
                            e.to_string(),
                            format!("task {boom} panicked: boom in the set")
                        );
                        panics += 1;
                    }
                }
            }
            ok.sort();
            assert_eq!((ok, panics), (vec![1, 3], 1));
        });
    });
}

#[test]
fn abort_all_cancels_every_task_and_runs_their_destructors() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut set = JoinSet::new();
            let mut flags = Vec::new();
            let mut silent = Vec::new();
            for _ in 0..3 {
                let (reader, writer) = pair().await;
                let (guard, dropped) = flag();
                set.spawn(read_one(reader, Some(guard)));
                flags.push(dropped);
                silent.push(writer);
            }
            turns(3).await; // every task is waiting on its socket
            set.abort_all();
            assert_eq!(set.len(), 3, "aborted tasks stay in the set");
            for _ in 0..3 {
                let e = next(&mut set).await.unwrap().unwrap_err();
                assert!(e.is_cancelled(), "{e:?}");
            }
            assert!(next(&mut set).await.is_none());
            assert!(flags.iter().all(|f| f.get()), "a destructor did not run");
        });
    });
}

/// Dropping the set cancels a task that would otherwise wait forever (its
/// future's destructor runs at its next turn), and drops at once the
/// output of a task that had finished.
#[test]
fn dropping_the_set_aborts_its_running_tasks_and_drops_finished_outputs() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, _silent) = pair().await;
            let (running_guard, running_dropped) = flag();
            let (output, output_dropped) = flag();
            let mut set = JoinSet::new();
            set.spawn(async move {
                read_one(reader, Some(running_guard)).await;
                None
            });
            set.spawn(async move { Some(output) });
            turns(3).await; // one task waits on its socket, one has finished
            assert!(!running_dropped.get() && !output_dropped.get());

            drop(set);
            assert!(output_dropped.get(), "the finished task's output was kept");
            turns(3).await;
            assert!(running_dropped.get(), "the running task was not aborted");
        });
    });
}

#[test]
fn shutdown_aborts_every_task_and_leaves_the_set_empty() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, _silent) = pair().await;
            let (guard, dropped) = flag();
            let mut set = JoinSet::new();
            set.spawn(read_one(reader, Some(guard)));
            set.spawn(async { 7 }); // finished by the time of the shutdown
            set.spawn(async { panic!("ignored by shutdown") });
            turns(3).await;
            coop::time::timeout(Duration::from_secs(1), set.shutdown())
                .await
                .expect("shutdown did not finish");
            assert!(set.is_empty());
            assert!(dropped.get(), "the running task's destructor did not run");
            assert!(next(&mut set).await.is_none());
        });
    });
}

#[test]
fn detach_all_lets_the_tasks_finish_after_the_set_is_gone() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, mut writer) = pair().await;
            let (done_tx, done_rx) = futures::channel::oneshot::channel();
            let mut set = JoinSet::new();
            set.spawn(async move {
                let byte = read_one(reader, None).await;
                done_tx.send(byte).unwrap();
            });
            turns(3).await;
            set.detach_all();
            assert!(set.is_empty());
            drop(set);
            writer.write_all(&[42]).await.unwrap();
            let byte = coop::time::timeout(Duration::from_secs(1), done_rx)
                .await
                .expect("the detached task did not finish")
                .expect("the detached task was dropped");
            assert_eq!(byte, 42);
        });
    });
}

#[test]
fn join_next_on_an_empty_set_is_none_at_once() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut set = JoinSet::<u32>::default();
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(set.poll_join_next(&mut cx), Poll::Ready(None)));
            assert!(set.try_join_next().is_none());
            // And again once emptied.
            set.spawn(async { 1 });
            assert_eq!(next(&mut set).await.unwrap().unwrap(), 1);
            assert!(matches!(set.poll_join_next(&mut cx), Poll::Ready(None)));
            assert!(set.join_next().await.is_none());
        });
    });
}

#[test]
fn join_all_returns_every_output_in_the_order_the_tasks_finish() {
    with_deadline(10, || {
        coop::block_on(async {
            let (set, mut writers) = three_readers().await;
            // Each task finishes before the next byte is sent: completion
            // order is 1, 2, 0.
            let writes = async move {
                for i in [1usize, 2, 0] {
                    writers[i].write_all(&[i as u8]).await.unwrap();
                    coop::time::sleep(Duration::from_millis(20)).await;
                }
                writers
            };
            let (outputs, _writers) = futures::join!(set.join_all(), writes);
            assert_eq!(outputs, [1, 2, 0]);
        });
    });
}

/// `join_all` resumes a task's panic (its payload, not a wrapper), and the
/// set's drop in that panic aborts the task still waiting.
#[test]
fn join_all_resumes_a_task_s_panic_and_aborts_the_rest() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        let (reader, silent) = rt.block_on(async { pair().await });
        let (guard, dropped) = flag();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let mut set = JoinSet::new();
                set.spawn(read_one(reader, Some(guard)));
                set.spawn(async {
                    coop::yield_now().await;
                    std::panic::panic_any(17u32)
                });
                set.join_all().await
            })
        }))
        .unwrap_err();
        assert_eq!(panicked.downcast_ref::<u32>(), Some(&17));
        assert!(!dropped.get());
        rt.block_on(turns(3));
        assert!(dropped.get(), "the waiting task was not aborted");
        drop(silent);
    });
}

#[test]
fn join_all_panics_on_a_cancelled_task() {
    with_deadline(10, || {
        let id = Cell::new(None);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            coop::block_on(async {
                let mut set = JoinSet::new();
                id.set(Some(set.spawn(std::future::pending::<()>()).id()));
                set.abort_all();
                set.join_all().await
            })
        }))
        .unwrap_err();
        let message = panicked.downcast_ref::<String>().unwrap();
        assert_eq!(
            *message,
            format!("task {} was cancelled", id.get().unwrap())
        );
    });
}

#[test]
fn try_join_next_returns_a_finished_task_without_waiting() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, mut writer) = pair().await;
            let mut set = JoinSet::new();
            set.spawn(read_one(reader, None));
            set.spawn(async { 5 });
            assert!(set.try_join_next().is_none(), "nothing has run yet");
            turns(3).await;
            assert_eq!(set.try_join_next().unwrap().unwrap(), 5);
            assert!(set.try_join_next().is_none(), "the other task waits");
            assert_eq!(set.len(), 1);
            writer.write_all(&[9]).await.unwrap();
            assert_eq!(next(&mut set).await.unwrap().unwrap(), 9);
            assert!(set.try_join_next().is_none());
        });
    });
}

/// A `try_join_next` after a `poll_join_next` that returned `Pending`
/// must not take away the wake that `poll_join_next` promised: the
/// awaiting task is woken when a task of the set finishes.
#[test]
fn try_join_next_keeps_the_wake_promised_by_poll_join_next() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, mut writer) = pair().await;
            let mut set = JoinSet::new();
            set.spawn(read_one(reader, None));
            turns(3).await; // the task waits on its socket
            // The waiter is a task of its own, polled only when its own
            // waker fires: a lost wake leaves it pending (awaited in this
            // future, a timeout's last poll could still reach it).
            let waiter = coop::spawn(join_next_then_try(set));
            turns(3).await; // the waiter is pending
            writer.write_all(&[3]).await.unwrap();
            let result = coop::time::timeout(Duration::from_secs(1), waiter)
                .await
                .expect("the wake promised by poll_join_next was lost")
                .unwrap();
            assert_eq!(result.unwrap().unwrap(), 3);
        });
    });
}

/// `spawn` is `#[track_caller]`: the trace records this file's line, not
/// `join_set.rs`'s, as it does for `coop::spawn`. `extend` too.
#[test]
fn a_set_s_spawns_are_recorded_at_the_caller_s_line() {
    with_deadline(10, || {
        let rt = coop::Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { 1 });
            set.extend((2..=3).map(|i| async move { i }));
            set.spawn_blocking(|| 4);
            let mut all = set.join_all().await;
            all.sort();
            assert_eq!(all, [1, 2, 3, 4]);
        });
        let trace = rt.trace().unwrap();
        let locations: Vec<String> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                coop::trace::Event::Spawn { name, location, .. }
                    if name.as_deref() != Some("block_on") =>
                {
                    Some(location.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(locations.len(), 4, "{locations:?}");
        for location in &locations {
            assert!(location.starts_with("tests/join_set.rs:"), "{locations:?}");
        }
    });
}

/// Cancellation goes down the tree: aborting a task that owns a set drops
/// the set, which aborts the set's tasks, which would otherwise wait on
/// their sockets forever.
#[test]
fn aborting_the_task_that_owns_a_set_aborts_the_set_s_tasks() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, _silent) = pair().await;
            let (guard, dropped) = flag();
            let owner = coop::spawn(async move {
                let mut set = JoinSet::new();
                set.spawn(read_one(reader, Some(guard)));
                set.join_next().await
            });
            turns(3).await; // the owner waits on the set, the child on its socket
            owner.abort();
            assert!(owner.await.unwrap_err().is_cancelled());
            turns(3).await;
            assert!(dropped.get(), "the set's task outlived its owner");
        });
    });
}

/// A set owned by a task that the runtime's drop cancels aborts its own
/// tasks from inside that shutdown: no panic, and their destructors run.
#[test]
fn a_set_dropped_as_its_runtime_shuts_down_aborts_quietly() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        let (reader, silent) = rt.block_on(async { pair().await });
        let (guard, dropped) = flag();
        rt.spawn(async move {
            let mut set = JoinSet::new();
            set.spawn(read_one(reader, Some(guard)));
            std::future::pending::<()>().await;
            drop(set);
        });
        rt.block_on(turns(3));
        assert!(!dropped.get());
        drop(rt);
        assert!(dropped.get());
        drop(silent);
    });
}

/// `join_next_with_id` gives each result with the id of the task it came
/// from, the id of the `AbortHandle` that `spawn` returned: beside an
/// output, and in the error of a task that panicked or was aborted, for
/// a blocking job too.
#[test]
fn join_next_with_id_names_each_task_as_its_abort_handle_does() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut set = JoinSet::new();
            let one = set.spawn(async { 1 }).id();
            let panics = set
                .spawn(async {
                    coop::yield_now().await;
                    panic!("boom")
                })
                .id();
            let stuck = set.spawn(std::future::pending::<u32>());
            stuck.abort();
            let job = set.spawn_blocking(|| 4).id();
            let job_panics = set.spawn_blocking(|| -> u32 { panic!("job failed") }).id();
            let mut outputs = Vec::new();
            let mut errors = Vec::new();
            while let Some(result) = set.join_next_with_id().await {
                match result {
                    Ok((id, output)) => outputs.push((id, output)),
                    Err(e) => errors.push((e.id(), e.is_panic())),
                }
            }
            outputs.sort();
            errors.sort();
            let mut want_outputs = vec![(one, 1), (job, 4)];
            want_outputs.sort();
            let mut want_errors = vec![(panics, true), (stuck.id(), false), (job_panics, true)];
            want_errors.sort();
            assert_eq!(outputs, want_outputs);
            assert_eq!(errors, want_errors);
        });
    });
}

/// `try_join_next_with_id` and `poll_join_next_with_id` give the same
/// ids, and the plain methods the same results without them.
#[test]
fn try_and_poll_join_next_with_id_give_the_task_s_id() {
    with_deadline(10, || {
        coop::block_on(async {
            let mut set = JoinSet::new();
            let five = set.spawn(async { 5 }).id();
            let six = set.spawn(async { 6 }).id();
            assert!(set.try_join_next_with_id().is_none(), "nothing has run yet");
            turns(3).await;
            let first = set.try_join_next_with_id().unwrap().unwrap();
            assert_eq!(first, (five, 5));
            let second = poll_fn(|cx| set.poll_join_next_with_id(cx)).await;
            assert_eq!(second.unwrap().unwrap(), (six, 6));
            assert!(poll_fn(|cx| set.poll_join_next_with_id(cx)).await.is_none());
        });
    });
}

/// The waker `try_join_next` polls under is that of the *latest*
/// `poll_join_next` that returned `Pending`: a set first polled in one task
/// and then moved to another must promise its wakes to the second. (Kept
/// from the first poll, the wake would go to a task no longer waiting on
/// the set, and the second would wait for ever.)
#[test]
fn try_join_next_wakes_the_task_of_the_latest_poll_not_the_first() {
    with_deadline(10, || {
        coop::block_on(async {
            let (reader, mut writer) = pair().await;
            let mut set = JoinSet::new();
            set.spawn(read_one(reader, None));
            turns(3).await; // the task waits on its socket
            // Polled once here, under the main future's waker.
            poll_fn(|cx| {
                assert!(set.poll_join_next(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            let waiter = coop::spawn(join_next_then_try(set));
            turns(3).await; // the waiter is pending
            writer.write_all(&[5]).await.unwrap();
            let result = coop::time::timeout(Duration::from_secs(1), waiter)
                .await
                .expect("the wake went to the task of the set's first poll")
                .unwrap();
            assert_eq!(result.unwrap().unwrap(), 5);
        });
    });
}
