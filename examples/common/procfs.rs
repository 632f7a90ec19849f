//! Reading numbers out of Linux's `/proc` text files, the two ways the
//! examples need, and the unit of their CPU times (the formats are
//! documented in `proc(5)`).
//!
//! 1. **`/proc/PID/stat`** (and `/proc/self/stat`, `/proc/thread-self/stat`)
//!    is one line of fields separated by spaces, which `proc(5)` numbers from
//!    1: field 1 is the PID, field 2 the command name in parentheses, field 3
//!    the state, ..., fields 14 and 15 `utime` and `stime` (CPU time spent in
//!    user and in kernel mode, in clock ticks). The command name is whatever
//!    the program chose, spaces and parentheses included (`(my )prog)`), so
//!    splitting the whole line on spaces can miscount. Everything after the
//!    name is numbers and the one-letter state, so the *last* `)` in the line
//!    is the one that closes the name, and the first word after it is field 3.
//!    [`stat_field`] counts that way.
//! 2. **`/proc/PID/status`** and **`/proc/meminfo`** are lines of
//!    `Key:  value`, the memory ones with a unit (`VmRSS:  5120 kB`, where
//!    `kB` means KiB). [`status_field`] finds the line by its key and reads
//!    the number after it.
//! 3. The CPU times in `stat` (fields 14 to 17) count **clock ticks**
//!    (`USER_HZ`), 100 a second on every common Linux. [`cpu_ticks`] sums
//!    them; [`ticks_per_sec`] asks `getconf CLK_TCK` once, in case this one
//!    differs; [`cpu_secs`] divides the one by the other.
//!
//! The readers give `None`, never a panic, when the field is missing or
//! not a number, and reading the file is left to the caller: a server that has died
//! has no `/proc/PID` left, which fails the soak but only blanks a cell of the
//! shootout, so each caller decides what a missing number means.

/// Field `n` of a `/proc/.../stat` line, numbered as in `proc(5)` (14 is
/// `utime`), counted from after the last `)`. Only fields from 3 on can be
/// read this way, and only numeric ones: `None` for any other.
pub fn stat_field(stat: &str, n: usize) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name
        .split_whitespace()
        .nth(n.checked_sub(3)?)?
        .parse()
        .ok()
}

/// The number after `key` in a `/proc` text of `Key:  value [kB]` lines, such
/// as `/proc/PID/status` or `/proc/meminfo`. `key` includes the colon
/// (`"VmRSS:"`), so that it cannot match a longer key that starts the same.
pub fn status_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time from a `stat` line, in clock ticks: the sum of `fields`
/// fields from 14 on. Two give the process's (or, in
/// `/proc/thread-self/stat`, the thread's) `utime` and `stime`; four add its
/// waited-for children's `cutime` and `cstime`. `None` if any is missing.
pub fn cpu_ticks(stat: &str, fields: usize) -> Option<u64> {
    (14..14 + fields).map(|n| stat_field(stat, n)).sum()
}

/// CPU time from a `stat` line, in seconds: [`cpu_ticks`] over
/// [`ticks_per_sec`]. `None` if any field is missing. (The shootout keeps
/// whole ticks, and so does not call it.)
#[allow(dead_code)]
pub fn cpu_secs(stat: &str, fields: usize) -> Option<f64> {
    Some(cpu_ticks(stat, fields)? as f64 / ticks_per_sec() as f64)
}

/// Clock ticks per second (`USER_HZ`), the unit of `stat`'s CPU times
/// (fields 14 to 17): 100 on every common Linux, asked of `getconf` once in
/// case this one differs.
pub fn ticks_per_sec() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}
