//! The thread-local "current runtime".
//!
//! `coop::spawn(fut)` takes no runtime argument, like `asyncio.create_task`:
//! it finds the runtime through a thread-local set by `block_on` for as long
//! as the loop runs. Wakers use the same thread-local to tell whether they
//! are being called on their own loop's thread (see `task::waker`).

use std::cell::RefCell;
use std::rc::Rc;

use super::Core;
use crate::task::id::TaskId;

thread_local! {
    /// The runtime whose loop is running on this thread, if any, or the
    /// one being dropped (for its tasks' destructors: see
    /// [`enter_for_drop`]).
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Calls `f` with the current runtime, or returns `None` outside one.
///
/// `f` runs, or is dropped uncalled, while the thread-local is borrowed: a
/// closure that owns a future or a job (whose destructor may use coop)
/// must not come here. `spawn` and `spawn_blocking` take the runtime out
/// first (`with_current(Rc::clone)`) and handle what they own after.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.try_borrow().ok()?.as_ref().map(f))
        .ok()
        .flatten()
}

/// Calls `f` with the current runtime if its loop runs (inside
/// `block_on`), or returns `None`. A runtime being dropped is current but
/// runs no loop: a timer filed or a waker stored with it would never be
/// seen, so what would wait for one asks here, not [`with_current`].
pub(crate) fn with_running<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    with_current(|core| core.timers.looping().then(|| f(core))).flatten()
}

/// Queues `id` on the current runtime if that runtime is `runtime_id`.
/// Returns false (the caller takes the cross-thread road) otherwise.
pub(crate) fn schedule_local(runtime_id: u64, id: TaskId) -> bool {
    with_current(|core| {
        if core.id == runtime_id {
            core.executor.schedule(id);
            true
        } else {
            false
        }
    })
    .unwrap_or(false)
}

/// Makes `core` current until the guard drops.
///
/// # Panics
/// If a runtime is already current on this thread: blocking inside a task
/// would freeze every other task of that loop. (A runtime being dropped is
/// current too, for its tasks' destructors: see [`enter_for_drop`].)
#[track_caller]
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    let entered = CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.is_some() {
            return false;
        }
        *current = Some(core);
        true
    });
    // Out here, not in the closure, so that `#[track_caller]` reports the
    // panic at the `block_on` call.
    if !entered {
        panic!(
            "coop::block_on called inside a running coop runtime: this would \
             block the loop's only thread. Use `.await` (or coop::spawn) instead."
        );
    }
    EnterGuard {
        restore: Some(None),
    }
}

/// Makes `core` current while a runtime is dropped, wherever that happens
/// (even inside another runtime's task), restoring what was current after.
pub(crate) fn enter_for_drop(core: Rc<Core>) -> EnterGuard {
    let previous = CURRENT
        .try_with(|current| current.borrow_mut().replace(core))
        .ok()
        .flatten();
    EnterGuard {
        restore: Some(previous),
    }
}

/// Puts back what was current before, when dropped (also during a panic).
pub(crate) struct EnterGuard {
    /// What to restore: `Some(None)` means "no runtime".
    restore: Option<Option<Rc<Core>>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.restore.take() {
            let ours =
                CURRENT.try_with(|current| std::mem::replace(&mut *current.borrow_mut(), previous));
            drop(ours);
        }
    }
}
