#!/usr/bin/env python3
"""CPU time per event of two callnote builds, run in turn on the side-by-side corpus.

On a shared host the wall-clock steady rate of bench/run.py swings by tens of percent from
pass to pass; the CPU time the kernel charges to each process (wait4's rusage) swings much
less. This runs `callnote render` on 1 and on N missed calls with each build in turn (before,
after, before, ...), pinned to one core, and prints per build the median (min-max) of:
  steady rate    (N - 1) / (t(N) - t(1)), wall clock, as bench/run.py computes it;
  CPU per event  (cpu(N) - cpu(1)) / (N - 1), user + system, and the system part alone.

Usage (after `bash scripts/bench.sh` has made the corpus):
    CALLNOTE_BEFORE=/path/to/old/callnote python3 bench/compare_cpu.py
Environment: CALLNOTE_BEFORE (required), CALLNOTE_AFTER (default target/release/callnote),
BENCH_DIR (default /dev/shm), BENCH_PEOPLE (10000), BENCH_EVENTS (2000), BENCH_PASSES (5),
BENCH_CPU (1).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from run import HERE, callnote_cmd, clean, fmt


def main():
    base = Path(os.environ.get("BENCH_DIR", "/dev/shm")) / "callnote-bench"
    people, events = os.environ.get("BENCH_PEOPLE", "10000"), os.environ.get("BENCH_EVENTS", "2000")
    corpus = base / f"corpus-{people}-{events}"
    files = sorted(str(f) for f in (corpus / "voicemail").glob("*.txt"))
    if not files:
        sys.exit(f"no corpus in {corpus}: run `bash scripts/bench.sh` first")
    builds = {"before": os.environ["CALLNOTE_BEFORE"],
              "after": os.environ.get("CALLNOTE_AFTER", str(HERE.parent / "target" / "release" / "callnote"))}
    passes, cpu = int(os.environ.get("BENCH_PASSES", "5")), os.environ.get("BENCH_CPU", "1")
    os.environ["CALLNOTE_CACHE_DIR"] = str(base / "index-cache")
    out = base / "out-compare"

    def run(binary, n):
        clean(out)
        argv = ["taskset", "-c", cpu] + callnote_cmd(binary, corpus / "directory.ldif", files[:n], out)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{binary} render failed")
        return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_stime

    for binary in builds.values():
        run(binary, 1)  # the index cache written, the files in the page cache
    rows = {name: [] for name in builds}
    for _ in range(passes):
        for name, binary in builds.items():
            one, many = run(binary, 1), run(binary, len(files))
            per = len(files) - 1
            rows[name].append((per / (many[0] - one[0]), (many[1] - one[1]) / per * 1e6, (many[2] - one[2]) / per * 1e6))

    for name, values in rows.items():
        rate, total, system = zip(*values)
        print(f"{name:>6}: steady {fmt(rate)} events/s; CPU per event {fmt(total, digits=1)} us, system {fmt(system, digits=1)} us")
    print(f"{len(files)} events, {passes} passes, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
