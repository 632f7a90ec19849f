//! Set-up shared by the runtime benchmarks: the two runtimes under the same
//! settings, and criterion's bounded group settings.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// coop's runtime, without slow-poll warnings (benchmarks block on purpose).
pub fn coop_rt() -> coop::Runtime {
    coop::Runtime::builder()
        .slow_poll_warnings(false)
        .build()
        .expect("coop runtime")
}

/// tokio's current-thread runtime: the reference.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The bounded settings every group uses: each bench file runs in a few
/// minutes at most on a 2-core machine.
pub fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}
