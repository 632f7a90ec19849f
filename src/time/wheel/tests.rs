//! Unit tests of the wheel's own behaviour; `tests/timer_model.rs` checks it
//! against a reference model on random operation sequences.

use super::level::{RANGE, TOP};
use super::*;

/// Advances `wheel` to `now` and returns the `(deadline, value)`s that fired.
fn advance<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<(u64, T)> {
    let mut expired = Vec::new();
    wheel.advance(now, &mut expired);
    expired.into_iter().map(|e| (e.deadline, e.value)).collect()
}

/// Runs `test` on a thread and fails if it takes longer than `seconds`:
/// a wheel that ticks instead of jumping would hang, not fail.
fn within(seconds: u64, test: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(seconds)) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {seconds} s")
        }
    }
}

fn home<T>(wheel: &Wheel<T>, key: TimerKey) -> Home {
    wheel.entries[key.index()].home
}

#[test]
fn worked_example_cascades_from_level_2_to_level_0() {
    let mut wheel = Wheel::new();
    let key = wheel.insert(5_000, "t");
    assert_eq!(home(&wheel, key), Home::Slot { level: 2, slot: 1 });
    assert_eq!(wheel.next_deadline(), Some(4_096));

    assert!(advance(&mut wheel, 4_096).is_empty());
    assert_eq!(home(&wheel, key), Home::Slot { level: 1, slot: 14 });
    assert_eq!(wheel.next_deadline(), Some(4_992));

    assert!(advance(&mut wheel, 4_992).is_empty());
    assert_eq!(home(&wheel, key), Home::Slot { level: 0, slot: 8 });
    assert_eq!(wheel.next_deadline(), Some(5_000));

    assert!(advance(&mut wheel, 4_999).is_empty());
    assert_eq!(advance(&mut wheel, 5_000), vec![(5_000, "t")]);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn one_long_advance_fires_exactly_once() {
    let mut wheel = Wheel::new();
    wheel.insert(5_000, ());
    assert_eq!(advance(&mut wheel, 6_000), vec![(5_000, ())]);
    assert_eq!(wheel.now(), 6_000);
}

#[test]
fn u64_max_deadline_neither_overflows_nor_fires_early() {
    within(10, u64_max_deadline);
}

fn u64_max_deadline() {
    let mut wheel = Wheel::new();
    let key = wheel.insert(u64::MAX, "end of time");
    assert_eq!(
        home(&wheel, key),
        Home::Slot {
            level: TOP as u8,
            slot: 63
        }
    );
    for now in [
        RANGE - 1,
        RANGE,
        RANGE * 1_000,
        u64::MAX / 2,
        u64::MAX - RANGE,
        u64::MAX - 1,
    ] {
        assert!(advance(&mut wheel, now).is_empty(), "fired early at {now}");
        let next = wheel.next_deadline().unwrap();
        assert!(now < next, "next_deadline {next} not after {now}");
    }
    assert_eq!(
        advance(&mut wheel, u64::MAX),
        vec![(u64::MAX, "end of time")]
    );
    // Time stops at the last tick; inserting there still works.
    wheel.insert(u64::MAX, "again");
    assert_eq!(advance(&mut wheel, u64::MAX), vec![(u64::MAX, "again")]);
}

#[test]
fn leap_over_centuries_from_the_start() {
    // Without the leap this would re-file the timer 2^28 times.
    within(10, leap_over_centuries);
}

fn leap_over_centuries() {
    let mut wheel = Wheel::new();
    wheel.insert(u64::MAX - 5, 1);
    wheel.insert(3 * RANGE + 17, 2);
    assert!(advance(&mut wheel, 3 * RANGE + 16).is_empty());
    assert_eq!(advance(&mut wheel, u64::MAX - 6), vec![(3 * RANGE + 17, 2)]);
    assert_eq!(advance(&mut wheel, u64::MAX), vec![(u64::MAX - 5, 1)]);
}

#[test]
fn idle_stretch_is_crossed_by_jumping_not_ticking() {
    // Ticking one by one through 2^40 ticks would never finish.
    within(10, idle_stretch);
}

fn idle_stretch() {
    let mut wheel = Wheel::new();
    let deadlines = [1, 64, 4_097, RANGE - 1, RANGE + 1, 1 << 40];
    for deadline in deadlines {
        wheel.insert(deadline, deadline);
    }
    let fired = advance(&mut wheel, 1 << 40);
    let mut fired: Vec<u64> = fired.into_iter().map(|(deadline, _)| deadline).collect();
    fired.sort_unstable();
    assert_eq!(fired, deadlines);
}

#[test]
fn past_deadlines_fire_on_the_next_advance_even_without_moving_time() {
    let mut wheel = Wheel::new();
    advance(&mut wheel, 100);
    wheel.insert(40, "late");
    wheel.insert(100, "now");
    assert_eq!(wheel.next_deadline(), Some(40));
    let mut fired = advance(&mut wheel, 50); // earlier than now: time stays
    fired.sort_unstable();
    assert_eq!(fired, vec![(40, "late"), (100, "now")]);
    assert_eq!(wheel.now(), 100);
}

#[test]
fn remove_frees_the_entry_at_once() {
    let mut wheel = Wheel::new();
    let keys: Vec<TimerKey> = (0..1_000)
        .map(|i| wheel.insert(i * 977 % 300_000, i))
        .collect();
    assert_eq!(wheel.entries.len(), 1_000);
    for (i, &key) in keys.iter().enumerate() {
        assert_eq!(wheel.remove(key), Some(i as u64));
        assert_eq!(wheel.entries.len(), 1_000 - i - 1);
    }
    assert!(
        wheel
            .levels
            .iter()
            .all(|level| level.next_expiration(0).is_none())
    );
    assert!(wheel.due.is_empty());
    assert_eq!(wheel.remove(keys[0]), None);
}

#[test]
fn stale_key_never_touches_the_timer_that_reused_its_slot() {
    let mut wheel = Wheel::new();
    let old = wheel.insert(10, "old");
    assert_eq!(wheel.remove(old), Some("old"));
    let new = wheel.insert(20, "new");
    assert_eq!(old.index(), new.index(), "the slab reuses the slot");
    assert_eq!(wheel.get_mut(old), None);
    assert_eq!(wheel.remove(old), None);
    *wheel.get_mut(new).unwrap() = "updated";
    assert_eq!(advance(&mut wheel, 20), vec![(20, "updated")]);
    assert_eq!(wheel.remove(new), None, "fired keys are stale");
}

#[test]
fn usable_as_a_trait_object() {
    let mut queue: Box<dyn TimerQueue<u8>> = Box::new(Wheel::new());
    let key = queue.insert(3, 7);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.remove(key), Some(7));
    assert!(queue.is_empty());
}

/// Timers due at the same tick fire in the order they were inserted, as on
/// the heap and the B-tree (whose seq breaks ties), and so their tasks wake
/// in that order on every backend. Each slot's list used to be a stack
/// (push at the front, take from the front), so the order was reversed
/// once per list a timer passed through: backwards for a timer filed at
/// level 0, forwards after one cascade, backwards after two. (Found in
/// review, session 26.)
#[test]
fn timers_due_at_one_tick_fire_in_the_order_they_were_inserted() {
    // Level 0 (no cascade), level 1 (one), level 2 (two), level 5 clamped.
    for deadline in [30, 100, 5_000, RANGE + 5] {
        let mut wheel = Wheel::new();
        for value in 0..4 {
            wheel.insert(deadline, value);
        }
        let fired = advance(&mut wheel, deadline);
        assert_eq!(fired, [0, 1, 2, 3].map(|v| (deadline, v)), "at {deadline}");
    }
    // Already due when inserted: by deadline, then in insertion order.
    let mut wheel = Wheel::new();
    advance(&mut wheel, 100);
    for (value, deadline) in [(0, 90), (1, 40), (2, 90), (3, 40)] {
        wheel.insert(deadline, value);
    }
    let fired = advance(&mut wheel, 100);
    assert_eq!(fired, [(40, 1), (40, 3), (90, 0), (90, 2)]);
}
