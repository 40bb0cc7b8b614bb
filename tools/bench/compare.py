#!/usr/bin/env python3
"""frameseek vs the Python pipeline (issue 8) and search while ingesting (issue 6).

Run from the repository root with the torch venv, after `cargo build --release --examples`:

    .venv-torch/bin/python tools/bench/compare.py --reps 3 --fps 1,5 --query-n 100000

Against the careful Python user (issue 20): `--python-producer --python-batches 4,8,16,32`
first tunes the producer-thread pipeline's batch per sampling rate, then alternates it with
frameseek.

Steps (everything is written under target/bench/, nothing is committed):

1. A 60 s 720p H.264 test video, rendered with the ffmpeg command (VIDEO_CMD below).
2. A random-weight ViT-B/32 CLIP checkpoint in Hugging Face layout, written by
   tools/make_random_clip.py (MODEL_CMD below).
3. Ingest, alternating per repetition: the Python pipeline (python_pipeline.py, in a fresh
   process; peak RSS from getrusage) vs frameseek end-to-end (a fresh `frameseek serve` on a
   temporary state folder and socket, device cpu; wall time of `frameseek ingest --wait`;
   peak RSS = the daemon's VmHWM read before it is stopped; per-stage totals from `stats`).
   Same sampling rate, same thread count (torch threads / RAYON_NUM_THREADS, and 2 FFmpeg
   frame threads on both sides).
4. Text query latency, alternating query by query: frameseek over the socket (tokenise +
   text tower + filtered usearch search + clip grouping + reply) on a daemon whose state
   folder was preloaded with N synthetic vectors by `examples/preload_state.rs`, vs the
   Python pipeline in this process (tokenizer + get_text_features + numpy matmul over N
   vectors + argmax).
5. Search while ingesting: the same daemon answers queries idle, then while it ingests the
   test video at 5 fps, then idle again.

Results go to stdout (markdown tables) and to --out as JSON.
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

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "target" / "bench"
FRAMESEEK = ROOT / "target" / "release" / "frameseek"
PRELOAD = ROOT / "target" / "release" / "examples" / "preload_state"
MODEL = BENCH / "clip-vit-b32-random"
VIDEO = BENCH / "footage" / "test-720p-60s.mp4"
PY = sys.executable

VIDEO_CMD = [
    "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60",
    "-c:v", "libx264", "-preset", "medium", "-crf", "23", "-pix_fmt", "yuv420p",
    str(VIDEO),
]
MODEL_CMD = [
    PY, str(ROOT / "tools" / "make_random_clip.py"), "--out", str(MODEL),
    "--tokenizer", str(ROOT / "assets" / "models" / "tiny-random-clip" / "tokenizer.json"),
    "--image-size", "224", "--patch-size", "32",
    "--vision-hidden", "768", "--vision-layers", "12", "--vision-heads", "12",
    "--text-hidden", "512", "--text-layers", "12", "--text-heads", "8",
    "--projection-dim", "512", "--hidden-act", "quick_gelu", "--seed", "0",
]

WORDS = ["a", "red", "car", "dog", "running", "on", "the", "beach", "at", "night", "city",
         "street", "people", "walking", "snow", "mountain", "sunset", "boat", "water", "green",
         "forest", "man", "woman", "child", "playing", "football", "kitchen", "cooking",
         "bicycle", "bridge", "rain", "crowd", "concert", "stage", "lights", "airplane"]


def queries(n: int) -> list[str]:
    out = []
    for i in range(n):
        k = 3 + i % 6
        out.append(" ".join(WORDS[(i * 7 + j * 11) % len(WORDS)] for j in range(k)) + f" {i}")
    return out


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[round(p / 100 * (len(s) - 1))]


def med(v: list[float]) -> float:
    return statistics.median(v)


def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


class Daemon:
    """A `frameseek serve` on its own state folder and socket."""

    # Extra `[ingest]` lines for the daemon's configuration (e.g. "nice = 0"); set by --ingest-extra.
    INGEST_EXTRA = ""
    # FFmpeg threads per decoder (`ingest.decoder_threads`); 0 = the daemon's automatic
    # choice (one per 2 x decode_workers cores on the CPU). Set by --decoder-threads.
    DECODER_THREADS = 0

    def __init__(self, state: Path, roots: list[Path], interval: float, threads: int,
                 batch: int = 32, decode_workers: int = 1, extra_model: str = ""):
        self.dir = state
        state.mkdir(parents=True, exist_ok=True)
        self.socket = state / "fs.sock"
        self.cfg = state / "frameseek.toml"
        self.cfg.write_text(
            "[daemon]\n"
            f'socket = "{self.socket}"\n'
            f'state_dir = "{state / "state"}"\n'
            f"footage_roots = {json.dumps([str(r) for r in roots])}\n"
            "[model]\n"
            f'path = "{MODEL}"\n'
            'device = "cpu"\n'
            f"batch_size = {batch}\n"
            + extra_model
            + "[ingest]\n"
            f"sample_interval = {interval}\n"
            f"clip_gap = {2 * interval}\n"
            f"decode_workers = {decode_workers}\n"
            f"decoder_threads = {Daemon.DECODER_THREADS}\n"
            + (Daemon.INGEST_EXTRA + "\n" if Daemon.INGEST_EXTRA else "")
        )
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RUST_LOG="info")
        self.log = open(state / "daemon.log", "w")
        self.proc = subprocess.Popen([str(FRAMESEEK), "--config", str(self.cfg), "serve"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.conn = None
        deadline = time.time() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {(state / 'daemon.log').read_text()[-2000:]}")
            if self.socket.exists():
                try:
                    self.request({"op": "status"})
                    break
                except OSError:
                    self.conn = None
            if time.time() > deadline:
                raise RuntimeError("daemon did not come up")
            time.sleep(0.1)

    def request(self, obj: dict) -> dict:
        if self.conn is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(self.socket))
            self.conn = (s, s.makefile("rb"))
        s, f = self.conn
        s.sendall(json.dumps(obj).encode() + b"\n")
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        reply = json.loads(line)
        if not reply.get("ok", True):
            raise RuntimeError(f"daemon error: {reply}")
        return reply

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(FRAMESEEK), "--config", str(self.cfg), *args],
                              capture_output=True, text=True, check=True)

    def hwm(self) -> int:
        return vm(self.proc.pid, "VmHWM:")

    def rss(self) -> int:
        return vm(self.proc.pid, "VmRSS:")

    def stop(self) -> None:
        if self.conn is not None:
            self.conn[0].close()
            self.conn = None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


# Environment of the Python pipeline's process (--python-env adds to it).
PY_ENV = dict(os.environ)


# The Python pipeline's form (--python-producer) and batch per sampling rate (--python-batch,
# or the fastest of --python-batches found by `tune_python_batch`).
PY_PRODUCER = False
PY_BATCH: dict[float, int] = {}


def python_ingest(fps: float, threads: int, batch: int | None = None) -> dict:
    batch = batch or PY_BATCH.get(fps, 32)
    out = subprocess.run([PY, str(ROOT / "tools" / "bench" / "python_pipeline.py"), "ingest",
                          "--model", str(MODEL), "--video", str(VIDEO), "--fps", str(fps),
                          "--threads", str(threads), "--batch", str(batch)]
                         + (["--producer"] if PY_PRODUCER else []),
                         capture_output=True, text=True, check=True, env=PY_ENV)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tune_python_batch(a, fps: float, results: dict) -> None:
    """Runs the Python pipeline at each of --python-batches (--tune-reps times each, batch
    sizes interleaved) and keeps the batch with the lowest median wall time for `fps`."""
    walls: dict[int, list[float]] = {b: [] for b in a.python_batches}
    for rep in range(a.tune_reps):
        for b in a.python_batches:
            r = python_ingest(fps, a.threads, b)
            walls[b].append(r["wall_s"])
            print(f"  tune fps={fps} rep={rep} Python batch {b}: {r['wall_s']:.2f} s, load {load()}",
                  file=sys.stderr, flush=True)
    best = min(walls, key=lambda b: med(walls[b]))
    PY_BATCH[fps] = best
    results.setdefault("python_tuning", {})[str(fps)] = {"walls": walls, "best": best}
    print(f"\nPython batch at {fps:g} fps ({'producer thread' if PY_PRODUCER else 'sequential'}): "
          + ", ".join(f"{b}: {med(w):.2f} s" for b, w in walls.items()) + f"; best {best}")


def frameseek_ingest(fps: float, threads: int) -> dict:
    with tempfile.TemporaryDirectory(dir=BENCH) as tmp:
        d = Daemon(Path(tmp), [VIDEO.parent], 1.0 / fps, threads)
        try:
            t = time.perf_counter()
            d.cli("ingest", "--wait", str(VIDEO))
            wall = time.perf_counter() - t
            stats = d.request({"op": "stats"})
            status = d.request({"op": "status"})
            hwm = d.hwm()
        finally:
            d.stop()
        return {"wall_s": wall, "peak_rss_bytes": hwm, "stats": stats,
                "frames": status.get("frames"),
                "sources": [(s["state"], s["frames"]) for s in status.get("sources", [])]}


def ingest_bench(a, results: dict) -> None:
    rows = []
    for fps in a.fps:
        if a.python_batches:
            tune_python_batch(a, fps, results)
        runs = {"python": [], "frameseek": []}
        for rep in range(a.reps):
            order = ["python", "frameseek"] if rep % 2 == 0 else ["frameseek", "python"]
            for who in order:
                r = python_ingest(fps, a.threads) if who == "python" else frameseek_ingest(fps, a.threads)
                r["load"] = load()
                runs[who].append(r)
                print(f"  fps={fps} rep={rep} {who}: {r['wall_s']:.2f} s, peak RSS "
                      f"{r['peak_rss_bytes'] / 1e6:.0f} MB, load {r['load']}", file=sys.stderr, flush=True)
        results.setdefault("ingest", {})[str(fps)] = runs
        py = med([r["wall_s"] for r in runs["python"]])
        fs = med([r["wall_s"] for r in runs["frameseek"]])
        rows.append((fps, py, fs, py / fs,
                     med([r["peak_rss_bytes"] for r in runs["python"]]) / 1e6,
                     med([r["peak_rss_bytes"] for r in runs["frameseek"]]) / 1e6,
                     runs))
    print("\n| sampling | frames kept | Python median s | frameseek median s | speed-up (Python / frameseek) "
          "| Python peak RSS MB | frameseek peak RSS MB | runs (Python; frameseek) |")
    print("|---|---|---|---|---|---|---|---|")
    for fps, py, fs, ratio, prss, frss, runs in rows:
        each = "; ".join([", ".join(f"{r['wall_s']:.1f}" for r in runs["python"]),
                          ", ".join(f"{r['wall_s']:.1f}" for r in runs["frameseek"])])
        print(f"| {fps:g} fps | {runs['python'][0]['kept']} / {runs['frameseek'][0]['frames']} | {py:.2f} "
              f"| {fs:.2f} | {ratio:.2f}x | {prss:.0f} | {frss:.0f} | {each} |")
    print("\nPer-stage time, medians over the repetitions (s; frameseek decode/convert/hand-off run on "
          "the decode thread, embed/commit on the embed thread, so they overlap):\n")
    print("| sampling | pipeline | decode | convert | hand-off wait | embed | commit/store | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for fps, _, _, _, _, _, runs in rows:
        st = lambda r, k: r["stages_s"][k]  # noqa: E731
        p = runs["python"]
        print(f"| {fps:g} fps | Python | {med([st(r, 'decode') for r in p]):.2f} | "
              f"{med([st(r, 'convert') for r in p]):.2f} | - | {med([st(r, 'embed') for r in p]):.2f} | "
              f"{med([st(r, 'store') for r in p]):.3f} | {med([r['wall_s'] for r in p]):.2f} |")
        f = runs["frameseek"]
        sm = lambda k: med([r["stats"].get("stage_ms", {}).get(k, float("nan")) / 1000 for r in f])  # noqa: E731
        print(f"| {fps:g} fps | frameseek | {sm('decode'):.2f} | {sm('convert'):.2f} | {sm('handoff'):.2f} "
              f"| {sm('embed'):.2f} | {sm('commit'):.3f} | {med([r['wall_s'] for r in f]):.2f} |")
    print("\nHow busy each frameseek stage was (stage time / wall, medians over the repetitions; the decode "
          "thread's decode + convert, the embed stage's embed, the commit's sled + index time):\n")
    print("| sampling | decode thread busy | decode thread blocked on hand-off | embed busy | commit busy |")
    print("|---|---|---|---|---|")
    for fps, _, _, _, _, _, runs in rows:
        f = runs["frameseek"]
        busy = lambda *ks: med([sum(r["stats"].get("stage_ms", {}).get(k, 0.0) for k in ks) / 1000  # noqa: E731
                                / r["wall_s"] for r in f]) * 100
        print(f"| {fps:g} fps | {busy('decode', 'convert'):.0f} % | {busy('handoff'):.0f} % | {busy('embed'):.0f} % "
              f"| {busy('commit'):.1f} % |")


def scaling_bench(a, results: dict) -> None:
    """Ingest throughput of one daemon with 1, 2, 4 sources submitted at once, per batch size.

    The sources are copies of the test video (distinct paths, so distinct sources). Each
    cell is a fresh daemon; frames/s = all sampled frames / wall time of `ingest --wait` over
    all sources. The Python pipeline's single-source rate at the same sampling is measured
    at the start of each batch-size row, in the same sitting.
    """
    copies = []
    for i in range(max(a.scaling_sources)):
        c = BENCH / "footage-copies" / f"copy{i}.mp4"
        if not c.exists():
            c.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(VIDEO, c)
        copies.append(c)
    fps = a.fps[0]
    rows = []
    for batch in a.scaling_batches:
        py = python_ingest(fps, a.threads)
        row = {"batch": batch, "python_fps": py["kept"] / py["wall_s"], "python": py, "cells": {}}
        for n in a.scaling_sources:
            with tempfile.TemporaryDirectory(dir=BENCH) as tmp:
                d = Daemon(Path(tmp), [copies[0].parent], 1.0 / fps, a.threads, batch=batch,
                           decode_workers=min(n, a.scaling_workers))
                try:
                    t = time.perf_counter()
                    d.cli("ingest", "--wait", *[str(c) for c in copies[:n]])
                    wall = time.perf_counter() - t
                    stats = d.request({"op": "stats"})
                    frames = d.request({"op": "status"}).get("frames")
                    hwm = d.hwm()
                finally:
                    d.stop()
            row["cells"][n] = {"wall_s": wall, "frames": frames, "fps": frames / wall, "stats": stats,
                               "peak_rss_bytes": hwm, "load": load()}
            print(f"  scaling batch={batch} sources={n}: {frames} frames in {wall:.2f} s "
                  f"({frames / wall:.1f} frames/s; Python 1 source {row['python_fps']:.1f}), load {load()}",
                  file=sys.stderr, flush=True)
        rows.append(row)
    results["scaling"] = rows
    print(f"\nScaling at {fps:g} fps (frames/s over all sources; decode_workers = min(sources, "
          f"{a.scaling_workers}); {a.threads} threads):\n")
    head = " | ".join(f"{n} source{'s' if n > 1 else ''} frames/s (x Python)" for n in a.scaling_sources)
    print(f"| batch | Python 1 source frames/s | {head} |")
    print("|---" * (2 + len(a.scaling_sources)) + "|")
    for r in rows:
        cells = " | ".join(f"{r['cells'][n]['fps']:.1f} ({r['cells'][n]['fps'] / r['python_fps']:.2f}x)"
                           for n in a.scaling_sources)
        print(f"| {r['batch']} | {r['python_fps']:.1f} | {cells} |")


def query_bench(a, results: dict) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    from python_pipeline import Pipeline

    for n in a.query_n:
        state = BENCH / f"query-state-{n}"
        if not (state / "state" / "index.usearch").exists():
            shutil.rmtree(state, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([str(PRELOAD), "--state", str(state / "state"), "--model", str(MODEL),
                            "--n", str(n)], check=True)
            print(f"  preloaded {n} vectors in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        p = Pipeline(str(MODEL), a.threads)
        rng = np.random.default_rng(0)
        cent = rng.standard_normal((4096, 512)).astype(np.float32)
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        vec = cent[rng.integers(0, 4096, n)] + rng.standard_normal((n, 512)).astype(np.float32) * (0.6 / 512 ** 0.5)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        p.vectors = vec.astype(np.float32)
        extra = f'text_precision = "{a.text_precision}"\n' if a.text_precision else ""
        t_start = time.perf_counter()
        d = Daemon(state, [VIDEO.parent], 0.2, a.threads, extra_model=extra)
        try:
            qs = queries(a.queries + 5)
            # Start to first answer: process start, model, database and index load, one query.
            d.request({"op": "search", "text": qs[0], "k": 10})
            first_answer_s = time.perf_counter() - t_start
            print(f"  daemon start to first answer over {n} frames: {first_answer_s:.2f} s "
                  f"(RSS {d.rss() / 1e6:.0f} MB)", file=sys.stderr, flush=True)
            for q in qs[:5]:  # warm-up, both sides
                d.request({"op": "search", "text": q, "k": 10})
                p.query(q)
            import torch

            # Each side alone first: Python's OpenMP threads keep spinning for a while after
            # each op and slow a process that runs right after them on 2 cores.
            def timed(fn, texts):
                out = []
                for q in texts:
                    t = time.perf_counter()
                    fn(q)
                    out.append((time.perf_counter() - t) * 1000)
                return out

            if a.load_only:
                del p
                search_under_ingest(a, d, qs, results, n)
                continue
            alone = {"frameseek": timed(lambda q: d.request({"op": "search", "text": q, "k": 10}), qs[5:])}
            torch.set_num_threads(1)
            alone["python_1thread"] = timed(p.query, qs[5:])
            torch.set_num_threads(a.threads)
            time.sleep(1)
            alone["frameseek_again"] = timed(lambda q: d.request({"op": "search", "text": q, "k": 10}), qs[5:])
            # A 1 % source filter (one source of the preload's 100): the catalog's exact path.
            one = {"op": "search", "k": 10, "source": "/bench/synthetic/cam37/src000037.mp4"}
            alone["frameseek_1pct_source_filter"] = timed(lambda q: d.request({**one, "text": q}), qs[5:])
            fs, py, py1 = [], [], []
            for q in qs[5:]:
                t = time.perf_counter()
                r = d.request({"op": "search", "text": q, "k": 10})
                fs.append((time.perf_counter() - t) * 1000)
                assert r.get("clips"), r
                t = time.perf_counter()
                p.query(q)
                py.append((time.perf_counter() - t) * 1000)
                # Same query with one torch thread: on an oversubscribed machine the 2-thread
                # OpenMP barriers of every small op dominate (see BENCHMARKS.md).
                torch.set_num_threads(1)
                t = time.perf_counter()
                p.query(q)
                py1.append((time.perf_counter() - t) * 1000)
                torch.set_num_threads(a.threads)
            results.setdefault("query", {})[str(n)] = {"frameseek_ms": fs, "python_ms": py, "python_1thread_ms": py1,
                                                        "alone_ms": alone, "load": load(), "daemon_rss": d.rss(),
                                                        "first_answer_s": first_answer_s}
            print(f"\nEach side alone, {len(qs) - 5} queries (frameseek, then Python 1 thread, then frameseek):\n")
            print("| run | p50 ms | p99 ms |")
            print("|---|---|---|")
            for name, v in alone.items():
                print(f"| {name} alone | {pct(v, 50):.1f} | {pct(v, 99):.1f} |")
            print(f"\nText query latency, N = {n} stored vectors, {len(fs)} queries alternating "
                  f"(load {load()}):\n")
            print("| pipeline | p50 ms | p99 ms | mean ms |")
            print("|---|---|---|---|")
            print(f"| frameseek daemon (socket round trip, k = 10 clips) | {pct(fs, 50):.1f} | {pct(fs, 99):.1f} "
                  f"| {statistics.mean(fs):.1f} |")
            print(f"| Python (tokenizer + get_text_features + matmul + argmax) | {pct(py, 50):.1f} "
                  f"| {pct(py, 99):.1f} | {statistics.mean(py):.1f} |")
            print(f"| Python, torch 1 thread (same queries, alternating) | {pct(py1, 50):.1f} | {pct(py1, 99):.1f} "
                  f"| {statistics.mean(py1):.1f} |")
            print(f"| ratio Python ({a.threads} threads) / frameseek | {pct(py, 50) / pct(fs, 50):.2f}x "
                  f"| {pct(py, 99) / pct(fs, 99):.2f}x | |")
            print(f"| ratio Python (1 thread) / frameseek | {pct(py1, 50) / pct(fs, 50):.2f}x "
                  f"| {pct(py1, 99) / pct(fs, 99):.2f}x | |")
            if a.load_test:
                del p
                search_under_ingest(a, d, qs, results, n)
        finally:
            d.stop()


def search_under_ingest(a, d: Daemon, qs: list[str], results: dict, n: int) -> None:
    def batch(count: int) -> list[float]:
        out = []
        for i in range(count):
            t = time.perf_counter()
            d.request({"op": "search", "text": qs[i % len(qs)], "k": 10})
            out.append((time.perf_counter() - t) * 1000)
        return out

    # A previous run may have ingested the video into this state already: forget it first.
    for s in d.request({"op": "status"}).get("sources", []):
        if s["source"].endswith(VIDEO.name):
            d.request({"op": "forget", "source": s["source"]})
    idle1 = batch(a.queries)
    d.request({"op": "ingest", "paths": [str(VIDEO)]})
    busy = []
    t0 = time.perf_counter()
    i = 0
    while True:
        if a.busy_rate > 0:  # paced: one query every 1/rate s (open loop), not back to back
            time.sleep(max(0.0, t0 + i / a.busy_rate - time.perf_counter()))
        t = time.perf_counter()
        d.request({"op": "search", "text": qs[i % len(qs)], "k": 10})
        busy.append((time.perf_counter() - t) * 1000)
        i += 1
        if i % 10 == 0:
            st = d.request({"op": "status"})
            mine = [s for s in st.get("sources", []) if s["source"].endswith(VIDEO.name)]
            if mine and mine[0]["state"] in ("done", "failed"):
                break
    ingest_s = time.perf_counter() - t0
    idle2 = batch(a.queries)
    results["under_ingest"] = {"idle_before": idle1, "busy": busy, "idle_after": idle2,
                               "ingest_s": ingest_s, "load": load()}
    idle = idle1 + idle2
    pace = f"at {a.busy_rate:g} per second" if a.busy_rate > 0 else "back to back"
    print(f"\nSearch while ingesting (N = {n} stored vectors; ingest of the 60 s 720p video at 5 fps "
          f"took {ingest_s:.1f} s while queries ran {pace}; load {load()}):\n")
    print("| phase | queries | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, v in [("idle, before", idle1), ("during ingest", busy), ("idle, after", idle2), ("idle, both", idle)]:
        print(f"| {name} | {len(v)} | {pct(v, 50):.1f} | {pct(v, 99):.1f} |")
    print(f"| ratio during / idle | | {pct(busy, 50) / pct(idle, 50):.2f}x | {pct(busy, 99) / pct(idle, 99):.2f}x |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fps", default="1,5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decoder-threads", type=int, default=0,
                    help="frameseek's FFmpeg threads per decoder (default 0: the daemon's automatic "
                         "choice, 1 per 2 x decode_workers cores on the CPU)")
    ap.add_argument("--query-n", default="100000", help="comma-separated stored-vector counts; empty = skip")
    ap.add_argument("--queries", type=int, default=120)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--load-test", action="store_true", help="also run search while ingesting (issue 6)")
    ap.add_argument("--load-only", action="store_true",
                    help="with --load-test: skip the Python query comparison, run only search while ingesting")
    ap.add_argument("--busy-rate", type=float, default=0.0,
                    help="queries per second during the ingest (0 = back to back)")
    ap.add_argument("--ingest-extra", default="",
                    help='extra [ingest] lines for the daemon, e.g. "nice = 0" (newer builds only)')
    ap.add_argument("--scaling", action="store_true",
                    help="ingest throughput with --scaling-sources sources at once per --scaling-batches "
                         "batch size (at the first --fps), instead of the side-by-side ingest runs")
    ap.add_argument("--scaling-sources", default="1,2,4")
    ap.add_argument("--scaling-batches", default="8,16,32,64")
    ap.add_argument("--scaling-workers", type=int, default=2, help="most decode workers in the scaling runs")
    ap.add_argument("--python-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment for the Python ingest process, e.g. OMP_WAIT_POLICY=PASSIVE "
                         "(PyTorch's best setting on a busy machine)")
    ap.add_argument("--python-producer", action="store_true",
                    help="the Python pipeline decodes and preprocesses in a producer thread (issue 20)")
    ap.add_argument("--python-batch", type=int, default=32, help="the Python pipeline's batch size")
    ap.add_argument("--python-batches", default="",
                    help="comma-separated batch sizes to try first per sampling rate (e.g. 4,8,16,32); "
                         "the fastest is used for the side-by-side runs")
    ap.add_argument("--tune-reps", type=int, default=2, help="runs per batch size when tuning")
    ap.add_argument("--text-precision", default="", help="model.text_precision of the query daemon (f32, int8)")
    ap.add_argument("--out", type=Path, default=BENCH / "compare.json")
    ap.add_argument("--frameseek", type=Path, default=ROOT / "target" / "release" / "frameseek",
                    help="the frameseek binary to measure (e.g. a copy of an older build, to compare "
                         "before and after a change in one sitting)")
    a = ap.parse_args()
    global FRAMESEEK
    FRAMESEEK = a.frameseek.resolve()
    Daemon.INGEST_EXTRA = a.ingest_extra.replace("\\n", "\n")
    Daemon.DECODER_THREADS = a.decoder_threads
    PY_ENV.update(kv.split("=", 1) for kv in a.python_env)
    a.fps = [float(x) for x in a.fps.split(",") if x]
    global PY_PRODUCER
    PY_PRODUCER = a.python_producer
    a.python_batches = [int(x) for x in a.python_batches.split(",") if x]
    PY_BATCH.update((fps, a.python_batch) for fps in a.fps)
    a.scaling_sources = [int(x) for x in a.scaling_sources.split(",") if x]
    a.scaling_batches = [int(x) for x in a.scaling_batches.split(",") if x]
    a.query_n = [int(x) for x in a.query_n.split(",") if x]
    BENCH.mkdir(parents=True, exist_ok=True)
    if not VIDEO.exists():
        VIDEO.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(VIDEO_CMD, check=True)
    if not (MODEL / "model.safetensors").exists():
        subprocess.run(MODEL_CMD, check=True)
    results: dict = {"nproc": os.cpu_count(), "load_start": load(), "threads": a.threads,
                     "frameseek": str(FRAMESEEK), "python_env": a.python_env}
    print(f"nproc {os.cpu_count()}, threads {a.threads}, load at start {load()}, binary {FRAMESEEK}")
    if a.scaling:
        scaling_bench(a, results)
    elif not a.skip_ingest:
        ingest_bench(a, results)
    if a.query_n:
        query_bench(a, results)
    results["load_end"] = load()
    print(f"\nload at end {load()}")
    a.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
