//! Timer queue benchmarks: the wheel against the heap and B-tree baselines,
//! with 0, 1,000 and 1,000,000 timers already resident.
//!
//! ```text
//! cargo bench --bench timers
//! ```
//!
//! * `insert_remove`: insert one timer and remove it again, the life of a
//!   timeout that is cancelled (most of them). Resident timers stay put.
//! * `insert_expire`: insert a batch of 1,000 timers due within the next
//!   second and advance time so exactly that batch fires. Each iteration gets
//!   a freshly built resident queue from `iter_batched`, outside timing. (Not
//!   a clone: a clone's `Vec`s are exactly full, so the first insert would
//!   reallocate tens of megabytes and the bench would time that copy.) The
//!   set-up also fires one throwaway batch at tick 0, so the storage the
//!   timed batch uses has been touched, as in a queue that has been running,
//!   and the bench does not time first-touch page faults.
//!
//! Resident timers have random deadlines between 1 second and an hour, from
//! the seeded generator below, so every queue sees the same timers and none
//! of them fires during `insert_expire`.

use std::hint::black_box;
use std::time::Duration;

use coop::time::btree::BTreeQueue;
use coop::time::heap::HeapQueue;
use coop::time::queue::TimerQueue;
use coop::time::wheel::Wheel;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main,
};

/// How many timers are already present in each run.
const RESIDENT: [usize; 3] = [0, 1_000, 1_000_000];
/// Ticks in an hour: resident and inserted timers fall within it.
const HOUR: u64 = 3_600_000;
/// The batch that `insert_expire` inserts and fires.
const BATCH: usize = 1_000;
/// The batch is due within this many ticks; residents come after it.
const SECOND: u64 = 1_000;

/// splitmix64: a tiny, seeded, good-enough generator, so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A tick in `low..=high`.
    fn tick(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// A queue holding `resident` timers due between one second and an hour.
fn with_resident<Q: TimerQueue<u64> + Default>(resident: usize) -> Q {
    let mut rng = Rng(0x5EED);
    let mut queue = Q::default();
    for i in 0..resident {
        queue.insert(rng.tick(SECOND + 1, HOUR), i as u64);
    }
    queue
}

fn insert_remove_one<Q: TimerQueue<u64> + Default>(
    group: &mut BenchmarkGroup<WallTime>,
    name: &str,
    resident: usize,
) {
    let mut queue: Q = with_resident(resident);
    let mut rng = Rng(42);
    group.bench_function(BenchmarkId::new(name, resident), |b| {
        b.iter(|| {
            let key = queue.insert(rng.tick(1, HOUR), 0);
            black_box(queue.remove(key))
        })
    });
}

fn insert_expire_one<Q: TimerQueue<u64> + Default>(
    group: &mut BenchmarkGroup<WallTime>,
    name: &str,
    resident: usize,
) {
    let mut rng = Rng(7);
    group.bench_function(BenchmarkId::new(name, resident), |b| {
        b.iter_batched(
            || {
                let deadlines: Vec<u64> = (0..BATCH).map(|_| rng.tick(1, SECOND)).collect();
                let mut queue = with_resident::<Q>(resident);
                let mut expired = Vec::with_capacity(BATCH);
                // Touch the storage the batch will use, as a queue that has
                // been running has: a batch due at tick 0, fired at once
                // (`now` stays 0). Without this, the wheel's slab (64 bytes
                // a timer, 64 MiB at 1,000,000) is a fresh `mmap`
                // every iteration and the timed inserts take ~15 first-touch
                // page faults, while the heap's and B-tree's smaller blocks
                // come back from the allocator already touched.
                for i in 0..BATCH {
                    queue.insert(0, i as u64);
                }
                queue.advance(0, &mut expired);
                assert_eq!((expired.len(), queue.len()), (BATCH, resident));
                expired.clear();
                (queue, deadlines, expired)
            },
            |(mut queue, deadlines, mut expired)| {
                for (i, &deadline) in deadlines.iter().enumerate() {
                    queue.insert(deadline, i as u64);
                }
                queue.advance(SECOND, &mut expired);
                assert_eq!(expired.len(), BATCH);
                (queue, expired)
            },
            BatchSize::PerIteration,
        )
    });
}

fn insert_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_remove");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for resident in RESIDENT {
        insert_remove_one::<Wheel<u64>>(&mut group, "wheel", resident);
        insert_remove_one::<HeapQueue<u64>>(&mut group, "heap", resident);
        insert_remove_one::<BTreeQueue<u64>>(&mut group, "btree", resident);
    }
    group.finish();
}

fn insert_expire(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_expire");
    // At 1,000,000 resident each iteration's untimed set-up takes 0.1-0.5 s:
    // the minimum sample size keeps the whole file to a couple of minutes.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for resident in RESIDENT {
        insert_expire_one::<Wheel<u64>>(&mut group, "wheel", resident);
        insert_expire_one::<HeapQueue<u64>>(&mut group, "heap", resident);
        insert_expire_one::<BTreeQueue<u64>>(&mut group, "btree", resident);
    }
    group.finish();
}

criterion_group!(benches, insert_remove, insert_expire);
criterion_main!(benches);
