//! Child processes that die with their parent, however it ends.
//!
//! The shootout and the soak start servers (and load generators) as child
//! processes. Each keeps its children in a guard that kills them when the
//! program returns or unwinds, and the soak also catches SIGINT and SIGTERM.
//! But `kill -KILL` (or the out-of-memory killer) ends a program with no
//! chance to clean up, and its children, now orphans, would go on
//! listening for ever.
//!
//! Linux can do that cleanup itself: `prctl(PR_SET_PDEATHSIG, SIGKILL)` in
//! a child asks the kernel to kill it when the thread that started it ends.
//! A process sets it for itself, after the fork, so the parent cannot set it
//! from safe Rust (`Command::pre_exec` is `unsafe`). util-linux's `setpriv
//! --pdeathsig KILL PROGRAM ARGS` sets it and then execs the program, so the
//! child's PID is the program's; [`command`] puts it in front where it runs.
//!
//! Two limits. The signal follows the *thread* that started the child, not
//! the process: start every child from a thread that lives as long as the
//! program (its main thread), or the child dies with the short-lived thread.
//! And a parent killed in the millisecond between starting a child and
//! `setpriv`'s request leaves that child running.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `taskset -c CPU program` when pinning, else just `program`; either way
/// behind `setpriv --pdeathsig KILL` when util-linux's `setpriv` is there.
/// Both exec what follows them, so the child's PID is the program's.
pub fn command(program: &Path, cpu: Option<usize>) -> Command {
    let mut words: Vec<OsString> = Vec::new();
    if setpriv_works() {
        words.extend(["setpriv", "--pdeathsig", "KILL"].map(OsString::from));
    }
    if let Some(cpu) = cpu {
        words.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    words.push(program.into());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// Whether `setpriv --pdeathsig` runs here (util-linux 2.33 and later), asked
/// once.
pub fn setpriv_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::thread;
    use std::time::{Duration, Instant};

    /// A child started by [`command`] dies with the thread that started it,
    /// as the servers die with the shootout or the soak, however it ends.
    /// Here the thread ends and the test, still the child's parent, sees how
    /// the child ended. Without `setpriv` the child sleeps its 30 s; the test
    /// stops waiting after 10 and fails.
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        if !setpriv_works() {
            eprintln!("setpriv --pdeathsig is not available here: nothing to test");
            return;
        }
        let mut child = thread::spawn(|| {
            let mut cmd = command(Path::new("sleep"), None);
            let child = cmd.arg("30").spawn().unwrap();
            // `setpriv` asks for the signal after it starts and before it
            // execs `sleep`: a thread that ended before that would go
            // unnoticed. Wait until the child is `sleep`.
            let comm = format!("/proc/{}/comm", child.id());
            let start = Instant::now();
            while std::fs::read_to_string(&comm).unwrap_or_default() != "sleep\n" {
                assert!(start.elapsed() < Duration::from_secs(10), "no exec");
                thread::sleep(Duration::from_millis(5));
            }
            child
        })
        .join()
        .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("the child outlived its parent thread by 10 s");
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
}
