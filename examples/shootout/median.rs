//! Several runs of one cell, summed up as one: the median of each number.
//!
//! Why more than one run: the same server at 100 connections can measure
//! 5.3 µs of CPU per echo in one run and 7.0 µs a minute later. The shift
//! comes from the machine (a VM's two CPUs), lasts for several runs, and
//! moves every server alike. A single run per server makes a 5% comparison
//! a coin toss; the median of three is steadier, and the range of CPU per
//! echo shows how much the runs disagreed. Each run's CPU and rate are also
//! kept in order (`cpu_runs`, `rps_runs`), so that the targets can compare
//! two servers run by run, each pair measured a few seconds apart, where
//! the turns stage of `turns.rs` (slices a quarter of a second apart) did
//! not measure the cell (`--no-turns`, or it failed there).
//!
//! Errors are not averaged away: the summary has the most errors and the
//! fewest connections served of any run, and a crash in any run is reported.

use crate::cell::{Measurement, Outcome};
use crate::loadgen::CpuClock;

/// Sums up the runs of one cell. Runs that produced no numbers are left out,
/// unless no run did.
pub fn combine(outcomes: Vec<Outcome>) -> Outcome {
    let mut measured: Vec<Measurement> = Vec::new();
    let mut failures = Vec::new();
    // Every run's CPU and rate, failed runs included (as `None`), so that
    // run `i` of one server still lines up with run `i` of another.
    let (mut cpu_runs, mut rps_runs, mut msgs_runs) = (Vec::new(), Vec::new(), Vec::new());
    for outcome in outcomes {
        match outcome {
            Outcome::Measured(m) => {
                cpu_runs.extend_from_slice(&m.cpu_runs);
                rps_runs.extend_from_slice(&m.rps_runs);
                msgs_runs.extend_from_slice(&m.msgs_runs);
                measured.push(*m);
            }
            Outcome::Failed(why) => {
                cpu_runs.push(None);
                rps_runs.push(None);
                msgs_runs.push(None);
                failures.push(why);
            }
        }
    }
    if measured.len() <= 1 {
        return match measured.pop() {
            Some(mut m) => {
                (m.cpu_runs, m.rps_runs, m.msgs_runs) = (cpu_runs, rps_runs, msgs_runs);
                m.failed_runs = failures;
                Outcome::Measured(Box::new(m))
            }
            None => Outcome::Failed(
                failures
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "not run".into()),
            ),
        };
    }
    let ms = &measured;
    let f = |get: fn(&Measurement) -> f64| median(ms.iter().map(get).collect());
    let opt = |get: fn(&Measurement) -> Option<f64>| {
        let values: Vec<f64> = ms.iter().filter_map(get).collect();
        (!values.is_empty()).then(|| median(values))
    };
    // Rate and round trips over the runs that served echoes: an empty
    // histogram's percentiles read 0, which is no round trip, and a rate
    // of 0 is said in the errors and notes, not averaged in (as the
    // throughput check does). Zeros if no run served any.
    let served: Vec<&Measurement> = ms.iter().filter(|m| m.load.msgs > 0).collect();
    let load = |get: fn(&Measurement) -> f64| median(served.iter().map(|m| get(m)).collect());
    let mut sum = ms[0].clone();
    sum.load.msgs = f(|m| m.load.msgs as f64) as u64;
    sum.load.rps = load(|m| m.load.rps);
    sum.load.p50_us = load(|m| m.load.p50_us as f64) as u64;
    sum.load.p99_us = load(|m| m.load.p99_us as f64) as u64;
    sum.load.p999_us = load(|m| m.load.p999_us as f64) as u64;
    let worst = ms
        .iter()
        .max_by_key(|m| m.load.errors)
        .expect("two or more");
    sum.load.errors = worst.load.errors;
    sum.load.error_kinds = worst.load.error_kinds.clone();
    sum.load.connected = ms.iter().map(|m| m.load.connected).min().unwrap_or(0);
    sum.cpu_us_per_echo = opt(|m| m.cpu_us_per_echo);
    sum.server_cpu_pct = opt(|m| m.server_cpu_pct);
    sum.loadgen_cpu_pct = opt(|m| m.loadgen_cpu_pct);
    sum.other_cpu_pct = opt(|m| m.other_cpu_pct);
    // Ticks if any run fell back on them: the coarser count is the one to
    // report.
    sum.cpu_clock = ms
        .iter()
        .map(|m| m.cpu_clock)
        .find(|&c| c == CpuClock::Ticks)
        .unwrap_or_default();
    sum.idle_rss_kib = f(|m| m.idle_rss_kib as f64) as u64;
    sum.idle_threads = f(|m| m.idle_threads as f64) as u64;
    sum.peak_rss_kib = f(|m| m.peak_rss_kib as f64) as u64;
    sum.peak_threads = f(|m| m.peak_threads as f64) as u64;
    sum.kernel_stack_rise_kib = f(|m| m.kernel_stack_rise_kib as f64) as i64;
    sum.crashed = ms.iter().find_map(|m| m.crashed.clone());
    sum.log_lines = ms.iter().map(|m| m.log_lines).max().unwrap_or(0);
    sum.first_log_line = ms.iter().find_map(|m| m.first_log_line.clone());
    sum.runs = ms.len();
    (sum.cpu_runs, sum.rps_runs, sum.msgs_runs) = (cpu_runs, rps_runs, msgs_runs);
    sum.failed_runs = failures;
    Outcome::Measured(Box::new(sum))
}

/// The middle value (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The lowest and the highest value (`(MAX, MIN)` for none).
pub fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// How sure [`median_interval`] is: the interval it gives holds the true
/// median with at least this probability.
pub const CONFIDENCE: f64 = 0.95;

/// An interval around the median of `values` that holds the true median
/// (of what `values` are samples of) with probability at least
/// [`CONFIDENCE`], and that probability; `None` for fewer than 6 values,
/// where even the whole range is less sure than that.
///
/// It asks nothing of the values' distribution, which here has long tails
/// (a round where the machine stalled one server and not the other): the
/// number of values below the true median is a coin-flip count,
/// Binomial(n, ½), so the `k`-th lowest and the `k`-th highest value hold
/// it between them unless fewer than `k` fall on one side of it, which
/// happens with probability `2 P(X < k)`. The interval is the narrowest such pair that
/// is sure enough. With 8 values it is the whole range (99.2%); with 32,
/// the 10th to the 23rd value (98.0%).
pub fn median_interval(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // `below` = P(X <= k) for X ~ Binomial(n, 1/2), built up one term at a
    // time; `ln_term` = ln P(X = k), in logarithms because 0.5^n is 0 in
    // floating point beyond n = 1,074 (and a sum that stays 0 never ends
    // the loop). `k` stops short of the middle in any case.
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut below = ln_term.exp();
    if 1.0 - 2.0 * below < CONFIDENCE {
        return None;
    }
    let mut k = 0;
    while k + 1 < n / 2 {
        let ln_next = ln_term + ((n - k) as f64 / (k + 1) as f64).ln();
        let next_term = ln_next.exp();
        if 1.0 - 2.0 * (below + next_term) < CONFIDENCE {
            break;
        }
        (ln_term, below, k) = (ln_next, below + next_term, k + 1);
    }
    Some((sorted[k], sorted[n - 1 - k], 1.0 - 2.0 * below))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_takes_the_order_statistics_the_coin_flips_allow() {
        // Too few values: even the whole range of five is only 93.75% sure.
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // Six to eight values: the whole range, whatever the order given.
        let (lo, hi, sure) = median_interval(&[5.0, 1.0, 4.0, 2.0, 3.0, 6.0]).unwrap();
        assert_eq!((lo, hi), (1.0, 6.0));
        assert!((sure - (1.0 - 2.0 / 64.0)).abs() < 1e-12);
        let eight: Vec<f64> = (1..=8).map(f64::from).collect();
        let (lo, hi, sure) = median_interval(&eight).unwrap();
        assert_eq!((lo, hi), (1.0, 8.0));
        assert!((sure - 0.9921875).abs() < 1e-12);
        // 32 values: P(X <= 9) = 0.0100 and P(X <= 10) = 0.0251, so the
        // interval runs from the 10th lowest to the 10th highest (1-based).
        let many: Vec<f64> = (1..=32).rev().map(f64::from).collect();
        let (lo, hi, sure) = median_interval(&many).unwrap();
        assert_eq!((lo, hi), (10.0, 23.0));
        assert!((CONFIDENCE..0.99).contains(&sure), "{sure}");
        // It always holds the median.
        let m = median(many.clone());
        assert!(lo <= m && m <= hi);
    }

    /// 0.5^1075 is 0 in floating point: the interval of 1,075 values or
    /// more used to loop for ever (in a release build; a debug build
    /// overflowed). Exact binomial sums, for comparison: the 10th to the
    /// 23rd of 32 above; of 2,000 values, the 956th to the 1,045th (95.34%).
    #[test]
    fn the_median_interval_of_thousands_of_values_ends_and_is_right() {
        let values: Vec<f64> = (1..=2_000).map(f64::from).collect();
        let (lo, hi, sure) = median_interval(&values).unwrap();
        assert_eq!((lo, hi), (956.0, 1045.0));
        assert!((sure - 0.953_447).abs() < 1e-5, "{sure}");
    }

    /// Review (session 30): a run that served no echo has an empty
    /// histogram, whose percentiles read 0, and a rate of 0; both went
    /// into the medians. With two runs, one of them empty, the table
    /// showed half the other run's rate and half its round trips, though
    /// 0 µs is no round trip at all (the p99 chart already leaves such a
    /// run out) and the throughput check already takes the median rate of
    /// the runs that served echoes.
    #[test]
    fn a_run_that_served_nothing_does_not_halve_the_rate_and_latencies() {
        let run = |msgs: u64, rps: f64, p: u64| {
            let mut m = Measurement {
                runs: 1,
                msgs_runs: vec![Some(msgs)],
                rps_runs: vec![Some(rps).filter(|_| msgs > 0)],
                cpu_runs: vec![None],
                ..Measurement::default()
            };
            m.load.msgs = msgs;
            m.load.rps = rps;
            (m.load.p50_us, m.load.p99_us, m.load.p999_us) = (p, 2 * p, 3 * p);
            Outcome::Measured(Box::new(m))
        };
        let Outcome::Measured(m) = combine(vec![run(150_000, 100_000.0, 700), run(0, 0.0, 0)])
        else {
            panic!("measured")
        };
        assert_eq!(m.load.rps, 100_000.0);
        assert_eq!(
            (m.load.p50_us, m.load.p99_us, m.load.p999_us),
            (700, 1400, 2100)
        );
        // Every run empty: zeros, as before.
        let Outcome::Measured(m) = combine(vec![run(0, 0.0, 0), run(0, 0.0, 0)]) else {
            panic!("measured")
        };
        assert_eq!((m.load.rps, m.load.p99_us), (0.0, 0));
    }

    /// Review: a run that produced no numbers (the server crashed at
    /// startup, loadgen was killed) vanished from the summary: the cell
    /// read "0" errors, as if every run had gone well. The module's own
    /// promise: "a crash in any run is reported".
    #[test]
    fn a_run_that_failed_is_not_summed_away() {
        use crate::report::Row;
        use crate::servers::SERVERS;
        let ok = || {
            let mut m = Measurement {
                cpu_us_per_echo: Some(5.0),
                cpu_runs: vec![Some(5.0)],
                rps_runs: vec![Some(1e5)],
                runs: 1,
                ..Measurement::default()
            };
            m.load.msgs = 1000;
            m.load.connected = 100;
            Outcome::Measured(Box::new(m))
        };
        let failed = || Outcome::Failed("crashed at startup (signal: 11 (SIGSEGV))".into());
        for runs in [vec![ok(), failed(), ok()], vec![failed(), ok(), failed()]] {
            let row = Row {
                server: &SERVERS[0],
                conns: 100,
                size: 64,
                outcome: combine(runs),
            };
            let cell = row.errors_cell();
            assert!(cell.contains("crashed"), "errors column: {cell:?}");
        }
    }
}
