//! The thread-local "current runtime".
//!
//! `coop::spawn(fut)` takes no runtime argument, like `asyncio.create_task`:
//! it finds the runtime through a thread-local. Wakers use the same
//! thread-local to tell whether they are being called on their own loop's
//! thread (see `task::waker`).
//!
//! # Who makes a runtime current
//!
//! Three things do, each for as long as a guard of theirs lives:
//!
//! | Who | Kind | While |
//! |-----|------|-------|
//! | `Runtime::block_on` | [`Kind::Running`] | its loop runs |
//! | `Runtime::drop` | [`Kind::Dropping`] | its tasks' destructors run (see [`enter_for_drop`]) |
//! | `Runtime::enter` | [`Kind::Entered`] | the user's `EnterGuard` lives: sockets, spawns and sleeps made outside `block_on` go to that runtime, and run at its next `block_on` |
//!
//! Each of them pushes a *frame* (kind and runtime) on a per-thread stack,
//! and the current runtime is the newest frame's. An entered runtime is
//! current without a running loop, like one being dropped: what would wait
//! for an event asks [`with_running`] (which looks at the runtime's own
//! `Timers::looping` flag, not at the frames), and gets `None`.
//!
//! The rules, checked when a frame is pushed:
//!
//! - `block_on` and `Runtime::enter` are refused (they panic) while the
//!   newest frame is `Running` or `Dropping`: inside a task, inside a
//!   `block_on` future, or in a destructor run by a runtime's drop. A
//!   `block_on` there would block the loop's only thread. An `enter` there
//!   would be no use (the running loop's runtime is current already) or
//!   harm: a guard held across an `.await` would make another runtime
//!   current for every task polled meanwhile, sending their wakes down the
//!   cross-thread road and their spawns to a runtime whose loop cannot run
//!   until this one returns; and it would open a door for `block_on`
//!   inside a task, which checks only the newest frame.
//! - Over an `Entered` frame (or none) both are allowed: `enter` nests,
//!   and `block_on` runs its loop, after which the entered runtime is
//!   current again.
//! - A runtime may be dropped anywhere (`Dropping` is never refused).
//!
//! So an `Entered` frame only ever sits on other `Entered` frames: no loop
//! runs beneath it.
//!
//! Frames are removed by their guards, in any order. `block_on`'s and
//! `drop`'s guards live in one function call and leave in order; a user's
//! `EnterGuard` may not (dropped before a newer one, or moved into the
//! `block_on` future and dropped there). Each guard removes its own frame,
//! wherever it stands, and the current runtime is the newest frame left.
//! A guard that never drops (an `EnterGuard` passed to `mem::forget`)
//! leaves its frame behind; the end of its runtime's drop (the `Dropping`
//! guard) removes every frame of that runtime still on the stack, so that
//! a dead runtime is never current.
//! tokio panics on an out-of-order drop instead, and leaves its context
//! as it was: a panic from a destructor aborts the process if it comes
//! during another panic, and the runtime left current would keep its core
//! alive, and take sockets and spawns, after the runtime is gone.
//!
//! # The hot path
//!
//! [`with_current`] runs on every wake of a task by another task
//! ([`schedule_local`]), so it reads one `RefCell<Option<Rc<Core>>>` and
//! nothing else: the newest frame's runtime, copied there whenever the
//! newest frame changes. The frames themselves are read only when one is
//! pushed or removed (a `block_on` call, a runtime's drop, an `enter`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::Core;
use crate::task::id::TaskId;

thread_local! {
    /// This thread's current runtime and the frames that made it so.
    static CONTEXT: Context = const {
        Context {
            current: RefCell::new(None),
            frames: RefCell::new(Vec::new()),
            next_serial: Cell::new(0),
        }
    };
}

/// The per-thread state (see the module docs).
struct Context {
    /// The newest frame's runtime, if any: what [`with_current`] reads on
    /// the hot path, kept equal to `frames.last()`'s core by every push and
    /// removal.
    current: RefCell<Option<Rc<Core>>>,
    /// Who made runtimes current, oldest first.
    frames: RefCell<Vec<Frame>>,
    /// Names the next frame, so that its guard can find it wherever it
    /// stands when the guard drops.
    next_serial: Cell<u64>,
}

/// One entry of the stack: a runtime made current, and by whom.
struct Frame {
    /// Unique on this thread: what the guard holds.
    serial: u64,
    /// Who pushed it (decides what may be pushed on top).
    kind: Kind,
    /// The runtime it made current.
    core: Rc<Core>,
}

/// Who made a runtime current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `Runtime::enter`: current, no loop running.
    Entered,
    /// `Runtime::block_on`: its loop runs.
    Running,
    /// `Runtime::drop`: its tasks are being dropped.
    Dropping,
}

/// Calls `f` with the current runtime, or returns `None` outside one.
///
/// `f` runs, or is dropped uncalled, while the thread-local is borrowed: a
/// closure that owns a future or a job (whose destructor may use coop)
/// must not come here. `spawn` and `spawn_blocking` take the runtime out
/// first (`with_current(Rc::clone)`) and handle what they own after.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CONTEXT
        .try_with(|context| context.current.try_borrow().ok()?.as_ref().map(f))
        .ok()
        .flatten()
}

/// Calls `f` with the current runtime if its loop runs (inside
/// `block_on`), or returns `None`. A runtime being dropped, or entered
/// with `Runtime::enter`, is current but runs no loop: a timer filed or a
/// waker stored with it would never be seen, so what would wait for one
/// asks here, not [`with_current`].
pub(crate) fn with_running<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    with_current(|core| core.timers.looping().then(|| f(core))).flatten()
}

/// Queues `id` on the current runtime if that runtime is `runtime_id`.
/// Returns false (the caller takes the cross-thread road) otherwise.
///
/// An entered runtime (no loop running) takes the local road too: the
/// task is queued for its next `block_on`, as a spawn is.
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

/// Makes `core` current for its `block_on` until the guard drops.
///
/// # Panics
/// If a loop runs on this thread (inside a task or a `block_on` future:
/// blocking there would freeze every other task of that loop), or a
/// runtime is being dropped (see [`enter_for_drop`]). Over a runtime
/// entered with `Runtime::enter` it is allowed.
#[track_caller]
pub(crate) fn enter_for_loop(core: Rc<Core>) -> ContextGuard {
    // The panic comes out here, not in a closure, so that
    // `#[track_caller]` reports it at the `block_on` call.
    match push(core, Kind::Running) {
        Some(guard) => guard,
        None => panic!(
            "coop::block_on called inside a running coop runtime: this would \
             block the loop's only thread. Use `.await` (or coop::spawn) instead."
        ),
    }
}

/// Makes `core` current, with no loop running, for `Runtime::enter`.
///
/// # Panics
/// Where [`enter_for_loop`] does (see the module docs for why).
#[track_caller]
pub(crate) fn enter_for_user(core: Rc<Core>) -> ContextGuard {
    match push(core, Kind::Entered) {
        Some(guard) => guard,
        None => panic!(
            "coop::Runtime::enter called inside a running coop runtime (in a task, \
             a block_on future, or a destructor run by a runtime's drop): the \
             running loop's runtime is current there already"
        ),
    }
}

/// Makes `core` current while a runtime is dropped, wherever that happens
/// (even inside another runtime's task), until the guard drops. Never
/// refused; does nothing if the thread-local is gone (a runtime dropped
/// while the thread exits).
pub(crate) fn enter_for_drop(core: Rc<Core>) -> ContextGuard {
    push(core, Kind::Dropping).unwrap_or(ContextGuard { serial: None })
}

/// Pushes a frame, or returns `None` if the rules (module docs) refuse
/// it: `Running` and `Entered` only over nothing or an `Entered` frame.
fn push(core: Rc<Core>, kind: Kind) -> Option<ContextGuard> {
    let pushed = CONTEXT.try_with(|context| {
        let mut frames = context.frames.borrow_mut();
        let top = frames.last().map(|frame| frame.kind);
        if kind != Kind::Dropping && matches!(top, Some(Kind::Running | Kind::Dropping)) {
            return None;
        }
        let serial = context.next_serial.get();
        context.next_serial.set(serial + 1);
        let previous = context.current.borrow_mut().replace(core.clone());
        frames.push(Frame { serial, kind, core });
        Some((serial, previous))
    });
    match pushed {
        Ok(Some((serial, previous))) => {
            // Dropped outside the borrows (it cannot be the last `Rc`:
            // the frame below holds one too).
            drop(previous);
            Some(ContextGuard {
                serial: Some(serial),
            })
        }
        Ok(None) => None,
        // The thread-local is being destroyed (the thread exits): only
        // `enter_for_drop` uses `try_with` there; the others panic, as
        // `with` would.
        Err(_) if kind == Kind::Dropping => None,
        Err(_) => panic!("coop: the runtime context is gone (the thread is exiting)"),
    }
}

/// Removes its frame when dropped (also during a panic), wherever it
/// stands; if it was the newest, the one below becomes current.
pub(crate) struct ContextGuard {
    /// The frame to remove; `None` if none was pushed.
    serial: Option<u64>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let Some(serial) = self.serial.take() else {
            return;
        };
        let removed = CONTEXT.try_with(|context| {
            let mut frames = context.frames.borrow_mut();
            // Usually the newest: search from the top. (Not found: a
            // runtime's drop took it, see below.)
            let at = frames.iter().rposition(|frame| frame.serial == serial)?;
            let frame = frames.remove(at);
            let mut newest_gone = at == frames.len();
            // The end of a runtime's drop takes every frame of that
            // runtime still here: those of `EnterGuard`s that were
            // `mem::forget`-ed (no live guard can be left: each borrows
            // the runtime). Left behind, they would keep the dead runtime
            // current, taking sockets and spawns that no loop will ever
            // serve, and its core alive.
            let mut stale = Vec::new();
            if frame.kind == Kind::Dropping && frames.iter().any(|f| f.core.id == frame.core.id) {
                let all = std::mem::take(&mut *frames);
                let kept;
                (stale, kept) = all.into_iter().partition(|f| f.core.id == frame.core.id);
                *frames = kept;
                newest_gone = true; // (it may not have been: no matter)
            }
            let previous = if newest_gone {
                let below = frames.last().map(|frame| frame.core.clone());
                std::mem::replace(&mut *context.current.borrow_mut(), below)
            } else {
                None // a frame below the newest: the current runtime stays
            };
            Some((frame, stale, previous))
        });
        // The `Rc`s are dropped here, after the borrows end.
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runtime;

    fn current_id() -> Option<u64> {
        with_current(|core| core.id)
    }

    fn frames() -> usize {
        CONTEXT.with(|context| context.frames.borrow().len())
    }

    /// The invariant the hot path relies on: `current` is the newest
    /// frame's runtime after every push and every removal, in any order.
    #[test]
    fn current_follows_the_newest_frame_through_out_of_order_removals() {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        let (ida, idb) = (a.core.id, b.core.id);
        let ga = enter_for_user(a.core.clone());
        let gb = enter_for_user(b.core.clone());
        let ga2 = enter_for_user(a.core.clone());
        assert_eq!(current_id(), Some(ida));
        drop(gb); // from the middle
        assert_eq!(current_id(), Some(ida));
        drop(ga2); // the newest: the oldest is current again
        assert_eq!(current_id(), Some(ida));
        let gb = enter_for_user(b.core.clone());
        drop(ga); // from the bottom
        assert_eq!(current_id(), Some(idb));
        drop(gb);
        assert_eq!(current_id(), None);
        assert_eq!(frames(), 0);
    }

    /// A forgotten guard's frame leaves with its runtime's drop, and
    /// with it the frame's `Rc`: the core is freed, not leaked.
    #[test]
    fn a_runtime_s_drop_removes_the_frames_of_its_forgotten_guards() {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        let ga = enter_for_user(a.core.clone());
        std::mem::forget(b.enter());
        std::mem::forget(enter_for_user(a.core.clone()));
        std::mem::forget(b.enter());
        let core_b = Rc::downgrade(&b.core);
        drop(b);
        assert!(core_b.upgrade().is_none(), "b's core was freed");
        assert_eq!(frames(), 2, "a's two frames stay");
        assert_eq!(current_id(), Some(a.core.id));
        drop(ga);
        let core_a = Rc::downgrade(&a.core);
        drop(a);
        assert!(core_a.upgrade().is_none(), "a's core was freed");
        assert_eq!((frames(), current_id()), (0, None));
    }
}
