//! Chrome trace-event JSON, written by hand (the library has no JSON
//! dependency; the format is small).
//!
//! Every lane is a "thread" (`tid`) of a "process" (`pid`). Process 1 is
//! the loop: lane 1 is its waits in `mio::Poll`, lanes 1000.. are tasks.
//! Process 2 is the blocking pool: lanes 10.. are its threads, in a
//! process of their own because their numbers have no bound. Polls, waits
//! and jobs are complete events (`"ph":"X"` with `ts` and `dur` in µs);
//! wakes are instant events (`"ph":"i"`).
//! A blocking job is named for the task that awaits it, by the task's name
//! if it has one (`job of chunk 3`), as the SVG tags it.

use std::collections::HashMap;
use std::fmt::Write;

use super::{Event, Trace, WakeReason, label};

/// The lane of the loop's waits.
const LOOP_TID: u64 = 1;
/// The lane of blocking thread `n` is `BLOCKING_TID + n`, in `BLOCKING_PID`.
const BLOCKING_TID: u64 = 10;
/// The lane of task `n` is `TASK_TID + n`.
const TASK_TID: u64 = 1000;
/// Blocking threads are numbered without bound (an idle thread exits and
/// the next gets a new number), so their lanes live in a process of their
/// own, where no thread number can land on a task's lane.
const BLOCKING_PID: u64 = 2;

pub(super) fn render(trace: &Trace) -> String {
    let mut out = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    let mut first = true;
    let mut push = |out: &mut String, line: String| {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&line);
    };
    push(
        &mut out,
        lane_name(LOOP_TID, "event loop: waiting in mio::Poll"),
    );
    let mut named_threads = Vec::new();
    // Each task's lane label, for naming the blocking jobs it awaits.
    let mut labels: HashMap<u64, String> = HashMap::new();
    for event in &trace.events {
        let line = match event {
            Event::Spawn {
                task,
                name,
                location,
                at_us,
            } => {
                let lane = label(*task, name.as_deref());
                push(&mut out, lane_name(TASK_TID + task, &lane));
                labels.insert(*task, lane);
                format!(
                    "{{\"name\":\"spawn\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{at_us},\"pid\":1,\"tid\":{},\"args\":{{\"location\":{}}}}}",
                    TASK_TID + task,
                    string(location)
                )
            }
            Event::Poll {
                task,
                start_us,
                end_us,
            } => complete("poll", TASK_TID + task, *start_us, *end_us),
            Event::Wake {
                task,
                reason,
                at_us,
            } => format!(
                "{{\"name\":\"wake: {}\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{at_us},\"pid\":1,\"tid\":{},\"args\":{{{}}}}}",
                reason.name(),
                TASK_TID + task,
                reason_args(reason)
            ),
            Event::Finish { task, at_us } => format!(
                "{{\"name\":\"finish\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{at_us},\"pid\":1,\"tid\":{}}}",
                TASK_TID + task
            ),
            Event::Park { start_us, end_us } => {
                complete("waiting in mio::Poll", LOOP_TID, *start_us, *end_us)
            }
            Event::Blocking {
                thread,
                task,
                start_us,
                end_us,
            } => {
                let tid = BLOCKING_TID + *thread as u64;
                if !named_threads.contains(&tid) {
                    named_threads.push(tid);
                    push(
                        &mut out,
                        lane_name_in(BLOCKING_PID, tid, &format!("blocking thread {thread}")),
                    );
                }
                // The awaiting task was spawned before its job ran.
                let owner = labels
                    .get(task)
                    .cloned()
                    .unwrap_or_else(|| label(*task, None));
                complete_in(
                    BLOCKING_PID,
                    &format!("job of {owner}"),
                    tid,
                    *start_us,
                    *end_us,
                )
            }
        };
        push(&mut out, line);
    }
    out.push_str("\n]}\n");
    out
}

fn complete(name: &str, tid: u64, start_us: u64, end_us: u64) -> String {
    complete_in(1, name, tid, start_us, end_us)
}

fn complete_in(pid: u64, name: &str, tid: u64, start_us: u64, end_us: u64) -> String {
    format!(
        "{{\"name\":{},\"ph\":\"X\",\"ts\":{start_us},\"dur\":{},\"pid\":{pid},\"tid\":{tid}}}",
        string(name),
        end_us.saturating_sub(start_us)
    )
}

fn lane_name(tid: u64, name: &str) -> String {
    lane_name_in(1, tid, name)
}

fn lane_name_in(pid: u64, tid: u64, name: &str) -> String {
    format!(
        "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
        string(name)
    )
}

fn reason_args(reason: &WakeReason) -> String {
    match reason {
        WakeReason::Io { source } => format!("\"reason\":\"io\",\"source\":{source}"),
        WakeReason::Task { by } => format!("\"reason\":\"task\",\"by\":{by}"),
        other => format!("\"reason\":\"{}\"", other.name()),
    }
}

/// `s` as a JSON string literal.
pub(super) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character a task name may hold survives the hand-written
    /// escaping as valid JSON that reads back the same: quotes,
    /// backslashes, every control character, DEL, non-ASCII and the two
    /// line separators JavaScript once rejected. A trace with no events
    /// is valid JSON too.
    #[test]
    fn any_task_name_round_trips_through_the_json() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        let name = format!("q\"b\\s/{controls}\u{7f} é 漢 🦀 \u{2028}\u{2029}");
        let trace = Trace {
            events: vec![
                Event::Spawn {
                    task: 1,
                    name: Some(name.clone()),
                    location: "C:\\src\\main.rs:1:2".into(),
                    at_us: 0,
                },
                Event::Blocking {
                    thread: 0,
                    task: 1,
                    start_us: 1,
                    end_us: 2,
                },
            ],
        };
        let json: serde_json::Value = serde_json::from_str(&render(&trace)).unwrap();
        let events = json["traceEvents"].as_array().unwrap();
        assert!(events.iter().any(|e| e["args"]["name"] == name.as_str()));
        assert!(events.iter().any(|e| e["name"] == format!("job of {name}")));
        assert!(
            events
                .iter()
                .any(|e| e["args"]["location"] == "C:\\src\\main.rs:1:2")
        );

        let empty: serde_json::Value = serde_json::from_str(&render(&Trace::default())).unwrap();
        assert_eq!(
            empty["traceEvents"].as_array().unwrap().len(),
            1,
            "the loop's lane name"
        );
    }
}
