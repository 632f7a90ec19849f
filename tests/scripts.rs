//! The measurement scripts' own arithmetic, under `cargo test`.
//!
//! `scripts/ab.py` (the turn order, the CPU window, the median interval)
//! and `scripts/code-lines.py` (reading a callgrind profile's compressed
//! positions, the per-echo summary) carry their examples as doctests.
//! Figures in the chapters come from these scripts, so their arithmetic
//! is tested with everything else. Python 3 is on every machine this
//! project builds on; a missing `python3` fails the test and says so.

use std::process::Command;

/// Runs `python3 -m doctest -v` on `script` and checks that it passed,
/// with at least `at_least` examples run: a docstring that lost its
/// examples would otherwise pass with none.
fn doctests_pass(script: &str, at_least: usize) {
    let path = format!("{}/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .args(["-m", "doctest", "-v", &path])
        .output()
        .unwrap_or_else(|e| panic!("run python3 (needed for {script}'s doctests): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script}:\n{stdout}\n{stderr}");
    // The summary line of -v: "N passed and 0 failed."
    let passed: usize = stdout
        .lines()
        .find_map(|line| line.strip_suffix(" passed and 0 failed."))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary in {script}'s doctest output:\n{stdout}"));
    assert!(
        passed >= at_least,
        "{script}: {passed} examples ran, expected at least {at_least}"
    );
}

#[test]
fn ab_py_doctests_pass() {
    doctests_pass("scripts/ab.py", 16);
}

#[test]
fn code_lines_py_doctests_pass() {
    doctests_pass("scripts/code-lines.py", 10);
}
