#!/usr/bin/env python3
"""Lines of code an echo runs, from a callgrind profile made with
--dump-instr=yes (scripts/callgrind-per-echo.sh does this with CODE_LINES=1).

    python3 scripts/code-lines.py target/callgrind/coop-1000x64.callgrind ECHOES

Callgrind then counts every instruction's executions by address. This sums
them per 64-byte line of code and prints how many lines run at least half a
time per echo, the instructions per echo in them, and the 4 KiB pages those
lines sit on. Between two system calls the kernel runs much of its own code
and data through the same caches, so each of these lines may have to be
fetched again for every echo: a count of code to set beside callgrind's
count of data lines (CACHE_SIM=1).
"""

import collections
import sys


def parse_position(token, previous):
    """One position of a cost line: absolute (decimal or 0x hex), relative
    (+N, -N) or "*" (the same as the line before).

    >>> parse_position("0x1000", 0), parse_position("12", 0)
    (4096, 12)
    >>> parse_position("+4", 4096), parse_position("-0x10", 4096)
    (4100, 4080)
    >>> parse_position("*", 4100)
    4100
    """
    if token == "*":
        return previous
    if token[0] in "+-":
        return previous + int(token[0] + str(int(token[1:], 0)))
    return int(token, 0)


def cost_per_line(path):
    """Instructions executed per 64-byte line of code (self cost only: the
    line after `calls=` carries a call's inclusive cost and is skipped).

    A small profile in callgrind's compressed format: two instructions on
    line 0x1000 >> 6 = 64, then a call whose inclusive 1,000 must not
    count, and two more on line 65. Relative positions run on through the
    call's line.

    >>> import os, tempfile
    >>> profile = '''positions: instr line
    ... events: Ir
    ... fn=(1) main
    ... 0x1000 10 5
    ... +4 * 3
    ... +0x3c 11 7
    ... calls=1 0x2000 20
    ... +4 12 1000
    ... +4 * 2
    ... '''
    >>> with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as f:
    ...     _ = f.write(profile)
    >>> sorted(cost_per_line(f.name).items())
    [(64, 8), (65, 9)]
    >>> os.unlink(f.name)
    """
    per_line = collections.Counter()
    positions, previous, skip = ["line"], [0, 0], False
    with open(path) as f:
        for line in f:
            if line.startswith("positions:"):
                positions = line.split()[1:]
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if not line[:1] or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            tokens = line.split()
            n = len(positions)
            pos = [parse_position(tokens[i], previous[i]) for i in range(n)]
            previous[:n] = pos
            if skip:
                skip = False
                continue
            if positions[0] == "instr" and len(tokens) > n:
                per_line[pos[0] >> 6] += int(tokens[n])
    if positions[0] != "instr":
        sys.exit("no instruction addresses: run callgrind with --dump-instr=yes")
    return per_line


def summary(per_line, echoes):
    """The report: the lines that run at least half a time per echo, their
    instructions per echo, and the pages they sit on (64 lines a page).

    Over 10 echoes, lines 64 and 65 (page 1) run; line 200 (page 3) has 4
    instructions, under half a time per echo, and is left out.

    >>> print(summary({64: 80, 65: 90, 200: 4}, 10))
      code: 2 lines of 64 B run at least half a time per echo (17 instructions per echo in them), on 1 pages of 4 KiB
    >>> print(summary({64: 80, 128: 5}, 10))
      code: 2 lines of 64 B run at least half a time per echo (8 instructions per echo in them), on 2 pages of 4 KiB
    """
    hot = [l for l, ir in per_line.items() if ir / echoes >= 0.5]
    pages = {l >> 6 for l in hot}
    hot_ir = sum(per_line[l] for l in hot) / echoes
    return (f"  code: {len(hot)} lines of 64 B run at least half a time per echo "
            f"({hot_ir:.0f} instructions per echo in them), on {len(pages)} pages of 4 KiB")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, echoes = sys.argv[1], int(sys.argv[2])
    print(summary(cost_per_line(path), echoes))


if __name__ == "__main__":
    main()
