#!/usr/bin/env python3
"""Two frameseek binaries, alternating, on the same work: end-to-end ingest through the daemon
(`frameseek serve` on a fresh state folder, `frameseek ingest --wait`, wall time), a text
query's round trip through the socket, and `bench-decode` (the decode-and-sample stage
alone). Used to check that a change of layout (issue 14) costs nothing; results as ratios
B/A, medians of alternating runs, so a shared machine's drift affects both sides alike.

    python3 tools/bench/ab_daemon.py --a OLD/frameseek --b target/release/frameseek \\
        --model DIR --video FILE --reps 5 --fps 1,5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def serve(binary: Path, model: Path, root: Path, interval: float, *, views: str | None = None,
          state_parent: Path | None = None,
          prefix: str = "ab-") -> tuple[subprocess.Popen, Path, Path]:
    """`frameseek serve` on a fresh state folder (under `state_parent`, else `root`) with
    footage root `root`, a frame every `interval` s and, when given, `ingest.views = views`;
    waits for its socket and returns the process, its config file and the folder."""
    state = Path(tempfile.mkdtemp(prefix=prefix, dir=state_parent or root))
    sock = state / "s.sock"
    cfg = state / "c.toml"
    views_line = f'views = "{views}"\n' if views else ""
    cfg.write_text(
        f'[daemon]\nsocket = "{sock}"\nstate_dir = "{state / "state"}"\n'
        f'footage_roots = ["{root}"]\n'
        f'[model]\npath = "{model}"\ndevice = "cpu"\n'
        f"[ingest]\nsample_interval = {interval}\n{views_line}"
    )
    log = open(state / "log", "w")
    p = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stderr=log, stdout=log)
    deadline = time.time() + 120
    while not sock.exists():
        if p.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{binary} did not start: {(state / 'log').read_text()}")
        time.sleep(0.02)
    return p, cfg, state


def stop(p: subprocess.Popen, state: Path) -> None:
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    shutil.rmtree(state, ignore_errors=True)


def ingest_once(binary: Path, model: Path, video: Path, fps: float) -> tuple[float, float]:
    """Wall seconds of `ingest --wait`, and the median of 20 text queries in ms."""
    p, cfg, state = serve(binary, model, video.parent, 1.0 / fps)
    try:
        t = time.perf_counter()
        subprocess.run([str(binary), "--config", str(cfg), "ingest", str(video), "--wait", "--json"],
                       check=True, capture_output=True)
        ingest_s = time.perf_counter() - t
        times = []
        for i in range(20):
            t = time.perf_counter()
            subprocess.run([str(binary), "--config", str(cfg), "search", f"a red car {i}", "--json"],
                           check=True, capture_output=True)
            times.append((time.perf_counter() - t) * 1000)
        return ingest_s, statistics.median(times)
    finally:
        stop(p, state)


def decode_once(binary: Path, video: Path, fps: float) -> float:
    out = subprocess.run([str(binary), "bench-decode", str(video), "--interval", str(1.0 / fps), "--json"],
                         check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return float(line.get("seconds", line.get("wall_s", 0.0)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=Path, required=True, help="the reference binary")
    ap.add_argument("--b", type=Path, required=True, help="the binary under test")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--fps", default="1,5")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| measure | A median | B median | B/A |")
    print("|---|---|---|---|")
    for fps in [float(x) for x in args.fps.split(",")]:
        runs = {"a": [], "b": []}
        dec = {"a": [], "b": []}
        for r in range(args.reps):
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            for side in order:
                binary = args.a if side == "a" else args.b
                runs[side].append(ingest_once(binary, args.model, args.video, fps))
                dec[side].append(decode_once(binary, args.video, fps))
        for name, pick in (("ingest s", 0), ("query ms", 1)):
            a = statistics.median(x[pick] for x in runs["a"])
            b = statistics.median(x[pick] for x in runs["b"])
            print(f"| {name} at {fps:g} fps | {a:.3f} | {b:.3f} | {b / a:.3f} |")
        a, b = statistics.median(dec["a"]), statistics.median(dec["b"])
        print(f"| bench-decode s at {fps:g} fps | {a:.3f} | {b:.3f} | {b / a:.3f} |")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
