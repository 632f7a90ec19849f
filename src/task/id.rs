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
