//! The five servers, and building them.

use std::path::Path;
use std::process::{Command, Stdio};

/// One of the five servers.
pub struct Server {
    /// Short name, used in `--servers`, the table and the charts.
    pub name: &'static str,
    /// The example that implements it.
    pub example: &'static str,
    /// Flags beyond `--addr` and `--buf`.
    pub extra: &'static [&'static str],
    /// Chart colour (Okabe–Ito palette, readable by colour-blind readers).
    pub color: &'static str,
    /// One line for the report.
    pub design: &'static str,
}

/// The servers, in the order of the table.
pub const SERVERS: [Server; 5] = [
    Server {
        name: "coop",
        example: "echo_server",
        extra: &[],
        color: "#D55E00",
        design: "coop: one task per connection on one thread",
    },
    Server {
        name: "tokio",
        example: "echo_tokio",
        extra: &[],
        color: "#0072B2",
        design: "tokio current-thread runtime: one task per connection on one thread",
    },
    Server {
        name: "mio_raw",
        example: "echo_mio_raw",
        extra: &[],
        color: "#009E73",
        design: "hand-written mio state machine on one thread: the ceiling",
    },
    Server {
        name: "threads",
        example: "echo_threads",
        extra: &[],
        color: "#E69F00",
        design: "one OS thread per connection, blocking I/O: the baseline",
    },
    Server {
        name: "pool",
        example: "echo_pool",
        extra: &["--workers", "8"],
        color: "#CC79A7",
        design: "8 worker threads, each serving one connection until it closes",
    },
];

/// The servers named by `--servers` (all by default), in table order.
pub fn pick(names: &[String]) -> Result<Vec<&'static Server>, String> {
    if names.is_empty() {
        return Ok(SERVERS.iter().collect());
    }
    for name in names {
        if !SERVERS.iter().any(|s| s.name == name || s.example == name) {
            let known: Vec<&str> = SERVERS.iter().map(|s| s.name).collect();
            return Err(format!(
                "unknown server {name:?}; known: {}",
                known.join(", ")
            ));
        }
    }
    let wanted = |s: &&Server| names.iter().any(|n| n == s.name || n == s.example);
    Ok(SERVERS.iter().filter(wanted).collect())
}

/// Builds the examples in release mode with the cargo that runs us. Returns
/// the examples that failed to build (their cells are reported as such);
/// fails if `loadgen` does not build.
pub fn build(examples: &[&str], bin_dir: &Path) -> Result<Vec<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let cargo_build = |names: &[&str]| {
        eprintln!("building (release): {}", names.join(" "));
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest);
        for name in names {
            cmd.args(["--example", name]);
        }
        cmd.stdin(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let mut failed = Vec::new();
    // All at once is fastest; one by one only to find out which failed.
    if !cargo_build(examples) {
        for &name in examples {
            if !cargo_build(&[name]) {
                failed.push(name.to_string());
            }
        }
    }
    if failed.iter().any(|f| f == "loadgen") {
        return Err("loadgen does not build".into());
    }
    let missing = examples
        .iter()
        .filter(|e| !failed.iter().any(|f| f == *e))
        .find(|e| !bin_dir.join(e).exists());
    if let Some(example) = missing {
        return Err(format!(
            "built, but {example} is not in {} beside this executable: \
             run me with `cargo run --release --example shootout`",
            bin_dir.display()
        ));
    }
    Ok(failed)
}
