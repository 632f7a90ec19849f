#!/usr/bin/env python3
"""Interleaved A/B: the CPU time per echo of two or more echo servers.

The shootout answers "how do five designs compare?" in one pass over a
matrix. This script answers a narrower question more precisely: "is server
A cheaper per echo than server B in this one cell?". It runs the servers in
turns (A B, B A, B A, A B, ...: the order changes from rep to rep, as in
the shootout's turns stage), so a slow minute on the machine hits both alike,
and compares each rep's run of A with its run of B.

    cargo build --release --examples
    python3 scripts/ab.py coop mio_raw --conns 100 --size 4096 --reps 6

A server is one of the shootout's names (coop, tokio, mio_raw, threads,
pool) or NAME=PATH for any binary that takes `--addr 127.0.0.1:0 --buf N`
and prints its address on its first line (a build of another commit, say).

Per run it prints the server's CPU time per echo in nanoseconds, read from
/proc/PID/task/*/schedstat (nanoseconds, every thread; /proc/PID/stat's
clock ticks if a thread ended in between, or if those ticks run more than
two ticks ahead of the threads' sum) at loadgen's
`--mark-window --handshake` lines (loadgen waits at each, with no echo in
flight, until this script has read and answered), divided by loadgen's
`served` echoes, and its context switches per echo. At the end, for
every server after the first, the run-by-run ratios against the first and
their median. Like the shootout, it pins the server to the first allowed CPU
and loadgen to the second (taskset). Linux only; loopback only; each run
stops by itself after --secs plus connection time. A run in which loadgen
saw errors, or whose server exited before loadgen finished (its CPU time
would be read from what it left), is left out and says why on stderr; in
--turns, a server that exits stops the whole trial, and a loadgen that saw
errors is named on stderr (its server's later rounds ran with fewer
connections).

With --split it also prints the user and system (kernel) time per echo,
from /proc/PID/stat, and their run-by-run ratios: the servers all make the
same system calls, so a difference in CPU per echo that lives in user time
is the runtime's own. Those two counters advance in clock ticks (10 ms
here), so a run needs enough seconds for its user time to span many ticks:
at 100,000 echoes/s and 0.6 µs of user time per echo, 5 s is 30 ticks,
a resolution of about 3%.

With --perf the user/system split comes from `perf record` instead:
perf samples the server between the marks (its software `cpu-clock`
event, one sample per 250 µs of the server's CPU time, so no hardware
counters are needed), and each sample counts as 250 µs of user or kernel
time by where it fell. Over 5 s of load that is some 20,000 samples, a
resolution well under 1% where the tick counters give 3%. The last run of
each server is kept as target/perf/NAME-CONNSxSIZE.data, for
`perf report -i FILE --no-children --sort sym` and `perf annotate -i FILE
-s SYMBOL`, which show where the time went, down to the instruction (a
load that misses the cache shows as the hot instruction right after it).
Needs `perf` and the right to attach to our own processes.

With --turns it runs all the servers at once instead, each with its own
loadgen (`--slices`), and answers the loadgens in turn so that the servers
are loaded in alternation, --slice-ms each (loadgen's "Taking turns", the
shootout's turns stage): a rep is then one round of slices, and a slow
second on the machine falls on every server alike. No loadgen holds more
than --conns connections, so this works at 10,000 too.
"""

import argparse
import glob
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
PERF_DIR = os.path.join(ROOT, "target", "perf")
# One clock tick of /proc/PID/stat's utime and stime, in nanoseconds.
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
# perf's cpu-clock counts nanoseconds: one sample per 250 µs of CPU time.
PERF_PERIOD_NS = 250_000
NAMED = {
    "coop": "echo_server",
    "tokio": "echo_tokio",
    "mio_raw": "echo_mio_raw",
    "threads": "echo_threads",
    "pool": "echo_pool",
}


def server_path(spec):
    """`coop` or `name=/path/to/binary` -> (name, path)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name, path
    if spec not in NAMED:
        sys.exit(f"unknown server {spec!r}: one of {', '.join(NAMED)}, or NAME=PATH")
    return spec, os.path.join(EXAMPLES, NAMED[spec])


def tasks(pid):
    return glob.glob(f"/proc/{pid}/task/*")


def cpu_ns(pid):
    """A reading of the CPU time of `pid`: each live thread's, in nanoseconds
    by thread id, and the whole process's from /proc/PID/stat, whose clock
    ticks are coarse but count the threads that have ended too."""
    by_thread = {}
    for task in tasks(pid):
        try:
            with open(f"{task}/schedstat") as f:
                by_thread[os.path.basename(task)] = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between the listing and the read
    return by_thread, sum(user_sys_ns(pid))


def cpu_ns_between(start, end):
    """CPU nanoseconds used between two `cpu_ns` readings. Per thread when
    every thread of the first reading is in the second (a thread born in
    between counts from zero); if one ended in between, its time in the
    window is lost from the per-thread sum, so the process's ticks are used
    instead, as they are when they run more than two ticks ahead of that
    sum (as the shootout does).

    >>> cpu_ns_between(({"1": 100, "2": 50}, 0), ({"1": 160, "2": 90, "3": 5}, 10_000_000))
    105
    >>> cpu_ns_between(({"1": 100, "2": 50}, 0), ({"1": 160}, 10_000_000))  # thread 2 ended
    10000000

    A thread that started and ended between the readings is in neither,
    but the ticks keep its time: ticks more than two ticks ahead of the
    per-thread sum mean one, and are used. So are they on a kernel that
    keeps no scheduler statistics (every schedstat reads 0).

    >>> tick = TICK_NS
    >>> cpu_ns_between(({"1": 0}, 100 * tick), ({"1": 1_000_000_000}, 250 * tick)) == 150 * tick
    True
    >>> cpu_ns_between(({"1": 5}, 100 * tick), ({"1": 1_000_000_005}, 201 * tick))  # within two ticks
    1000000000
    >>> cpu_ns_between(({"1": 0}, 0), ({"1": 0}, 50 * tick)) == 50 * tick
    True
    """
    (a, a_ticks), (b, b_ticks) = start, end
    ticks = b_ticks - a_ticks
    if a.keys() <= b.keys():
        ns = sum(ns - a.get(tid, 0) for tid, ns in b.items())
        # Each tick reading is utime and stime, each cut down to a whole
        # tick, so the two counts agree to within two ticks (as in the
        # shootout's `CpuReading::used`).
        if ticks <= ns + 2 * TICK_NS:
            return ns
    return ticks


def user_sys_ns(pid):
    """User and system CPU time of `pid` (all its threads), in nanoseconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name, in parentheses, may hold spaces: split after it.
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line, 12 and 13
    # after the name.
    return int(fields[11]) * TICK_NS, int(fields[12]) * TICK_NS


def switches(pid):
    """Context switches, voluntary and not, of every live thread of `pid`."""
    total = 0
    for task in tasks(pid):
        try:
            with open(f"{task}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:  # voluntary_ and nonvoluntary_
                        total += int(line.split()[-1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def cpus():
    with open("/proc/self/status") as f:
        text = f.read()
    spec = re.search(r"Cpus_allowed_list:\s*(\S+)", text).group(1)
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def start_perf(pid, data):
    """Starts sampling `pid` into `data`; returns the perf process."""
    for stale in (data, data + ".old"):  # perf keeps the last file as .old
        if os.path.exists(stale):
            os.remove(stale)
    perf = subprocess.Popen(["perf", "record", "--quiet", "-e", "cpu-clock",
                             "-c", str(PERF_PERIOD_NS), "-p", str(pid), "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Attaching takes a moment; the server is idle at the mark meanwhile,
    # so waiting costs no samples.
    time.sleep(0.3)
    return perf


def perf_user_kernel_ns(data):
    """CPU time in user space and in the kernel, in nanoseconds, from the
    samples in `data` (each one PERF_PERIOD_NS of CPU time)."""
    report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso",
                             "-F", "sample,dso"], capture_output=True, text=True).stdout
    user = kernel = 0
    for line in report.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            if "[kernel" in fields[1]:
                kernel += int(fields[0])
            else:
                user += int(fields[0])
    if user + kernel == 0:  # perf could not attach, or recorded nothing
        return float("nan"), float("nan")
    return user * PERF_PERIOD_NS, kernel * PERF_PERIOD_NS


def fields(line):
    """loadgen's `key=value` words, as a dict.

    >>> fields("slice target=3 msgs=120 secs=0.250000")
    {'target': '3', 'msgs': '120', 'secs': '0.250000'}
    """
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


def served_or_why(line, server_code):
    """The echoes a run served, from loadgen's result line (`None` if it
    printed none), or 0 and why the run must not count: loadgen saw errors,
    or the server (exit code `server_code`, `None` while it runs) was gone
    before loadgen finished, and its CPU time was read from what it left.

    >>> served_or_why("conns=10 size=64 msgs=90 errors=0 connected=10 served=100", None)
    (100, None)
    >>> served_or_why("conns=10 size=64 msgs=90 errors=3 connected=10 served=100", None)
    (0, 'loadgen saw 3 errors')
    >>> served_or_why("conns=10 size=64 msgs=90 errors=0 connected=10 served=100", -11)
    (0, 'the server exited (code -11) before loadgen finished')
    >>> served_or_why(None, None)
    (0, 'loadgen printed no result')
    """
    if server_code is not None:
        return 0, f"the server exited (code {server_code}) before loadgen finished"
    if line is None:
        return 0, "loadgen printed no result"
    result = fields(line)
    if int(result["errors"]):
        return 0, f"loadgen saw {result['errors']} errors"
    return int(result["served"]), None


def one_run(name, path, args, pin):
    """Starts the server, runs loadgen against it, returns (ns/echo, cs/echo,
    user ns/echo, system ns/echo)."""
    def pinned(cpu, cmd):
        return ["taskset", "-c", str(cpu)] + cmd if pin else cmd

    server_cmd = pinned(pin and pin[0], [path, "--addr", "127.0.0.1:0", "--buf", str(args.buf)])
    env = dict(os.environ, RUST_LOG="warn")
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True)
    try:
        match = re.search(r"127\.0\.0\.1:\d+", server.stdout.readline())
        if not match:
            raise RuntimeError(f"{path} did not print its address")
        load_cmd = pinned(pin and pin[1], [
            os.path.join(EXAMPLES, "loadgen"), "--addr", match.group(0),
            "--conns", str(args.conns), "--size", str(args.size), "--secs", str(args.secs),
            "--threads", "1", "--connect-timeout", "3", "--mark-window", "--handshake",
        ])
        load = subprocess.Popen(load_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        start = end = result = None
        perf = None
        data = os.path.join(PERF_DIR, f"{name}-{args.conns}x{args.size}.data")
        for line in load.stdout:
            if line.startswith("window"):
                if perf:
                    perf.send_signal(signal.SIGINT)  # perf writes its data and exits
                    perf.wait()
                reading = (cpu_ns(server.pid), switches(server.pid), *user_sys_ns(server.pid))
                if "start" in line:
                    start = reading
                    if args.perf:
                        perf = start_perf(server.pid, data)
                else:
                    end = reading
                load.stdin.write("go\n")
                load.stdin.flush()
            elif line.startswith("conns="):
                result = line
        load.wait()
        msgs, why = served_or_why(result, server.poll())
        if why:
            print(f"{name}: run left out: {why}", file=sys.stderr)
    finally:
        server.send_signal(2)  # SIGINT: the servers shut down gracefully
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if not (start and end and msgs):
        return (float("nan"),) * 4
    ns = cpu_ns_between(start[0], end[0]) / msgs
    cs, user, system = ((b - a) / msgs for a, b in zip(start[1:], end[1:]))
    if args.perf:
        user, system = (t / msgs for t in perf_user_kernel_ns(data))
    return ns, cs, user, system


def turns(servers, args, pin):
    """All servers at once, loaded in turns; returns {name: [ns/echo per round]}."""
    def pinned(cpu, cmd):
        return ["taskset", "-c", str(cpu)] + cmd if pin else cmd

    def answer(load):
        load.stdin.write("go\n")
        load.stdin.flush()

    def next_line(load, prefix):
        while line := load.stdout.readline():
            if line.startswith(prefix):
                return line
        raise RuntimeError(f"loadgen exited before {prefix!r}")

    env = dict(os.environ, RUST_LOG="warn")
    procs, addrs, loads = [], [], []
    try:
        for _, path in servers:
            p = subprocess.Popen(pinned(pin and pin[0], [path, "--addr", "127.0.0.1:0", "--buf", str(args.buf)]),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
            procs.append(p)
            match = re.search(r"127\.0\.0\.1:\d+", p.stdout.readline())
            if not match:
                raise RuntimeError(f"{path} did not print its address")
            addrs.append(match.group(0))
        # One loadgen per server in slices (as the shootout's turns stage), so
        # no process holds more connections than --conns: each connects, says
        # `slice start`, and runs a slice each time it is answered.
        for addr in addrs:
            loads.append(subprocess.Popen(pinned(pin and pin[1], [
                os.path.join(EXAMPLES, "loadgen"), "--addr", addr, "--slices",
                "--conns", str(args.conns), "--size", str(args.size),
                "--secs", str(args.reps * args.slice_ms / 1000), "--slice-ms", str(args.slice_ms),
                "--threads", "1", "--connect-timeout", "3", "--mark-window", "--handshake",
            ]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
            next_line(loads[-1], "slice start")
        per = {name: [] for name, _ in servers}
        last = [cpu_ns(p.pid) for p in procs]
        for r in range(args.reps):
            for t in order(r, len(loads)):
                load = loads[t]
                answer(load)
                line = next_line(load, "slice target=")
                if procs[t].poll() is not None:
                    # Its CPU time would be read from what it left: stop.
                    raise RuntimeError(f"{servers[t][0]} exited (code {procs[t].returncode}) "
                                       f"in round {r + 1}")
                now = [cpu_ns(p.pid) for p in procs]
                msgs = int(fields(line)["msgs"])
                used = cpu_ns_between(last[t], now[t])
                per[servers[t][0]].append(used / msgs if msgs else float("nan"))
                last = now
        for load in loads:
            answer(load)  # after its last slice: close the connections and report
        for (name, _), load in zip(servers, loads):
            trouble = turns_trouble(name, next_line(load, "conns="))
            if trouble:
                print(trouble, file=sys.stderr)
        for load in loads:
            load.wait()
        return per
    finally:
        for load in loads:
            if load.poll() is None:
                load.kill()
                load.wait()
        for p in procs:
            p.send_signal(2)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def turns_trouble(name, line):
    """What went wrong for server `name` in --turns, from its loadgen's
    result line, or None. Failed connections used to go unsaid there: the
    rounds after them measured fewer connections than --conns.

    >>> turns_trouble("coop", "conns=10 size=64 msgs=90 errors=3 connected=10 served=100")
    'coop: loadgen saw 3 errors: its later rounds ran with fewer connections'
    >>> turns_trouble("coop", "conns=10 size=64 msgs=90 errors=0 connected=10 served=100") is None
    True
    """
    why = served_or_why(line, None)[1]
    return f"{name}: {why}: its later rounds ran with fewer connections" if why else None


def order(rep, n):
    """The order of the servers in rep (or round) `rep`, as the shootout's
    turns stage (examples/shootout/turns.rs, `order`): rep 2i starts at
    server i and goes round the list, rep 2i + 1 is that order backwards. No
    server always goes first, or always follows the same other.

    >>> [order(rep, 3) for rep in range(6)]
    [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1], [2, 0, 1], [1, 0, 2]]
    """
    start = (rep // 2) % max(n, 1)
    ks = [(start + j) % n for j in range(n)]
    return ks[::-1] if rep % 2 else ks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="+", help="coop, tokio, mio_raw, threads, pool, or NAME=PATH")
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--secs", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--reps", type=int, default=4, help="runs of each server")
    parser.add_argument("--buf", type=int, default=4096, help="the servers' --buf")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--turns", action="store_true",
                        help="run the servers at once, loaded in turns; --reps rounds")
    parser.add_argument("--slice-ms", type=int, default=250, help="with --turns")
    parser.add_argument("--split", action="store_true",
                        help="also user and system time per echo (not with --turns)")
    parser.add_argument("--perf", action="store_true",
                        help="--split, measured by perf's samples instead of tick counters")
    args = parser.parse_args()
    args.split = args.split or args.perf
    if args.split and args.turns:
        parser.error("--split and --perf measure one server at a time: drop --turns")
    if args.perf:
        if not shutil.which("perf"):
            parser.error("--perf needs perf (linux-perf) on the PATH")
        os.makedirs(PERF_DIR, exist_ok=True)

    servers = [server_path(s) for s in args.servers]
    names = [name for name, _ in servers]
    if len(set(names)) != len(names):
        # Runs are kept by name: two servers of one name would share one
        # list, and every ratio between them would be exactly 1.
        parser.error("give each server a distinct name (NAME=PATH)")
    for name, path in servers + [("loadgen", os.path.join(EXAMPLES, "loadgen"))]:
        if not os.access(path, os.X_OK):
            sys.exit(f"{name}: no binary at {path} (cargo build --release --examples)")
    allowed = cpus()
    pin = None if args.no_pin or len(allowed) < 2 else (allowed[0], allowed[1])
    print(f"{args.conns} conns x {args.size} B, {args.secs} s per run, {args.reps} reps, "
          f"{'server on CPU %d, loadgen on CPU %d' % pin if pin else 'not pinned'}")

    cpu = {name: [] for name, _ in servers}
    user = {name: [] for name, _ in servers}
    system = {name: [] for name, _ in servers}
    if args.turns:
        cpu = turns(servers, args, pin)
    for rep in range(0 if args.turns else args.reps):
        for name, path in (servers[k] for k in order(rep, len(servers))):
            ns, cs, us, sy = one_run(name, path, args, pin)
            cpu[name].append(ns)
            user[name].append(us)
            system[name].append(sy)
            split = f"  user {us:7.1f}  system {sy:8.1f} ns/echo" if args.split else ""
            print(f"rep {rep}  {name:>10}  {ns:8.1f} ns/echo  {cs:6.3f} context switches/echo{split}",
                  flush=True)

    print()
    summarize("CPU", cpu, servers)
    if args.split:
        summarize("user", user, servers)
        summarize("system", system, servers)


def summarize(what, per, servers):
    """Each server's median, and every later server's run-by-run ratios
    against the first."""
    for name, _ in servers:
        # A run that served nothing (a server that fell over) is NaN: left
        # out here, and its pairs below, so that run i still pairs with i.
        runs = [x for x in per[name] if x == x]
        if not runs:
            print(f"{what:>6} {name:>10}: no run measured")
            continue
        print(f"{what:>6} {name:>10}: median {statistics.median(runs):8.1f} ns/echo  "
              f"runs {[round(x) for x in runs]}")
    first = servers[0][0]
    for name, _ in servers[1:]:
        ratios = [a / b for a, b in zip(per[first], per[name]) if a == a and b > 0]
        if ratios:
            interval = median_interval(ratios)
            sure = (f", {interval[2]:.0%} interval {interval[0]:.3f}-{interval[1]:.3f}"
                    if interval else "")
            print(f"{what:>6} {first}/{name}: median of run-by-run ratios "
                  f"{statistics.median(ratios):.3f}{sure}  "
                  f"({', '.join(f'{r:.3f}' for r in ratios)})")


def median_interval(values, confidence=0.95):
    """(lo, hi, sure): the narrowest pair of order statistics that holds the
    true median with probability `sure` >= `confidence` (the count below the
    median is Binomial(n, 1/2)); None for fewer than 6 values. The shootout's
    report uses the same interval (examples/shootout/median.rs), and these
    examples are that file's tests:

    >>> median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    True
    >>> median_interval([5.0, 1.0, 4.0, 2.0, 3.0, 6.0]) == (1.0, 6.0, 1 - 2 / 64)
    True
    >>> median_interval(range(1, 9))
    (1, 8, 0.9921875)
    >>> lo, hi, sure = median_interval(range(1, 2001)); (lo, hi, round(sure, 6))
    (956, 1045, 0.953447)
    """
    values = sorted(values)
    n = len(values)
    # In logarithms: 0.5 ** n is 0 beyond n = 1,074, and a sum that stays 0
    # would never end the loop.
    ln_term = -n * math.log(2)
    below = math.exp(ln_term)
    if 1 - 2 * below < confidence:
        return None
    k = 0
    while k + 1 < n // 2:
        ln_next = ln_term + math.log((n - k) / (k + 1))
        next_term = math.exp(ln_next)
        if 1 - 2 * (below + next_term) < confidence:
            break
        ln_term, below, k = ln_next, below + next_term, k + 1
    return values[k], values[n - 1 - k], 1 - 2 * below


if __name__ == "__main__":
    main()
