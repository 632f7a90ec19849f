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
    (+N, -N) or "*" (the same as the line before)."""
    if token == "*":
        return previous
    if token[0] in "+-":
        return previous + int(token[0] + str(int(token[1:], 0)))
    return int(token, 0)


def cost_per_line(path):
    """Instructions executed per 64-byte line of code (self cost only: the
    line after `calls=` carries a call's inclusive cost and is skipped)."""
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


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, echoes = sys.argv[1], int(sys.argv[2])
    per_line = cost_per_line(path)
    hot = [l for l, ir in per_line.items() if ir / echoes >= 0.5]
    pages = {l >> 6 for l in hot}
    hot_ir = sum(per_line[l] for l in hot) / echoes
    print(f"  code: {len(hot)} lines of 64 B run at least half a time per echo "
          f"({hot_ir:.0f} instructions per echo in them), on {len(pages)} pages of 4 KiB")


if __name__ == "__main__":
    main()
