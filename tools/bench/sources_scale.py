#!/usr/bin/env python3
"""Search latency at the daemon against the number of sources (issue 15): the same number of
frames spread over few or many sources, each state preloaded with
`cargo run --release --example preload_state -- --state DIR --model M --n N --sources S`.
For each binary and state, alternating: a fresh `frameseek serve` on the state, then
`--queries` text searches over the socket (round trip of one JSON line each way, no CLI start
cost): unfiltered, one source (an exact id), the last hour of the library's wall-clock
timeline (`after_wall_ms`; preload_state's timeline ends at 2026-01-01T00:00:00Z), and one
camera's glob (`/bench/synthetic/cam07/*`: 1 % of the frames); p50 and p99 in ms. The daemon's
memory is read after the first answer and after the queries: VmRSS from /proc/PID/status, Rss
and Pss from /proc/PID/smaps_rollup (`--unfiltered-only` runs the unfiltered searches alone;
`--smaps N` prints the N largest mappings by Rss after the queries, to stderr).

    python3 tools/bench/sources_scale.py --binary A=OLD/frameseek --binary B=target/release/frameseek \\
        --state few=/tmp/few --state many=/tmp/many --model assets/models/frameseek-tiny
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ["a", "red", "car", "white", "van", "person", "green", "dog", "street", "night",
         "parking", "lot", "corridor", "blue", "truck", "day"]


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, and smaps' Rss and Pss summed over every mapping, in MB."""
    out = {"VmRSS": rss_mb(pid)}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key] = int(rest.split()[0]) / 1024
    return out


def largest_mappings(pid: int, n: int) -> list[tuple[float, str]]:
    """The `n` mappings of the process with the most resident memory: (MB, what is mapped)."""
    maps, current = [], None
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            current = " ".join(head[5:]) or f"[anon {head[0]}]"
        elif head and head[0] == "Rss:" and current is not None:
            maps.append((int(head[1]) / 1024, current))
    return sorted(maps, reverse=True)[:n]


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def start(binary: Path, state: Path, model: Path, extra_model: str = "") -> tuple[subprocess.Popen, Path, Path]:
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    sock = work / "s.sock"
    cfg = work / "c.toml"
    cfg.write_text(
        f'[daemon]\nsocket = "{sock}"\nstate_dir = "{state}"\nfootage_roots = ["/bench"]\n'
        f'[model]\npath = "{model}"\ndevice = "cpu"\n{extra_model}'
    )
    log = open(work / "log", "w")
    p = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stdout=log, stderr=log)
    deadline = time.time() + 300
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(sock))
            s.close()
            break
        except OSError:
            if p.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{binary} did not start: {(work / 'log').read_text()}")
            time.sleep(0.05)
    return p, sock, work


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]


WALL_END_MS = 1_767_225_600_000


def query_text(i: int) -> str:
    """The i-th search text of a run: three of WORDS."""
    return " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3))


def run_queries(sock: Path, n: int, extra: dict) -> list[float]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))
    f = s.makefile("rwb")
    out = []
    for i in range(n):
        req = {"op": "search", "text": query_text(i), "k": 10, **extra}
        line = (json.dumps(req) + "\n").encode()
        t = time.perf_counter()
        f.write(line)
        f.flush()
        reply = json.loads(f.readline())
        out.append((time.perf_counter() - t) * 1000)
        assert reply.get("ok"), reply
    s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--state", action="append", required=True, help="NAME=DIR")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--text-precision", default="",
                    help="model.text_precision for the daemon (f32 or int8; default: the daemon's)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--source", default="/bench/synthetic/cam42/src000042.mp4",
                    help="the one-source filter")
    ap.add_argument("--camera", default="/bench/synthetic/cam07/*",
                    help="the one-camera glob")
    ap.add_argument("--unfiltered-only", action="store_true",
                    help="only the unfiltered searches (a memory or start-up run)")
    ap.add_argument("--smaps", type=int, default=0,
                    help="print this many of the daemon's largest mappings after the queries")
    args = ap.parse_args()
    binaries = [tuple(b.split("=", 1)) for b in args.binary]
    states = [tuple(s.split("=", 1)) for s in args.state]
    results: dict[tuple[str, str, str], list[float]] = {}
    # Per (state, binary): seconds from `frameseek serve` to the first answer, and the
    # daemon's resident memory after every query of the round.
    starts: dict[tuple[str, str], list[tuple[float, dict, dict]]] = {}
    print(f"load at start: {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        order = binaries if r % 2 == 0 else list(reversed(binaries))
        for sname, sdir in states:
            for bname, bpath in order:
                t0 = time.perf_counter()
                extra = f'text_precision = "{args.text_precision}"\n' if args.text_precision else ""
                p, sock, work = start(Path(bpath), Path(sdir), args.model, extra)
                try:
                    run_queries(sock, 1, {})
                    first = time.perf_counter() - t0
                    at_start = memory_mb(p.pid)
                    run_queries(sock, 20, {})  # warm-up
                    filters = (
                        ("unfiltered", {}),
                        ("one source", {"source": args.source}),
                        ("last hour", {"after_wall_ms": WALL_END_MS - 3_600_000}),
                        ("one camera", {"source": args.camera}),
                    )[:1 if args.unfiltered_only else None]
                    for fname, extra in filters:
                        results.setdefault((sname, bname, fname), []).extend(
                            run_queries(sock, args.queries, extra))
                    starts.setdefault((sname, bname), []).append((first, at_start, memory_mb(p.pid)))
                    if args.smaps:
                        print(f"{sname} {bname} round {r}: largest mappings after the queries",
                              file=sys.stderr)
                        for mb, what in largest_mappings(p.pid, args.smaps):
                            print(f"  {mb:9.1f} MB  {what}", file=sys.stderr)
                finally:
                    p.send_signal(signal.SIGTERM)
                    p.wait(timeout=120)
                    shutil.rmtree(work, ignore_errors=True)
    print(f"load at end: {os.getloadavg()[0]:.2f}")
    print("| state | binary | disk MB | serve to first answer s (each start) "
          "| VmRSS after the first answer MB | VmRSS / Rss / Pss after the queries MB |")
    print("|---|---|---|---|---|---|")
    for (sname, bname), xs in sorted(starts.items()):
        sdir = dict(states)[sname]
        firsts = ", ".join(f"{f:.2f}" for f, _, _ in xs)
        at_start = ", ".join(f"{m['VmRSS']:.0f}" for _, m, _ in xs)
        after = ", ".join(f"{m['VmRSS']:.0f} / {m['Rss']:.0f} / {m['Pss']:.0f}" for _, _, m in xs)
        print(f"| {sname} | {bname} | {disk_mb(Path(sdir)):.0f} | {firsts} | {at_start} | {after} |")
    print("| state | binary | filter | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for (sname, bname, fname), xs in sorted(results.items()):
        print(f"| {sname} | {bname} | {fname} | {statistics.median(xs):.2f} | {percentile(xs, 0.99):.2f} |")


if __name__ == "__main__":
    main()
