//! `Runtime::enter`: a runtime made current without its loop running, so
//! that code outside `block_on` can make sockets, spawn tasks and build
//! sleeps for it.

mod util;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::Runtime;
use coop::net::{TcpListener, TcpStream, UdpSocket};
use util::{serve_echo, with_deadline};

/// Which of `runtimes` is current on this thread: the one a new socket
/// registers with (`None` if the socket is refused: no runtime is
/// current).
fn current_of(runtimes: &[&Runtime]) -> Option<usize> {
    let before: Vec<usize> = runtimes.iter().map(|rt| rt.metrics().io_sources).collect();
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    let which = runtimes
        .iter()
        .zip(before)
        .position(|(rt, before)| rt.metrics().io_sources == before + 1)
        .expect("the socket registered with a runtime not in the list");
    drop(socket);
    Some(which)
}

/// The message of a caught panic.
fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_listener_bound_under_the_guard_serves_an_echo_in_a_later_block_on() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let (listener, client) = {
            let _guard = rt.enter();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            // A connected std stream, wrapped under the guard too.
            let std_client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (listener, TcpStream::from_std(std_client).unwrap())
        };
        assert_eq!(rt.metrics().io_sources, 2, "both registered with rt");
        let reply = rt.block_on(async move {
            coop::spawn(serve_echo(listener));
            let mut client = client;
            client.write_all(b"entered").await.unwrap();
            let mut reply = [0; 7];
            client.read_exact(&mut reply).await.unwrap();
            reply
        });
        assert_eq!(&reply, b"entered");
    });
}

/// Outside every runtime the socket is refused, and the error names both
/// ways to have a runtime.
#[test]
fn outside_a_runtime_the_socket_error_names_block_on_and_enter() {
    with_deadline(10, || {
        let err = TcpListener::bind("127.0.0.1:0").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("must be created inside a coop runtime"),
            "{text}"
        );
        assert!(text.contains("Runtime::enter"), "{text}");
        // And the guard is what makes it work.
        let rt = Runtime::new().unwrap();
        let _guard = rt.enter();
        assert!(TcpListener::bind("127.0.0.1:0").is_ok());
    });
}

#[test]
fn a_task_spawned_under_the_guard_runs_at_the_next_block_on() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let ran = Rc::new(Cell::new(false));
        let handle = {
            let _guard = rt.enter();
            let ran = ran.clone();
            coop::spawn(async move {
                ran.set(true);
                6 * 7
            })
        };
        assert!(!ran.get(), "no loop ran yet");
        assert_eq!(rt.metrics().tasks_alive, 1, "queued on rt");
        assert_eq!(rt.block_on(handle).unwrap(), 42);
        assert!(ran.get());
    });
}

/// A sleep built under the guard counts from the entered runtime's clock,
/// which, paused, may stand far from the machine's.
#[test]
fn a_sleep_built_under_the_guard_reads_the_entered_runtime_s_clock() {
    with_deadline(10, || {
        let rt = Runtime::builder().start_paused(true).build().unwrap();
        // The paused clock jumps an hour ahead.
        rt.block_on(coop::time::sleep(Duration::from_secs(3600)));
        let (sleep, timeout) = {
            let _guard = rt.enter();
            let sleep = coop::time::sleep(Duration::from_secs(60));
            let timeout =
                coop::time::timeout(Duration::from_secs(60), std::future::pending::<()>());
            (sleep, timeout)
        };
        assert!(
            sleep.deadline() > Instant::now() + Duration::from_secs(1800),
            "the deadline counts from the paused clock, an hour ahead"
        );
        let wall = Instant::now();
        rt.block_on(async {
            sleep.await;
            assert!(timeout.await.is_err());
        });
        assert!(wall.elapsed() < Duration::from_secs(30));
    });
}

#[test]
fn block_on_under_the_guard_runs_and_the_runtime_is_current_again_after() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let _guard = rt.enter();
        assert_eq!(current_of(&[&rt]), Some(0));
        let n = rt.block_on(async {
            assert_eq!(current_of(&[&rt]), Some(0));
            coop::spawn(async { 1 + 1 }).await.unwrap()
        });
        assert_eq!(n, 2);
        assert_eq!(current_of(&[&rt]), Some(0), "entered again after block_on");
        // Also after a block_on that panics.
        let panicked = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { panic!("main") })));
        assert!(panicked.is_err());
        assert_eq!(current_of(&[&rt]), Some(0), "entered again after a panic");
        // And a spawn under the guard still goes to rt.
        assert_eq!(rt.block_on(coop::spawn(async { 3 })).unwrap(), 3);
    });
}

/// The guard of one runtime while another's loop runs: inside, the running
/// loop's runtime is current; after, the entered one again.
#[test]
fn a_guard_for_one_runtime_while_another_runs_its_loop() {
    with_deadline(10, || {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        let _guard = a.enter();
        let from_a = coop::spawn(async { "a" });
        let echoed = b.block_on(async {
            assert_eq!(current_of(&[&a, &b]), Some(1));
            // A server on b's loop, over real sockets.
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            coop::spawn(serve_echo(listener));
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(b"b").await.unwrap();
            let mut reply = [0; 1];
            client.read_exact(&mut reply).await.unwrap();
            reply
        });
        assert_eq!(&echoed, b"b");
        assert_eq!(current_of(&[&a, &b]), Some(0));
        // a's task waited for a's loop.
        assert_eq!(a.metrics().tasks_alive, 1);
        assert_eq!(a.block_on(from_a).unwrap(), "a");
    });
}

#[test]
fn block_on_inside_a_task_or_the_main_future_still_panics_under_a_guard() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let _guard = rt.enter();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { coop::block_on(async {}) })
        }))
        .expect_err("block_on inside the block_on future");
        assert!(
            message(panicked).contains("inside a running coop runtime"),
            "block_on in the main future"
        );
        let err = rt
            .block_on(coop::spawn(async { coop::block_on(async {}) }))
            .unwrap_err();
        assert!(
            err.to_string().contains("inside a running coop runtime"),
            "{err}"
        );
        // The guard's runtime is current again after both.
        assert_eq!(current_of(&[&rt]), Some(0));
    });
}

/// `enter` inside a running loop panics too (the module docs of
/// `runtime::context` say why), in a task and in the main future.
#[test]
fn enter_inside_a_running_loop_panics() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let other = Runtime::new().unwrap();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { drop(other.enter()) })
        }))
        .expect_err("enter inside the block_on future");
        assert!(
            message(panicked).contains("Runtime::enter called inside a running coop runtime"),
            "enter in the main future"
        );
        let panicked = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { drop(rt.enter()) })))
            .expect_err("enter of the running runtime itself");
        assert!(message(panicked).contains("Runtime::enter called inside"));
        // Nothing is left current.
        assert_eq!(current_of(&[&rt, &other]), None);
    });
}

/// A runtime dropped under a guard is current for its tasks' destructors,
/// where `block_on` still panics (and the shutdown contains it); the
/// guard's runtime is current again after the drop.
#[test]
fn a_runtime_dropped_under_a_guard_still_refuses_block_on_in_destructors() {
    with_deadline(10, || {
        struct OnDrop<F: FnMut()>(F);
        impl<F: FnMut()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }
        let a = Runtime::new().unwrap();
        let _guard = a.enter();
        let b = Runtime::new().unwrap();
        let reached = Rc::new(Cell::new((false, false)));
        let seen = reached.clone();
        // Made out here: the task is dropped unpolled, with what it owns.
        let on_drop = OnDrop(move || {
            seen.set((true, false));
            coop::block_on(async {});
            seen.set((true, true));
        });
        b.spawn(async move {
            let _on_drop = on_drop;
            std::future::pending::<()>().await
        });
        drop(b);
        assert_eq!(
            reached.get(),
            (true, false),
            "the destructor ran; block_on panicked in it"
        );
        assert_eq!(current_of(&[&a]), Some(0));
    });
}

/// Guards nest, and may be dropped in any order: the newest guard still
/// alive decides, and when none is left no runtime is current.
#[test]
fn nested_guards_dropped_in_any_order_leave_the_newest_alive_current() {
    with_deadline(10, || {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        let rts = [&a, &b];
        assert_eq!(current_of(&rts), None);
        let ga = a.enter();
        let gb = b.enter();
        assert_eq!(current_of(&rts), Some(1));
        // In order.
        drop(gb);
        assert_eq!(current_of(&rts), Some(0));
        // Out of order: the older guard first.
        let gb = b.enter();
        drop(ga);
        assert_eq!(current_of(&rts), Some(1), "b's guard still lives");
        drop(gb);
        assert_eq!(current_of(&rts), None, "no guard left");
        // The same runtime twice.
        let g1 = a.enter();
        let g2 = a.enter();
        drop(g1);
        assert_eq!(current_of(&rts), Some(0));
        drop(g2);
        assert_eq!(current_of(&rts), None);
    });
}

/// A guard moved into the `block_on` future and dropped there, under the
/// loop's own entry: the loop keeps its runtime current, and after it
/// returns nothing is (the guard is gone).
#[test]
fn a_guard_dropped_inside_block_on_leaves_the_loop_current_and_nothing_after() {
    with_deadline(10, || {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        let guard = a.enter();
        b.block_on(async {
            drop(guard);
            assert_eq!(current_of(&[&a, &b]), Some(1), "b's loop runs");
            // Its tasks still run and wake on the local road.
            coop::spawn(async { coop::yield_now().await })
                .await
                .unwrap();
        });
        assert_eq!(current_of(&[&a, &b]), None);
    });
}

/// A socket made under the guard and waited on with no loop running (here,
/// by another executor) is an error, not a hang: no loop would see its
/// event.
#[test]
fn a_socket_awaited_under_the_guard_with_no_loop_is_an_error_not_a_hang() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let _guard = rt.enter();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = futures::executor::block_on(listener.accept()).unwrap_err();
        assert!(err.to_string().contains("not running"), "{err}");
        // Inside the runtime's own loop the same listener works.
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
        rt.block_on(async { listener.accept().await.unwrap() });
        drop(client.join().unwrap());
    });
}

/// A sleep polled under the guard with no loop running panics (no loop
/// would fire its timer), and says why; it does not hang.
#[test]
fn a_sleep_polled_under_the_guard_with_no_loop_panics_naming_enter() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        let _guard = rt.enter();
        let sleep = coop::time::sleep(Duration::from_millis(10));
        let panicked = catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(sleep)))
            .expect_err("no loop to fire it");
        let text = message(panicked);
        assert!(text.contains("only entered with Runtime::enter"), "{text}");
        assert_eq!(rt.metrics().timers_pending, 0);
    });
}

/// True if no runtime is current: a socket, a spawn and
/// `Handle::current` all behave as outside every runtime.
fn nothing_current() -> bool {
    let socket_refused = match UdpSocket::bind("127.0.0.1:0") {
        Ok(_) => false,
        Err(e) => e
            .to_string()
            .contains("must be created inside a coop runtime"),
    };
    let spawn_refused = catch_unwind(|| drop(coop::spawn(async {}))).is_err();
    let handle_refused = catch_unwind(coop::runtime::Handle::current).is_err();
    socket_refused && spawn_refused && handle_refused
}

/// A guard that is `mem::forget`-ed never removes its entry, but the
/// runtime's drop takes every entry of that runtime with it: the dead
/// runtime is not left current (a spawn there would never run, nor be
/// cancelled), and the entries of other runtimes, above or below it, stay.
#[test]
fn a_forgotten_guard_leaves_nothing_current_after_its_runtime_is_dropped() {
    with_deadline(10, || {
        // Alone.
        let rt = Runtime::new().unwrap();
        std::mem::forget(rt.enter());
        std::mem::forget(rt.enter());
        drop(rt);
        assert!(nothing_current(), "the dropped runtime is not current");

        // Between live guards of another runtime: that one stays current.
        let a = Runtime::new().unwrap();
        let ga = a.enter();
        let b = Runtime::new().unwrap();
        std::mem::forget(b.enter());
        let ga2 = a.enter();
        std::mem::forget(b.enter());
        drop(b);
        assert_eq!(current_of(&[&a]), Some(0));
        drop(ga2);
        assert_eq!(current_of(&[&a]), Some(0));
        drop(ga);
        assert!(nothing_current(), "no guard left");

        // Dropped inside another runtime's loop, above its entry: the
        // running loop stays current, and after it nothing is.
        let c = Runtime::new().unwrap();
        std::mem::forget(c.enter());
        let a = &a;
        a.block_on(async move {
            drop(c);
            assert_eq!(current_of(&[a]), Some(0), "a's loop runs");
            coop::spawn(async { coop::yield_now().await })
                .await
                .unwrap();
        });
        assert!(nothing_current(), "nothing after the loop");
    });
}
