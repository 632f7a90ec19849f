//! Seeing the loop: slow-poll warnings, wake reasons, the trace.

mod util;

use std::sync::Mutex;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::Runtime;
use coop::net::TcpStream;
use coop::trace::{Event, WakeReason};
use util::{StallMeter, listener, serve_echo, with_deadline};

/// A `log` logger that keeps warnings, so tests can read them.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn warnings_mentioning(needle: &str) -> Vec<String> {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(needle))
        .cloned()
        .collect()
}

#[test]
fn a_slow_poll_is_reported_with_name_location_and_duration() {
    with_deadline(20, || {
        warnings_mentioning(""); // install the logger
        let rt = Runtime::builder()
            .slow_poll_threshold(Duration::from_millis(50))
            .build()
            .unwrap();
        let lost = StallMeter::start();
        rt.block_on(async {
            coop::task::Builder::new()
                .name("cruncher-7")
                .spawn(async {
                    std::thread::sleep(Duration::from_millis(120)); // blocks the loop
                })
                .await
                .unwrap();
        });
        // The `block_on` future's polls are timed too, and take
        // microseconds, unless the loop thread is kept from running in one
        // for 50 ms (a loaded machine). Only then may more than one be slow.
        let lost = lost.stalled();
        if lost < Duration::from_millis(40) {
            assert_eq!(rt.metrics().slow_polls, 1, "lost {lost:?}");
        } else {
            assert!(rt.metrics().slow_polls >= 1, "lost {lost:?}");
        }
        let found = warnings_mentioning("cruncher-7");
        assert_eq!(found.len(), 1, "{found:?}");
        let w = &found[0];
        assert!(
            w.contains("tests/observe.rs"),
            "spawn location missing: {w}"
        );
        // The poll slept 120 ms; a loaded machine may make it longer, never
        // shorter.
        let ms: f64 = w
            .split("held the loop for ")
            .nth(1)
            .and_then(|rest| rest.split(" ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("duration missing: {w}"));
        assert!(ms >= 120.0, "{w}");
    });
}

#[test]
fn a_task_that_yields_between_slices_is_not_reported() {
    with_deadline(20, || {
        warnings_mentioning("");
        let rt = Runtime::builder()
            .slow_poll_threshold(Duration::from_millis(250))
            .build()
            .unwrap();
        let lost = StallMeter::start();
        rt.block_on(async {
            coop::task::Builder::new()
                .name("polite-worker")
                .spawn(async {
                    // 280 ms of blocking, more than the threshold, in 20 ms
                    // slices with a yield between them: no single poll is slow,
                    // even if the machine stalls one by 200 ms.
                    for _ in 0..14 {
                        std::thread::sleep(Duration::from_millis(20));
                        coop::yield_now().await;
                    }
                })
                .await
                .unwrap();
        });
        // A stall of the whole process, or of the loop thread alone (kept
        // waiting for a CPU), inside one slice makes that poll slow indeed;
        // only then may one be reported.
        let stalled = lost.stalled();
        if stalled < Duration::from_millis(200) {
            assert_eq!(rt.metrics().slow_polls, 0, "stalled {stalled:?}");
            assert!(warnings_mentioning("polite-worker").is_empty());
        }
    });
}

#[test]
fn slow_poll_warnings_can_be_turned_off() {
    with_deadline(20, || {
        let rt = Runtime::builder()
            .slow_poll_warnings(false)
            .build()
            .unwrap();
        rt.block_on(async {
            coop::spawn(async { std::thread::sleep(Duration::from_millis(120)) })
                .await
                .unwrap();
        });
        assert_eq!(rt.metrics().slow_polls, 0);
    });
}

/// The number of the task named `name` in `trace`.
fn task_named(trace: &coop::trace::Trace, name: &str) -> u64 {
    trace
        .events
        .iter()
        .find_map(|e| match e {
            Event::Spawn {
                task,
                name: Some(n),
                ..
            } if n == name => Some(*task),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no task named {name}"))
}

/// Wake reasons recorded in `trace` for the task named `name`.
fn reasons_of(trace: &coop::trace::Trace, name: &str) -> Vec<WakeReason> {
    let task = task_named(trace, name);
    trace
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Wake {
                task: t, reason, ..
            } if *t == task => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn wake_reasons_are_right_for_io_timer_task_and_yield() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            coop::spawn(serve_echo(listener));
            let io = coop::task::Builder::new().name("io").spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(b"x").await.unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.unwrap();
            });
            let timer = coop::task::Builder::new()
                .name("timer")
                .spawn(coop::time::sleep(Duration::from_millis(20)));
            let (tx, rx) = futures::channel::oneshot::channel::<u8>();
            let receiver = coop::task::Builder::new().name("receiver").spawn(rx);
            let sender = coop::task::Builder::new().name("sender").spawn(async move {
                coop::time::sleep(Duration::from_millis(5)).await;
                tx.send(1).unwrap();
            });
            let yielder = coop::task::Builder::new()
                .name("yielder")
                .spawn(coop::yield_now());
            io.await.unwrap();
            timer.await.unwrap();
            sender.await.unwrap();
            receiver.await.unwrap().unwrap();
            yielder.await.unwrap();
            // The job waits until its task has polled once and waits for
            // it. A job that finished before that poll (a loaded machine
            // may hold the loop thread back that long) left the task
            // nothing to wait for, and no wake at all: [Spawn], once in
            // 150 runs with two CPU hogs.
            let (go, wait) = std::sync::mpsc::channel::<u8>();
            let blocking = coop::task::Builder::new()
                .name("blocking")
                .spawn_blocking(move || wait.recv().unwrap());
            coop::yield_now().await; // the task, queued first, polls now
            go.send(1).unwrap();
            blocking.await.unwrap();
        });
        let trace = rt.trace().expect("tracing is on");
        let io = reasons_of(&trace, "io");
        assert_eq!(io[0], WakeReason::Spawn);
        assert!(
            io.iter().any(|r| matches!(r, WakeReason::Io { .. })),
            "{io:?}"
        );
        assert_eq!(
            reasons_of(&trace, "timer"),
            vec![WakeReason::Spawn, WakeReason::Timer]
        );
        let sender = task_named(&trace, "sender");
        assert_eq!(
            reasons_of(&trace, "receiver"),
            vec![WakeReason::Spawn, WakeReason::Task { by: sender }]
        );
        assert_eq!(
            reasons_of(&trace, "yielder"),
            vec![WakeReason::Spawn, WakeReason::Yield]
        );
        assert_eq!(
            reasons_of(&trace, "blocking"),
            vec![WakeReason::Spawn, WakeReason::Remote]
        );
        let m = rt.metrics();
        assert!(m.wakes.io >= 1 && m.wakes.timer >= 2 && m.wakes.task >= 1);
        assert!(m.wakes.yields >= 1 && m.wakes.remote >= 1 && m.wakes.spawn >= 7);
        assert!(m.loop_turns > 3 && m.time_parked > Duration::ZERO);
    });
}

/// A task that wakes itself in the poll that ends it (here by dropping the
/// sender its own receiver waits on), or whose destructor wakes it as it is
/// cancelled, has not yielded: there is no "again" to give the network a
/// turn before. Such a wake used to be counted, traced and queued as a
/// yield, and cost the loop an extra look at the network.
#[test]
fn a_task_that_wakes_itself_as_it_ends_has_not_yielded() {
    with_deadline(10, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            // The receiver is polled once, so it holds this task's waker;
            // the sender dropped after that wakes it.
            let holds_its_own_waker = || async {
                let (tx, mut rx) = futures::channel::oneshot::channel::<()>();
                assert!(futures::poll!(&mut rx).is_pending());
                (tx, rx)
            };
            let finishing = coop::task::Builder::new()
                .name("finishing")
                .spawn(async move {
                    let (tx, _rx) = holds_its_own_waker().await;
                    drop(tx); // wakes this task, which then returns
                });
            let cancelled = coop::task::Builder::new()
                .name("cancelled")
                .spawn(async move {
                    let _ends = holds_its_own_waker().await;
                    std::future::pending::<()>().await; // until aborted
                });
            finishing.await.unwrap();
            coop::yield_now().await; // "cancelled" parks
            cancelled.abort(); // dropping its sender wakes it
            assert!(cancelled.await.unwrap_err().is_cancelled());
        });
        let trace = rt.trace().expect("tracing is on");
        assert_eq!(reasons_of(&trace, "finishing"), vec![WakeReason::Spawn]);
        // Spawned, then queued by the abort (the block_on future's doing).
        let cancelled = reasons_of(&trace, "cancelled");
        assert!(
            matches!(cancelled[..], [WakeReason::Spawn, WakeReason::Task { .. }]),
            "{cancelled:?}"
        );
        // The block_on future's own yield is the only one.
        assert_eq!(rt.metrics().wakes.yields, 1);
    });
}

/// The same wake made later, by the output of a detached task: the loop
/// drops it after the poll, as it retires the task. The task is gone, and
/// its wake of itself must not be left to the next task polled, here the
/// `block_on` future, as a yield of that task's own (a spurious poll,
/// counted as a yield).
#[test]
fn a_detached_task_whose_output_wakes_it_as_it_drops_makes_no_other_task_yield() {
    with_deadline(10, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            drop(coop::spawn(async {
                let (tx, mut rx) = futures::channel::oneshot::channel::<()>();
                assert!(futures::poll!(&mut rx).is_pending()); // holds our waker
                (tx, rx) // dropping the sender wakes this task
            }));
            // Pending while the task runs and is retired, and once more.
            coop::time::sleep(Duration::from_millis(1)).await;
            coop::time::sleep(Duration::from_millis(1)).await;
        });
        assert_eq!(rt.metrics().wakes.yields, 0, "a yield nobody made");
    });
}

/// `Trace::events` is "ordered by start time", as its field says, though
/// the recorder writes a poll's span when the poll ends (after the wakes
/// made during it) and a blocking thread's jobs into a list of their own.
#[test]
fn a_trace_s_events_are_ordered_by_start_time() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            let a = coop::spawn(async {
                for _ in 0..3 {
                    coop::time::sleep(Duration::from_millis(2)).await;
                    coop::yield_now().await; // a wake during its own poll
                }
            });
            let b = coop::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)));
            a.await.unwrap();
            b.await.unwrap();
            coop::time::sleep(Duration::from_millis(2)).await; // after the job
        });
        let events = rt.trace().unwrap().events;
        assert!(events.iter().any(|e| matches!(e, Event::Blocking { .. })));
        let starts: Vec<u64> = events.iter().map(Event::start_us).collect();
        assert!(
            starts.is_sorted(),
            "events out of start order: {:?}",
            events
                .windows(2)
                .find(|w| w[0].start_us() > w[1].start_us())
        );
    });
}

#[test]
fn the_trace_json_parses_and_its_events_nest_and_order() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            let a = coop::task::Builder::new()
                .name("a \"quoted\" name")
                .spawn(async {
                    for _ in 0..3 {
                        coop::time::sleep(Duration::from_millis(2)).await;
                        coop::yield_now().await; // a wake during its own poll
                    }
                });
            let b = coop::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)));
            a.await.unwrap();
            b.await.unwrap();
        });
        let trace = rt.trace().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&trace.to_chrome_json()).expect("valid JSON");
        let events = json["traceEvents"].as_array().unwrap();
        // Lane names, including one with quotes, survive escaping.
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "M" && e["args"]["name"] == "a \"quoted\" name")
        );
        let spans: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert!(spans.iter().any(|e| e["name"] == "poll"));
        assert!(spans.iter().any(|e| e["name"] == "waiting in mio::Poll"));
        // The blocking job names the task that awaited it, `b`, by its name.
        let waiter = task_named(&trace, "spawn_blocking");
        let job = "job of spawn_blocking";
        let ran: Vec<_> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Blocking { task, .. } => Some(*task),
                _ => None,
            })
            .collect();
        assert_eq!(ran, [waiter]);
        assert!(spans.iter().any(|e| e["name"] == job));
        // Polls and waits happen on the one loop thread: they never overlap.
        let mut loop_spans: Vec<(u64, u64)> = spans
            .iter()
            .filter(|e| e["name"] != job)
            .map(|e| {
                let ts = e["ts"].as_u64().unwrap();
                (ts, ts + e["dur"].as_u64().unwrap())
            })
            .collect();
        loop_spans.sort();
        for w in loop_spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "loop spans overlap: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
        // Nor do the spans of any one lane, the blocking thread's included
        // (Perfetto would draw one nested in the other): a lane is one
        // thread, busy or waiting, not both.
        let mut lanes: std::collections::BTreeMap<(u64, u64), Vec<(u64, u64)>> = Default::default();
        for e in &spans {
            let ts = e["ts"].as_u64().unwrap();
            let lane = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            let span = (ts, ts + e["dur"].as_u64().unwrap());
            lanes.entry(lane).or_default().push(span);
        }
        assert!(lanes.contains_key(&(1, 1)), "the loop's lane of waits");
        for (lane, spans) in &mut lanes {
            spans.sort();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "lane {lane:?}: {:?} and {:?}", w[0], w[1]);
            }
        }
        // Each task (the `block_on` future, `a`, and `b`'s waiter; all of
        // them finished): its spawn first, every poll after a wake that
        // queued it since its previous poll, and one finish, last, after
        // its last poll. (The events are in order of their start, so a
        // poll sorts where it began, and a wake made during it, which can
        // only be the task's own, a yield, sorts after it and counts for
        // the next poll.)
        let spawned: Vec<u64> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Spawn { task, .. } => Some(*task),
                _ => None,
            })
            .collect();
        assert_eq!(spawned.len(), 3, "block_on, a and b's waiter: {spawned:?}");
        for task in spawned {
            let mine: Vec<&Event> = trace
                .events
                .iter()
                .filter(|x| event_task(x) == Some(task))
                .collect();
            assert!(matches!(mine[0], Event::Spawn { .. }), "{mine:?}");
            let (mut woken, mut last_poll_end) = (false, None);
            for e in &mine {
                match e {
                    Event::Wake { .. } => woken = true,
                    Event::Poll { end_us, .. } => {
                        last_poll_end = Some(*end_us);
                        assert!(
                            woken,
                            "task {task}: a poll with no wake since the last: {mine:?}"
                        );
                        woken = false;
                    }
                    _ => {}
                }
            }
            let last_poll_end =
                last_poll_end.unwrap_or_else(|| panic!("task {task} never polled: {mine:?}"));
            let finishes = mine
                .iter()
                .filter(|e| matches!(e, Event::Finish { .. }))
                .count();
            assert_eq!(finishes, 1, "task {task}: {mine:?}");
            let Some(Event::Finish { at_us, .. }) = mine.last() else {
                panic!("task {task}: its finish is not its last event: {mine:?}");
            };
            assert!(*at_us >= last_poll_end, "task {task}: {mine:?}");
        }
        let svg = trace.to_svg("test");
        assert!(
            svg.starts_with("<svg")
                && svg.contains("a &quot;quoted&quot; name")
                && svg.trim_end().ends_with("</svg>")
        );
    });
}

fn event_task(e: &Event) -> Option<u64> {
    match e {
        Event::Spawn { task, .. }
        | Event::Poll { task, .. }
        | Event::Wake { task, .. }
        | Event::Finish { task, .. } => Some(*task),
        _ => None,
    }
}

#[test]
fn tracing_is_off_by_default() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async { coop::spawn(async {}).await.unwrap() });
        assert!(rt.trace().is_none());
    });
}

#[test]
fn time_parked_counts_the_waits_only_when_park_timing_is_on() {
    with_deadline(20, || {
        let nap = Duration::from_millis(30);
        let timed = Runtime::builder().park_timing(true).build().unwrap();
        let lost = StallMeter::start();
        let start = std::time::Instant::now();
        timed.block_on(coop::time::sleep(nap));
        let (took, lost) = (start.elapsed(), lost.stalled());
        // The loop slept in mio::Poll until the timer's tick came due: most
        // of the nap, less any time the loop thread was kept from running
        // before it began to wait (the nap's deadline was already set).
        let parked = timed.metrics().time_parked;
        assert!(
            parked + lost >= Duration::from_millis(20),
            "parked {parked:?}, lost {lost:?}"
        );
        assert!(parked <= took, "parked {parked:?} of {took:?}");

        let untimed = Runtime::new().unwrap();
        untimed.block_on(coop::time::sleep(nap));
        assert_eq!(untimed.metrics().time_parked, Duration::ZERO);
    });
}

/// Blocking threads are numbered without bound (an idle thread exits and
/// the next gets a new number), and task `n`'s lane is thread `1000 + n`:
/// blocking thread 991 once landed on task 1's lane, named twice and
/// drawn among that task's polls.
#[test]
fn blocking_thread_lanes_never_share_a_task_s_lane() {
    use coop::trace::Trace;
    let trace = Trace {
        events: vec![
            Event::Spawn {
                task: 1,
                name: Some("block_on".into()),
                location: "here".into(),
                at_us: 0,
            },
            Event::Blocking {
                thread: 991,
                task: 1,
                start_us: 1,
                end_us: 2,
            },
        ],
    };
    let json: serde_json::Value = serde_json::from_str(&trace.to_chrome_json()).unwrap();
    let mut lanes = std::collections::HashMap::new();
    for e in json["traceEvents"].as_array().unwrap() {
        if e["ph"] == "M" {
            let lane = (e["pid"].as_u64(), e["tid"].as_u64());
            let name = e["args"]["name"].clone();
            if let Some(other) = lanes.insert(lane, name.clone()) {
                panic!("lane {lane:?} is named both {other} and {name}");
            }
        }
    }
    assert_eq!(lanes.len(), 3, "the loop, the task, the thread: {lanes:?}");
}

/// The `block_on` future is a task in the trace, so it finishes there too:
/// it used to be drawn alive to the end of the trace, and a second
/// `block_on` showed two main futures alive at once.
#[test]
fn a_block_on_future_finishes_in_the_trace_when_it_returns() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {});
        std::thread::sleep(Duration::from_millis(20));
        rt.block_on(coop::time::sleep(Duration::from_millis(20)));
        let trace = rt.trace().unwrap();
        let mains: Vec<u64> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Spawn { task, name, .. } if name.as_deref() == Some("block_on") => {
                    Some(*task)
                }
                _ => None,
            })
            .collect();
        assert_eq!(mains.len(), 2);
        for main in &mains {
            let finishes = trace
                .events
                .iter()
                .filter(|e| matches!(e, Event::Finish { task, .. } if task == main))
                .count();
            assert_eq!(finishes, 1, "block_on future {main}");
        }
        // The first ended before the second began (20 ms apart): the diagram
        // must not draw both alive at once.
        let second_spawn = trace
            .events
            .iter()
            .find_map(|e| match e {
                Event::Spawn { task, at_us, .. } if *task == mains[1] => Some(*at_us),
                _ => None,
            })
            .unwrap();
        let diagram = trace.to_diagram();
        let first = diagram
            .lanes
            .iter()
            .find(|l| l.label == "block_on")
            .unwrap();
        let (_, alive_until) = first.alive.unwrap();
        assert!(
            alive_until <= second_spawn,
            "the second block_on began at {second_spawn} µs, but the first is drawn alive until {alive_until} µs"
        );
    });
}

/// An aborted task that never ran is dropped, not polled: `Metrics::polls`
/// says so, and so must the trace (which drew the drop as a poll).
#[test]
fn a_task_aborted_before_its_first_poll_has_no_poll_in_the_trace() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        rt.block_on(async {
            let handle = coop::task::Builder::new().name("never").spawn(async {});
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
        assert_eq!(rt.metrics().polls, 0);
        let trace = rt.trace().unwrap();
        let never = task_named(&trace, "never");
        let polls: Vec<_> = trace
            .events
            .iter()
            .filter(|e| matches!(e, Event::Poll { task, .. } if *task == never))
            .collect();
        assert!(
            polls.is_empty(),
            "a task never polled has polls in the trace: {polls:?}"
        );
        assert!(
            trace
                .events
                .iter()
                .any(|e| matches!(e, Event::Finish { task, .. } if *task == never)),
            "it still finishes"
        );
    });
}

/// A `block_on` future's panic unwinds out of its poll (a spawned task's is
/// caught inside), and that poll was left out: the trace had the future
/// spawned and finished but its last poll, the one that held the loop,
/// missing, and the slow-poll check never saw it. (Found in review,
/// session 31.)
#[test]
fn a_block_on_future_that_panics_still_has_its_last_poll_traced_and_timed() {
    with_deadline(20, || {
        let rt = Runtime::builder()
            .trace(true)
            .slow_poll_threshold(Duration::from_millis(5))
            .build()
            .unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                std::thread::sleep(Duration::from_millis(20)); // holds the loop
                panic!("the main future gives up");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(rt.metrics().slow_polls, 1, "the panicking poll was slow");
        let trace = rt.trace().unwrap();
        let main = task_named(&trace, "block_on");
        let polls: Vec<(u64, u64)> = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Poll {
                    task,
                    start_us,
                    end_us,
                } if *task == main => Some((*start_us, *end_us)),
                _ => None,
            })
            .collect();
        assert_eq!(polls.len(), 1, "its one poll: {:?}", trace.events);
        let (start, end) = polls[0];
        assert!(
            end - start >= 20_000,
            "the poll held the loop 20 ms: {polls:?}"
        );
        let finish = trace
            .events
            .iter()
            .find_map(|e| match e {
                Event::Finish { task, at_us } if *task == main => Some(*at_us),
                _ => None,
            })
            .expect("it finishes");
        assert!(
            finish >= end,
            "finished at {finish}, before its poll ended at {end}"
        );
    });
}

/// A waker that takes `SLOW_WAKE` to wake: it notes when it was called,
/// sleeps, then wakes `inner`. Through it, the reactor's dispatch of an
/// event (which calls it) takes measurable time.
struct SlowWaker {
    inner: std::task::Waker,
    called: Mutex<Option<std::time::Instant>>,
}

const SLOW_WAKE: Duration = Duration::from_millis(100);

impl std::task::Wake for SlowWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.called
            .lock()
            .unwrap()
            .get_or_insert_with(std::time::Instant::now);
        std::thread::sleep(SLOW_WAKE);
        self.inner.wake_by_ref();
    }
}

/// Reads one byte from `stream`, waiting through a [`SlowWaker`] (a
/// waker not the task's own, which the reactor stores and calls, rather
/// than queueing the task by id). Returns when the slow waker was called.
async fn read_through_a_slow_waker(stream: &mut TcpStream) -> std::time::Instant {
    use futures::io::AsyncRead;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let mut slow: Option<std::sync::Arc<SlowWaker>> = None;
    std::future::poll_fn(|cx| {
        let slow = slow.get_or_insert_with(|| {
            std::sync::Arc::new(SlowWaker {
                inner: cx.waker().clone(),
                called: Mutex::new(None),
            })
        });
        let waker = Waker::from(slow.clone());
        let mut byte = [0u8; 1];
        match Pin::new(&mut *stream).poll_read(&mut Context::from_waker(&waker), &mut byte) {
            Poll::Ready(read) => {
                assert_eq!(read.unwrap(), 1);
                let called = *slow.called.lock().unwrap();
                Poll::Ready(called.expect("the read waited, through the slow waker"))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Runs `rt` until a byte, sent 20 ms after connecting, arrives through
/// [`read_through_a_slow_waker`]. Returns when the run began and when the
/// slow waker was called.
fn wait_for_a_byte_through_a_slow_waker(rt: &Runtime) -> (std::time::Instant, std::time::Instant) {
    use std::io::Write;
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peer.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let (mut stream, _) = peer.accept().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        stream.write_all(b"x").unwrap();
        stream // kept open until joined
    });
    let began = std::time::Instant::now();
    let called = rt.block_on(async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        read_through_a_slow_waker(&mut stream).await
    });
    drop(sender.join().unwrap());
    (began, called)
}

/// `time_parked` is time asleep in `mio::Poll`: it ends when the wait
/// returns, not after the reactor has dispatched the batch of events. A
/// waker that takes 100 ms to wake is dispatch, not sleep. Every timed
/// wait here began after `began` and (the last one) ended before the
/// slow waker was called, so together they cannot exceed that span; with
/// the dispatch counted they took the slow waker's 100 ms more.
#[test]
fn time_parked_ends_when_the_wait_returns_not_after_the_wakes() {
    with_deadline(20, || {
        let rt = Runtime::builder().park_timing(true).build().unwrap();
        let (began, called) = wait_for_a_byte_through_a_slow_waker(&rt);
        let parked = rt.metrics().time_parked;
        assert!(parked > Duration::ZERO);
        assert!(
            parked <= called - began,
            "parked {parked:?}, but the wake (which then slept {SLOW_WAKE:?}) was called {:?} after the start",
            called - began
        );
    });
}

/// The trace draws the same: the wait that the byte's arrival ended
/// (the last `Park`) ends before its batch's wakes, the slow waker's 100
/// ms included, and the wake it makes of the `block_on` future comes
/// after that.
#[test]
fn a_traced_wait_ends_before_its_batch_is_dispatched() {
    with_deadline(20, || {
        let rt = Runtime::builder().trace(true).build().unwrap();
        wait_for_a_byte_through_a_slow_waker(&rt);
        let trace = rt.trace().unwrap();
        let main = task_named(&trace, "block_on");
        let woke_main = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Wake {
                    task,
                    reason: WakeReason::Io { .. },
                    at_us,
                } if *task == main => Some(*at_us),
                _ => None,
            })
            .next_back()
            .expect("the slow waker woke the block_on future");
        // The last wait that began before that wake: the one the byte ended.
        let (_, last_park_end) = trace
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Park { start_us, end_us } => Some((*start_us, *end_us)),
                _ => None,
            })
            .filter(|&(start, _)| start <= woke_main)
            .max()
            .expect("the loop waited for the byte");
        let slow = SLOW_WAKE.as_micros() as u64;
        assert!(
            last_park_end + slow <= woke_main,
            "the wait ended at {last_park_end} µs, the slow wake of the block_on future at {woke_main} µs"
        );
    });
}
