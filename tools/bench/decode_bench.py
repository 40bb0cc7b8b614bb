#!/usr/bin/env python3
"""Issue 4's decode benchmark: frameseek's decode-and-sample stage (`frameseek bench-decode`)
against the `ffmpeg` command doing the same sampling and scaling, alternating in one sitting.

Standard library only. Writes the 1080p H.264 test file (2 s GOP) under target/bench/ if it
is missing, then for each repetition runs, in rotating order:

  fs-interval   frameseek, interval policy at 1 frame/s, 224x224 model input
  ff-interval   ffmpeg -vf fps=1,scale=-2:224,crop=224:224 (rgb24, discarded)
  fs-keyframes  frameseek, keyframes policy (one frame per 2 s GOP)
  ff-every      ffmpeg -vf fps=0.5,scale,crop: the same output rate, every frame decoded

and prints medians and the ratios the issue asks for. Usage:

  python3 tools/bench/decode_bench.py [--reps 5] [--threads 2] [--seconds 60]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def footage(seconds):
    path = os.path.join(ROOT, "target", "bench", "footage", f"h264-1080p-gop2s-{seconds}s.mp4")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size=1920x1080:rate=30:duration={seconds}", "-c:v", "libx264",
             "-preset", "medium", "-crf", "23", "-g", "60", "-keyint_min", "60",
             "-sc_threshold", "0", "-pix_fmt", "yuv420p", path],
            check=True)
    return path


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "frameseek"))
    args = ap.parse_args()
    video = footage(args.seconds)
    t = str(args.threads)
    fs = lambda policy, interval: [args.binary, "bench-decode", video, "--policy", policy,
                                   "--interval", str(interval), "--threads", t]
    ff = lambda rate: ["ffmpeg", "-hide_banner", "-loglevel", "error", "-threads", t, "-i", video,
                       "-vf", f"fps={rate},scale=-2:224:flags=bicubic,crop=224:224",
                       "-pix_fmt", "rgb24", "-f", "null", "-"]
    runs = {
        "fs-interval": fs("interval", 1.0),
        "ff-interval": ff(1),
        "fs-keyframes": fs("keyframes", 2.0),
        "ff-every": ff(0.5),
    }
    names = list(runs)
    times = {n: [] for n in names}
    info = {}
    load = [os.getloadavg()[0]]
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for n in order:
            wall, out = timed(runs[n])
            times[n].append(wall)
            if n.startswith("fs-"):
                info[n] = json.loads(out.strip().splitlines()[-1])
        load.append(os.getloadavg()[0])
    med = {n: statistics.median(v) for n, v in times.items()}
    print(f"# {video}, {args.reps} reps, {args.threads} decoder threads, "
          f"{os.cpu_count()} cores, load {min(load):.1f}-{max(load):.1f}")
    print("| run | median s | every run, s | frames decoded / kept |")
    print("|---|---|---|---|")
    for n in names:
        frames = (f"{info[n]['decoded']} / {info[n]['kept']}" if n in info else "all / "
                  + str(args.seconds if n == "ff-interval" else args.seconds // 2))
        print(f"| {n} | {med[n]:.3f} | {', '.join(f'{x:.2f}' for x in times[n])} | {frames} |")
    print(f"\ninterval 1 fps: frameseek is {med['ff-interval'] / med['fs-interval']:.2f}x "
          f"the ffmpeg command (target >= 1.5x)")
    print(f"keyframes: frameseek is {med['ff-every'] / med['fs-keyframes']:.2f}x decoding "
          f"every frame with the ffmpeg command (target >= 10x)")
    print(f"keyframes vs frameseek interval 1 fps: "
          f"{med['fs-interval'] / med['fs-keyframes']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
