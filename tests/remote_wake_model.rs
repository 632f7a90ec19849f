//! A loom model of the remote wake protocol in `src/task/waker.rs`: the
//! `remote_queued` flag that keeps a task in the remote queue at most once.
//!
//! A thread that wakes a task sets the flag with a `swap` and pushes the
//! waker only if the flag was clear; the loop, when it drains the queue,
//! clears the flag of each waker it takes, then polls the task. The danger
//! is a *lost wake*: a thread publishes a message, wakes, finds the flag
//! still set (its earlier push is not drained yet) and pushes nothing, while
//! the loop's poll, which follows the drain, does not see the message. Then
//! the task sleeps with unread work and nothing in the queue to wake it.
//! `Remote::drain_into` explains why clearing with `swap(false, AcqRel)`
//! rules this out and a plain `store(false, Release)` does not.
//!
//! loom runs the model under every interleaving of the two threads and,
//! for the `Relaxed` message, every value the memory model lets a load
//! read. The model is a copy of the protocol, not the runtime's code (which
//! uses `std`'s atomics): keep the two in step. The second test is the
//! control: with the plain store, loom finds the lost wake.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// How the loop clears the flag when it drains a waker.
#[derive(Clone, Copy)]
enum Clear {
    /// What `Remote::drain_into` does.
    Swap,
    /// The plain store the runtime once used (the bug).
    Store,
}

/// One task's waker and the remote queue, cut down to what the race needs.
struct Model {
    /// `TaskWaker::remote_queued`.
    remote_queued: AtomicBool,
    /// `Remote::queue`: how many times the waker sits in it.
    queue: Mutex<usize>,
    /// What the waking thread publishes before each wake (a channel's slot).
    message: AtomicUsize,
}

impl Model {
    /// `TaskWaker::wake_by_ref`'s remote road.
    fn wake(&self) {
        if !self.remote_queued.swap(true, Ordering::AcqRel) {
            *self.queue.lock().unwrap() += 1;
        }
    }

    /// `Remote::drain_into`: true if the task was in the queue (and is
    /// now to be polled).
    fn drain(&self, clear: Clear) -> bool {
        let mut queue = self.queue.lock().unwrap();
        if *queue == 0 {
            return false;
        }
        *queue = 0;
        match clear {
            Clear::Swap => {
                self.remote_queued.swap(false, Ordering::AcqRel);
            }
            Clear::Store => self.remote_queued.store(false, Ordering::Release),
        }
        true
    }
}

/// A thread sends messages 1 and 2, waking after each; the loop drains
/// and polls twice. Afterwards the task has either seen message 2 or is
/// still queued (so a later turn polls it): no wake was lost.
fn run(clear: Clear) {
    loom::model(move || {
        let model = Arc::new(Model {
            remote_queued: AtomicBool::new(false),
            queue: Mutex::new(0),
            message: AtomicUsize::new(0),
        });
        let sender = {
            let model = model.clone();
            thread::spawn(move || {
                for message in 1..=2 {
                    model.message.store(message, Ordering::Relaxed);
                    model.wake();
                }
            })
        };
        let mut seen = 0;
        for _turn in 0..2 {
            if model.drain(clear) {
                // The poll: the task reads the channel.
                seen = model.message.load(Ordering::Relaxed);
            }
        }
        sender.join().unwrap();
        let queued = *model.queue.lock().unwrap() > 0;
        assert!(
            seen == 2 || queued,
            "lost wake: the task saw message {seen} and is not queued"
        );
    });
}

#[test]
fn clearing_the_flag_with_a_swap_loses_no_wake() {
    run(Clear::Swap);
}

#[test]
fn clearing_the_flag_with_a_plain_store_can_lose_a_wake() {
    let found = std::panic::catch_unwind(|| run(Clear::Store)).expect_err("loom finds it");
    let message = found
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        message.starts_with("lost wake"),
        "another failure: {message}"
    );
}
