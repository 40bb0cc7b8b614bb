#!/usr/bin/env python3
"""Start-up time of client commands (issue 17): median wall time of N runs of
`frameseek --version` and of `frameseek status` against a running daemon, plus the
number of shared libraries the binary loads (ldd).

usage: python3 tools/bench/startup.py BINARY [BINARY...] [--runs 50] [--model DIR]

Each binary runs against its own daemon (started from that binary on a temporary state
folder with the tiny test model), so an old and a new build compare in the same run.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(cmd, runs, env=None):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def bench(binary, runs, model):
    with tempfile.TemporaryDirectory(prefix="fs-startup-") as d:
        sock = os.path.join(d, "fs.sock")
        cfg = os.path.join(d, "frameseek.toml")
        os.makedirs(os.path.join(d, "footage"))
        with open(cfg, "w") as f:
            f.write(
                f'[daemon]\nsocket = "{sock}"\nstate_dir = "{d}/state"\n'
                f'footage_roots = ["{d}/footage"]\n[model]\npath = "{model}"\ndevice = "cpu"\n'
            )
        daemon = subprocess.Popen([binary, "serve", "--config", cfg],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            version = median_ms([binary, "--version"], runs)
            status = median_ms([binary, "--socket", sock, "status"], runs)
        finally:
            daemon.terminate()
            daemon.wait(30)
    return version, status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--model", default=os.path.join(ROOT, "assets/models/tiny-random-clip"))
    a = p.parse_args()
    for b in a.binaries:
        v, s = bench(b, a.runs, a.model)
        print(f"{b}: libraries={libraries(b)} version_median_ms={v:.1f} status_median_ms={s:.1f} runs={a.runs}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
