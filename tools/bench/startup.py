#!/usr/bin/env python3
"""Start-up time of client commands (issue 17): the median wall time of `frameseek
--version`, of `frameseek status --json` and of a `frameseek search` round trip against a
running daemon, and the number of shared libraries the binary loads (ldd), for one or more
builds.

usage: python3 tools/bench/startup.py BINARY [BINARY...] [--runs 50]

A lean build's BINARY is its `frameseek`, with `frameseek-engine` beside it (the daemon is
started as `BINARY serve`, which execs the engine).

Each binary gets its own daemon (started from that binary on a temporary state folder with
the tiny test model), and the runs alternate between the binaries, so that builds compared
in one run see the same machine load. `/bin/true` is timed alongside as the floor of
starting any process. With `perf` installed, the CPU time of `--version` (task-clock) is
printed too: it depends far less on other load than the wall time.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "assets/models/tiny-random-clip")


def once_ms(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - t) * 1000.0


def cpu_ms(cmd, runs):
    """The process's own CPU time (perf's task-clock, mean of `runs`), which a loaded machine
    changes far less than the wall time; None without perf."""
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-r", str(runs), "-e", "task-clock"] + cmd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        return None
    for line in out.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and "task-clock" in fields[2]:
            try:
                return float(fields[0])
            except ValueError:
                return None
    return None


def libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def start_daemon(binary, d):
    sock = os.path.join(d, "fs.sock")
    cfg = os.path.join(d, "frameseek.toml")
    os.makedirs(os.path.join(d, "footage"))
    with open(cfg, "w") as f:
        f.write(
            f'[daemon]\nsocket = "{sock}"\nstate_dir = "{d}/state"\n'
            f'footage_roots = ["{d}/footage"]\n[model]\npath = "{MODEL}"\ndevice = "cpu"\n'
        )
    daemon = subprocess.Popen([binary, "serve", "--config", cfg],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return daemon, sock


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--runs", type=int, default=50)
    a = p.parse_args()
    dirs = [tempfile.TemporaryDirectory(prefix="fs-startup-") for _ in a.binaries]
    daemons = [start_daemon(b, d.name) for b, d in zip(a.binaries, dirs)]
    times = {b: {"version": [], "status": [], "search": []} for b in a.binaries}
    floor = []
    try:
        # Each command must work before it is timed: status exits 0, search 0 or 1 (no match).
        for b, (_, sock) in zip(a.binaries, daemons):
            for cmd, ok in (([b, "--socket", sock, "--json", "status"], (0,)),
                            ([b, "--socket", sock, "search", "a red car", "-k", "5"], (0, 1))):
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode not in ok:
                    raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
        for _ in range(a.runs):
            floor.append(once_ms(["/bin/true"]))
            for b, (_, sock) in zip(a.binaries, daemons):
                times[b]["version"].append(once_ms([b, "--version"]))
                times[b]["status"].append(once_ms([b, "--socket", sock, "--json", "status"]))
                times[b]["search"].append(
                    once_ms([b, "--socket", sock, "search", "a red car", "-k", "5"]))
    finally:
        for daemon, _ in daemons:
            daemon.terminate()
            daemon.wait(30)
    print(f"/bin/true: median_ms={statistics.median(floor):.1f} runs={a.runs}")
    for b in a.binaries:
        v = statistics.median(times[b]["version"])
        s = statistics.median(times[b]["status"])
        q = statistics.median(times[b]["search"])
        cpu = cpu_ms([b, "--version"], a.runs)
        cpu_text = f" version_cpu_ms={cpu:.1f}" if cpu is not None else ""
        print(f"{b}: libraries={libraries(b)} version_median_ms={v:.1f} "
              f"status_median_ms={s:.1f} search_median_ms={q:.1f}{cpu_text} runs={a.runs}")


if __name__ == "__main__":
    main()
