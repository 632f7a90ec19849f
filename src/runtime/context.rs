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
    /// The runtime whose loop is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Calls `f` with the current runtime, or returns `None` outside one.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.try_borrow().ok()?.as_ref().map(f))
        .ok()
        .flatten()
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
/// If a runtime is already running on this thread: blocking inside a task
/// would freeze every other task of that loop.
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.is_some() {
            panic!(
                "coop::block_on called inside a running coop runtime: this would \
                 block the loop's only thread. Use `.await` (or coop::spawn) instead."
            );
        }
        *current = Some(core);
    });
    EnterGuard { active: true }
}

/// Like [`enter`], but does nothing if a runtime is already current (used
/// when dropping a runtime, which may happen anywhere).
pub(crate) fn try_enter(core: Rc<Core>) -> EnterGuard {
    let active = CURRENT
        .try_with(|current| {
            let mut current = current.borrow_mut();
            if current.is_some() {
                return false;
            }
            *current = Some(core);
            true
        })
        .unwrap_or(false);
    EnterGuard { active }
}

/// Clears the current runtime when dropped (also during a panic).
pub(crate) struct EnterGuard {
    active: bool,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if self.active {
            let old = CURRENT.try_with(|current| current.borrow_mut().take());
            drop(old);
        }
    }
}
