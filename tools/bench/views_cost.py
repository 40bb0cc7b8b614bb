#!/usr/bin/env python3
"""What views cost (issue 16): for each view set (`ingest.views`) and each video, the daemon
(`frameseek serve` on a fresh state folder) ingests the video (`frameseek ingest --wait`, wall
time), then `stats` gives the views stored and the index file's size after a clean stop.
Runs of the view sets alternate per repetition, so a shared machine's drift affects them alike;
the table gives medians and ratios against `centre` (the crop before issue 16) in the same run.

    python3 tools/bench/views_cost.py --binary target/release/frameseek --model DIR \\
        --video /tmp/v/v720.mp4 --video /tmp/v/v1080.mp4 --reps 3 \\
        --views centre,pad,cover,cover+tiles
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ab_daemon import serve  # noqa: E402  (the same daemon start-up as the A/B runs)


def start_daemon(binary: Path, model: Path, root: Path, views: str,
                 interval: float) -> tuple[subprocess.Popen, Path, Path]:
    """`frameseek serve` on a fresh state folder under /tmp with footage root `root` and
    `ingest.views = views` (`ab_daemon`'s start-up); returns the process, its config file and
    the folder."""
    return serve(binary, model, root, interval, views=views, state_parent=Path("/tmp"),
                 prefix="views-")


def ingest_once(binary: Path, model: Path, video: Path, views: str, interval: float) -> dict:
    """Ingest wall seconds, views stored, frames, and the index file's bytes after a stop."""
    p, cfg, state = start_daemon(binary, model, video.parent, views, interval)
    try:
        t = time.perf_counter()
        subprocess.run([str(binary), "--config", str(cfg), "ingest", str(video), "--wait", "--json"],
                       check=True, capture_output=True)
        seconds = time.perf_counter() - t
        stats = json.loads(subprocess.run([str(binary), "--config", str(cfg), "stats", "--json"],
                                          check=True, capture_output=True, text=True).stdout)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    index = (state / "state" / "index.usearch").stat().st_size
    db = sum(f.stat().st_size for f in (state / "state" / "db").rglob("*") if f.is_file())
    shutil.rmtree(state, ignore_errors=True)
    return {"s": seconds, "views": stats["views"], "frames": stats["frames"],
            "index": index, "db": db}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--video", type=Path, action="append", required=True)
    ap.add_argument("--views", default="centre,pad,cover,cover+tiles")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    sets = args.views.split(",")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| video | views | views/frame | ingest s (median) | x centre | index bytes | x centre "
          "| database bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for video in args.video:
        runs: dict[str, list[dict]] = {v: [] for v in sets}
        for r in range(args.reps):
            order = sets if r % 2 == 0 else list(reversed(sets))
            for v in order:
                runs[v].append(ingest_once(args.binary, args.model, video.resolve(), v, args.interval))
        base = statistics.median(x["s"] for x in runs[sets[0]])
        base_index = runs[sets[0]][0]["index"]
        for v in sets:
            s = statistics.median(x["s"] for x in runs[v])
            one = runs[v][0]
            print(f"| {video.name} | {v} | {one['views'] / max(one['frames'], 1):g} | {s:.2f} "
                  f"| {s / base:.2f} | {one['index']} | {one['index'] / base_index:.2f} | {one['db']} |")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
