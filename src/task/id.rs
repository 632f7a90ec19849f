//! Task identity: a `slab` key plus a generation.
//!
//! Every task lives in one slot of the executor's [`slab::Slab`]. When a task
//! finishes, its slot is freed and the next `spawn` may reuse the same key.
//! A waker, though, can outlive its task: a socket may still hold it, or a
//! thread may wake it late. If a waker named its task by key alone, such a stale
//! wake would poll the *new* task in the reused slot, a task that never asked
//! for it.
//!
//! So a [`TaskId`] is the key *and* a generation drawn from a counter that
//! only grows. The executor polls a slot only when both match; a stale id
//! finds a different generation and is ignored. This is the safe-Rust answer
//! to what other runtimes solve with reference-counted raw pointers.
//!
//! The generation alone already names a task for the whole life of its
//! runtime, and it is what log lines and traces call the task by ("task
//! 7"). It is public as [`Id`]: [`task::id`](super::id()) inside a task,
//! [`JoinHandle::id`](super::JoinHandle::id) and
//! [`AbortHandle::id`](super::AbortHandle::id) outside it, as in tokio.

use std::fmt;
use std::num::NonZeroU64;

/// Names one task for the whole life of a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TaskId {
    /// Index of the task's slot in the executor's slab.
    pub(crate) key: usize,
    /// Unique per spawn: distinguishes this task from any later task that
    /// reuses the same slot.
    pub(crate) generation: u64,
}

impl TaskId {
    /// The future passed to `block_on` is not in the slab; it gets this
    /// reserved key (and a fresh generation per `block_on` call, so a waker
    /// left over from an earlier call is stale like any other) so that it
    /// can be queued and woken like a task.
    pub(crate) const MAIN_KEY: usize = usize::MAX;
}

/// A task's number: the generation half of its slot's name (see the
/// [module docs](self)). Unique among all the tasks a runtime ever
/// spawned, never reused, counted from 1 in spawn order (with the
/// `block_on` calls, which take numbers too but are not tasks, in
/// between); two runtimes count separately. It is the number slow-poll
/// warnings, the runtime's log lines and its traces give the task.
///
/// ```
/// coop::block_on(async {
///     let handle = coop::spawn(async { coop::task::id() });
///     let id = handle.id();
///     assert_eq!(handle.await.unwrap(), id);
///     println!("task {id} is done");
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroU64);

impl Id {
    /// The id of the task of generation `generation` (never 0: the
    /// executor counts from 1).
    pub(crate) fn new(generation: u64) -> Id {
        Id(NonZeroU64::new(generation).expect("task generations start at 1"))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
