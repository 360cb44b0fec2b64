#!/usr/bin/env python3
"""Side-by-side benchmark of callnote against its Python peer (bench/peer/peer.py).

Both are whole processes, run in turn (peer, callnote, peer, ...) pinned to one core, on the
same corpus (bench/make_corpus.py) with output on tmpfs. Prints, for each figure, the median
of the passes and the spread (min-max), the peer's beside callnote's:

  steady rate   (N - 1) / (t(N events) - t(1 event)), N missed calls, 10k-person directory:
                process start and directory load cancel out;
  start-up      wall time of one event with the 10k directory (callnote: its directory
                index cache already written by an earlier run, as in service);
  cold start-up the same without a cache (callnote only);
  100k load     one event with a 100k-person directory: wall time and peak RSS, cold (no
                cache) and warm (cache written).

Peak RSS comes from the kernel's accounting of each finished child (wait4). Usage:
    bash scripts/bench.sh            # builds callnote --release, makes the corpora, runs
Environment: BENCH_DIR (default /dev/shm), BENCH_PASSES (5), BENCH_EVENTS (2000),
BENCH_PEOPLE (10000), BENCH_BIG (100000; 0 skips), BENCH_CPU (0), CALLNOTE (binary),
PEER_PYTHON (python with jinja2 and phonenumbers), BENCH_SMOKE=1 (tiny sizes, one pass).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def env_int(name, default):
    return int(os.environ.get(name, default))


def run(argv, cpu):
    """Runs argv pinned to `cpu`; returns (wall seconds, peak RSS bytes). Output discarded."""
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu)] + argv
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"{' '.join(argv[:6])} ... exited {code}:\n{stderr.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def corpus(base, people, events):
    out = base / f"corpus-{people}-{events}"
    if not (out / "corpus.json").exists():
        subprocess.run([sys.executable, str(HERE / "make_corpus.py"), "--out", str(out), "--count", str(events),
                        "--directory-size", str(people), "--all-missed-call"], check=True, stdout=subprocess.DEVNULL)
    return out, sorted((out / "voicemail").glob("*.txt"))


def peer_cmd(python, directory, files, out):
    return [python, str(HERE / "peer" / "peer.py"), "--directory", str(directory),
            "--templates", str(HERE / "peer" / "templates"), "--out", str(out)] + [str(f) for f in files]


def callnote_cmd(binary, directory, files, out):
    return [binary, "render", "--directory", str(directory), "--date", "2026-01-01T00:00:00Z", "--out", str(out)] + [str(f) for f in files]


def clean(out):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def drop_cache():
    """Removes callnote's directory index caches (kept under $CALLNOTE_CACHE_DIR here)."""
    shutil.rmtree(os.environ["CALLNOTE_CACHE_DIR"], ignore_errors=True)


def fmt(values, unit="", scale=1.0, digits=0):
    med = statistics.median(values) * scale
    return f"{med:,.{digits}f}{unit} ({min(values) * scale:,.{digits}f}-{max(values) * scale:,.{digits}f})"


def main():
    smoke = os.environ.get("BENCH_SMOKE") == "1"
    base = Path(os.environ.get("BENCH_DIR", "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp")) / "callnote-bench"
    passes = 1 if smoke else env_int("BENCH_PASSES", 5)
    events = 200 if smoke else env_int("BENCH_EVENTS", 2000)
    people = 500 if smoke else env_int("BENCH_PEOPLE", 10000)
    big = 0 if smoke else env_int("BENCH_BIG", 100000)
    cpu = env_int("BENCH_CPU", 0)
    binary = os.environ.get("CALLNOTE", str(HERE.parent / "target" / "release" / "callnote"))
    python = os.environ.get("PEER_PYTHON", sys.executable)
    base.mkdir(parents=True, exist_ok=True)
    os.environ["CALLNOTE_CACHE_DIR"] = str(base / "index-cache")
    drop_cache()
    data, files = corpus(base, people, events)
    directory = data / "directory.ldif"
    out = base / "out"

    # Warm-up: file cache, and callnote's index cache written once, as a service start would.
    clean(out)
    run(peer_cmd(python, directory, files[:1], out), cpu)
    run(callnote_cmd(binary, directory, files[:1], out), cpu)
    rows = {k: [] for k in ("peer1", "peerN", "cn1", "cnN", "cncold", "peer_rss", "cn_rss", "cncold_rss")}
    for _ in range(passes):
        for who, cmd in (("peer", peer_cmd), ("cn", callnote_cmd)):
            for n, key in ((1, "1"), (len(files), "N")):
                clean(out)
                wall, rss = run(cmd(python if who == "peer" else binary, directory, files[:n], out), cpu)
                rows[who + key].append(wall)
                if n == 1:
                    rows[who + "_rss"].append(rss)
        drop_cache()
        clean(out)
        wall, rss = run(callnote_cmd(binary, directory, files[:1], out), cpu)
        rows["cncold"].append(wall)
        rows["cncold_rss"].append(rss)

    steady = lambda one, many: [(len(files) - 1) / (b - a) if b > a else float("nan") for a, b in zip(one, many)]
    peer_rate, cn_rate = steady(rows["peer1"], rows["peerN"]), steady(rows["cn1"], rows["cnN"])
    ratio = [c / p for c, p in zip(cn_rate, peer_rate)]
    startup_ratio = [p / c for c, p in zip(rows["cn1"], rows["peer1"])]
    print(f"corpus: {len(files)} missed calls, {people}-person directory ({directory.stat().st_size / 1e6:.1f} MB), "
          f"{passes} passes, output in {out}; median (min-max)")
    print(f"steady rate, events/s:       peer {fmt(peer_rate)}   callnote {fmt(cn_rate)}   ratio {fmt(ratio, 'x', digits=1)}")
    print(f"start-up, one event, ms:     peer {fmt(rows['peer1'], scale=1e3)}   callnote {fmt(rows['cn1'], scale=1e3, digits=1)}"
          f"   peer/callnote {fmt(startup_ratio, 'x', digits=1)}")
    print(f"start-up without cache, ms:  callnote {fmt(rows['cncold'], scale=1e3, digits=1)}")
    print(f"peak RSS, one event, MB:     peer {fmt(rows['peer_rss'], scale=1e-6, digits=1)}   callnote {fmt(rows['cn_rss'], scale=1e-6, digits=1)}"
          f"   without cache {fmt(rows['cncold_rss'], scale=1e-6, digits=1)}")
    if big:
        big_data, big_files = corpus(base, big, 1)
        big_dir = big_data / "directory.ldif"
        cold, cold_rss, warm, warm_rss = [], [], [], []
        for _ in range(passes):
            drop_cache()
            clean(out)
            wall, rss = run(callnote_cmd(binary, big_dir, big_files, out), cpu)
            cold.append(wall)
            cold_rss.append(rss)
            clean(out)
            wall, rss = run(callnote_cmd(binary, big_dir, big_files, out), cpu)
            warm.append(wall)
            warm_rss.append(rss)
        print(f"{big}-person directory ({big_dir.stat().st_size / 1e6:.0f} MB), one event: "
              f"load+event {fmt(cold, ' s', digits=2)}, peak RSS {fmt(cold_rss, ' MB', 1e-6)}; "
              f"with the cache {fmt(warm, ' s', digits=3)}, peak RSS {fmt(warm_rss, ' MB', 1e-6)}")


if __name__ == "__main__":
    main()
