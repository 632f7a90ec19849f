//! `AbortHandle`: cancelling a task without its `JoinHandle`.
//!
//! Each task here is a `util::Probe` (or holds one): it counts its polls and
//! its drops, so a test sees that an abort dropped the future and that no
//! poll came after it.
#![allow(clippy::async_yields_async)] // tests return join handles from block_on on purpose

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use coop::task::{AbortHandle, JoinSet};
use coop::{JoinError, JoinHandle};
use util::{probe, turns, with_deadline};

/// Sets its flag when dropped: a task's output whose drop must be seen.
struct Flag(Rc<Cell<bool>>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn an_abort_handle_cancels_a_task_whose_join_handle_was_dropped() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, polls, drops) = probe();
            let handle = coop::spawn(p);
            let abort = handle.abort_handle();
            drop(handle); // detached: only the abort handle can stop it now
            turns(2).await;
            assert_eq!((polls.get(), drops.get()), (1, 0));
            assert!(!abort.is_finished());
            abort.abort();
            turns(2).await;
            assert_eq!(drops.get(), 1, "the abort dropped the future");
            assert_eq!(polls.get(), 1, "no poll after the abort");
            assert!(abort.is_finished());
        });
    });
}

#[test]
fn aborting_a_finished_task_keeps_its_output_and_does_not_panic() {
    with_deadline(10, || {
        coop::block_on(async {
            // The JoinHandle is held: the output waits in the cell.
            let handle = coop::spawn(async { 7 });
            let abort = handle.abort_handle();
            turns(2).await;
            assert!(abort.is_finished());
            abort.abort();
            turns(2).await;
            assert_eq!(handle.await.unwrap(), 7, "the output is kept");
            // Nobody holds the cell now: the abort reaches nothing.
            abort.abort();
            assert!(abort.is_finished());
        });
    });
}

#[test]
fn is_finished_is_false_until_the_loop_has_carried_out_the_abort() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, _polls, _drops) = probe();
            let handle = coop::spawn(p);
            let abort = handle.abort_handle();
            assert!(!abort.is_finished(), "not before its first poll");
            turns(2).await;
            assert!(!abort.is_finished(), "not while it waits");
            abort.abort();
            assert!(!abort.is_finished(), "an abort is a request (as in tokio)");
            turns(2).await;
            assert!(abort.is_finished(), "the loop cancelled it");
            assert!(handle.await.unwrap_err().is_cancelled());
            assert!(abort.is_finished(), "and after the JoinHandle returned");
        });
    });
}

/// The handle holds the task's cell weakly: a detached task's output is
/// dropped when the task finishes, not when the last abort handle goes.
#[test]
fn an_abort_handle_does_not_keep_a_detached_task_s_output_alive() {
    with_deadline(10, || {
        coop::block_on(async {
            let dropped = Rc::new(Cell::new(false));
            let output = Flag(dropped.clone());
            let handle = coop::spawn(async move {
                coop::yield_now().await;
                output
            });
            let abort = handle.abort_handle();
            drop(handle);
            turns(3).await;
            assert!(
                dropped.get(),
                "the output was dropped when the task finished"
            );
            assert!(abort.is_finished());
            abort.abort(); // nothing left to abort
        });
    });
}

#[test]
fn an_abort_handle_outliving_its_runtime_says_finished() {
    with_deadline(10, || {
        let rt = coop::Runtime::new().unwrap();
        let (p, polls, drops) = probe();
        let (detached, kept) = rt.block_on(async {
            let detached = coop::spawn(p);
            let kept = coop::spawn(std::future::pending::<()>());
            turns(2).await;
            (detached.abort_handle(), kept)
        });
        let kept_abort = kept.abort_handle();
        assert!(!detached.is_finished() && !kept_abort.is_finished());
        drop(rt);
        assert_eq!((polls.get(), drops.get()), (1, 1), "the runtime dropped it");
        assert!(detached.is_finished(), "its cell is gone");
        assert!(kept_abort.is_finished(), "its cell says cancelled");
        detached.abort();
        kept_abort.abort();
        let err = futures::executor::block_on(kept).unwrap_err();
        assert!(err.is_cancelled());
    });
}

#[test]
fn aborting_a_join_set_task_by_its_handle_makes_join_next_say_cancelled() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, polls, drops) = probe();
            let mut set = JoinSet::new();
            let stuck: AbortHandle = set.spawn(async move {
                p.await;
                1
            });
            set.spawn(async {
                turns(4).await;
                2
            });
            turns(2).await;
            stuck.abort();
            turns(2).await;
            assert_eq!((polls.get(), drops.get()), (1, 1));
            let first = set.try_join_next().expect("the aborted task is done");
            assert!(first.unwrap_err().is_cancelled());
            assert_eq!(set.len(), 1, "the other task is still in the set");
            assert_eq!(set.join_next().await.unwrap().unwrap(), 2);
            assert!(stuck.is_finished());
        });
    });
}

/// The same rule as for `JoinHandle::abort`: a task that aborts itself is
/// cancelled at its next poll; if the poll that called `abort` returns,
/// there is no next poll and the output is kept.
#[test]
fn a_task_that_aborts_itself_by_its_abort_handle_is_cancelled_at_its_next_poll() {
    /// Spawns a task that aborts itself after a yield, then returns 5 at
    /// once (`then_wait` false) or after one more `.await` (true).
    async fn self_abort(then_wait: bool) -> (Result<u32, JoinError>, u32) {
        let (p, polls, drops) = probe();
        let own: Rc<RefCell<Option<AbortHandle>>> = Rc::default();
        let o = own.clone();
        let handle: JoinHandle<u32> = coop::spawn(async move {
            coop::yield_now().await;
            o.borrow().as_ref().unwrap().abort();
            if then_wait {
                p.await; // Pending for ever: the next poll is the cancellation
            } else {
                drop(p);
            }
            5
        });
        *own.borrow_mut() = Some(handle.abort_handle());
        turns(4).await;
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
fn a_clone_aborts_the_same_task() {
    with_deadline(10, || {
        coop::block_on(async {
            let (p, polls, drops) = probe();
            let handle = coop::spawn(p);
            let original = handle.abort_handle();
            let clone = original.clone();
            drop(original);
            let id = handle.id();
            assert_eq!(clone.id(), id);
            assert_eq!(
                format!("{clone:?}"),
                format!("AbortHandle {{ id: {id:?}, finished: false }}")
            );
            clone.abort();
            turns(2).await;
            assert_eq!((polls.get(), drops.get()), (0, 1), "cancelled unpolled");
            assert!(clone.is_finished());
            assert!(handle.await.unwrap_err().is_cancelled());
            assert_eq!(
                format!("{clone:?}"),
                format!("AbortHandle {{ id: {id:?}, finished: true }}")
            );
        });
    });
}
