#!/usr/bin/env python3
"""frameseek's query against Python with the same kind of index (issue 20, item 4): usearch's
Python binding on the index file the daemon wrote (the same vectors, graph, metric, f16
scalars, connectivity 16 and expansion_search 256 as `src/index.rs`), so the ratio compares
implementations, not algorithms.

1. Component, the index alone: the query vectors are the CLIP text embeddings (transformers,
   float32) of `sources_scale.query_text(i)`; `examples/index_alone.rs` (frameseek's usearch
   settings, Rust) and usearch's Python `Index.search` search them one at a time; p50/p99 of
   the search call alone, and how many queries found the same top k on both sides.
2. Daemon level, with the text embedding: a fresh `frameseek serve` on the state, text searches
   over its socket (one JSON line each way, no CLI start-up), against a warm Python process
   doing what a careful user writes: CLIPTokenizerFast + CLIPModel.get_text_features
   (float32, and int8-dynamic-quantised linear layers) + normalise + usearch `Index.search`
   on the same index file, torch on `--threads` threads.
Rounds alternate the order of the sides.

    python3 -m venv /tmp/qv && /tmp/qv/bin/pip install -r tools/bench/requirements.txt usearch==2.26.6
    cargo build --release --example index_alone
    /tmp/qv/bin/python tools/bench/query_vs_usearch.py --state STATE --model MODEL_DIR \\
        --binary target/release/frameseek --queries 200 --rounds 2
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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from usearch.index import Index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from python_pipeline import Pipeline  # noqa: E402
from sources_scale import percentile, query_text, run_queries, start  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
K = 10
# src/index.rs: `options` and DEFAULT_EXPANSION_SEARCH.
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 256


def ms_stats(xs: list[float]) -> tuple[float, float]:
    return statistics.median(xs), percentile(xs, 0.99)


def python_index(path: Path, dim: int) -> tuple[Index, float]:
    index = Index(ndim=dim, metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                  expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
    t = time.perf_counter()
    index.load(str(path))
    index.expansion_search = EXPANSION_SEARCH
    return index, time.perf_counter() - t


def python_search_alone(index: Index, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    times, keys = [], []
    for q in queries:
        t = time.perf_counter()
        m = index.search(q, K)
        times.append((time.perf_counter() - t) * 1000)
        keys.append([int(k) for k in m.keys])
    return times, keys


def python_daemon_like(pipe: Pipeline, index: Index, n: int) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        q = pipe.embed_text(query_text(i))
        index.search(q, K)
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, required=True, help="a state folder with index.usearch")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/frameseek")
    ap.add_argument("--index-alone", type=Path, default=None,
                    help="the index_alone example binary (default: beside --binary, examples/)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the Python side")
    ap.add_argument("--text-precision", action="append", default=None,
                    help="the daemon's model.text_precision, repeatable (default: int8 and f32)")
    args = ap.parse_args()
    precisions = args.text_precision or ["int8", "f32"]
    alone_bin = args.index_alone or args.binary.parent / "examples" / "index_alone"
    index_file = args.state / "index.usearch"
    print(f"load at start: {os.getloadavg()[0]:.2f}", flush=True)

    pipe = Pipeline(str(args.model), threads=args.threads)
    dim = pipe.model.config.projection_dim
    queries = np.stack([pipe.embed_text(query_text(i)) for i in range(args.queries)]).astype("<f4")
    work = Path(tempfile.mkdtemp(prefix="query-vs-usearch-"))
    qfile = work / "queries.f32"
    qfile.write_bytes(queries.tobytes())
    index, py_load = python_index(index_file, dim)
    print(f"usearch (Python) loaded {len(index):,} vectors in {py_load:.2f} s", flush=True)

    # 1. The index alone.
    rust_ms: list[float] = []
    rust_filtered_ms: list[float] = []
    py_ms: list[float] = []
    same = total = 0
    for r in range(args.rounds):
        for side in (["rust", "python"] if r % 2 == 0 else ["python", "rust"]):
            if side == "rust":
                out = subprocess.run([str(alone_bin), str(index_file), str(qfile), str(dim), str(K)],
                                     check=True, capture_output=True, text=True).stdout
                res = json.loads(out)
                rust_ms.append(res["search_ms"]["p50"])
                rust_filtered_ms.append(res["filtered_search_ms"]["p50"])
                rust_p99 = (res["search_ms"]["p99"], res["filtered_search_ms"]["p99"])
                rust_keys = res["keys"]
            else:
                times, py_keys = python_search_alone(index, queries)
                py_ms.extend(times)
        same += sum(set(a) == set(b) for a, b in zip(rust_keys, py_keys))
        total += len(py_keys)
        print(f"round {r}: rust search p50 {rust_ms[-1]:.3f} ms (p99 {rust_p99[0]:.3f}), "
              f"filtered {rust_filtered_ms[-1]:.3f} (p99 {rust_p99[1]:.3f}); python "
              f"p50/p99 {ms_stats(py_ms[-args.queries:])[0]:.3f}/{ms_stats(py_ms[-args.queries:])[1]:.3f}",
              flush=True)

    # 2. Daemon level, text embedding included.
    pipe_int8 = Pipeline(str(args.model), threads=args.threads)
    pipe_int8.model = torch.ao.quantization.quantize_dynamic(pipe_int8.model, {torch.nn.Linear},
                                                             dtype=torch.qint8)
    daemon: dict[str, list[float]] = {}
    starts: dict[str, list[float]] = {}
    sides = [f"frameseek {p}" for p in precisions] + ["python f32", "python int8"]
    for r in range(args.rounds):
        for side in (sides if r % 2 == 0 else list(reversed(sides))):
            if side.startswith("frameseek"):
                precision = side.split()[1]
                t0 = time.perf_counter()
                p, sock, swork = start(args.binary, args.state, args.model,
                                       f'text_precision = "{precision}"\n')
                try:
                    run_queries(sock, 1, {})
                    starts.setdefault(side, []).append(time.perf_counter() - t0)
                    run_queries(sock, 20, {})
                    daemon.setdefault(side, []).extend(run_queries(sock, args.queries, {}))
                finally:
                    p.send_signal(signal.SIGTERM)
                    p.wait(timeout=120)
                    shutil.rmtree(swork, ignore_errors=True)
            else:
                which = pipe if side == "python f32" else pipe_int8
                python_daemon_like(which, index, 20)
                daemon.setdefault(side, []).extend(python_daemon_like(which, index, args.queries))
            print(f"round {r}: {side} p50 {statistics.median(daemon[side][-args.queries:]):.2f} ms",
                  flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"load at end: {os.getloadavg()[0]:.2f}")

    print(f"\nindex alone, {len(index):,} vectors, k = {K}, {args.queries} text-embedding queries "
          f"x {args.rounds} rounds, one query at a time on one thread")
    print("| implementation | p50 ms | p99 ms | Python / frameseek (p50) |")
    print("|---|---|---|---|")
    py50, py99 = ms_stats(py_ms)
    r50, rf50 = statistics.median(rust_ms), statistics.median(rust_filtered_ms)
    print(f"| frameseek's usearch settings, Rust `search` (median of the rounds' p50) | {r50:.3f} | {rust_p99[0]:.3f} (last round) | {py50 / r50:.2f} |")
    print(f"| … `filtered_search`, pass-all filter (as `VectorIndex::search`) | {rf50:.3f} | {rust_p99[1]:.3f} (last round) | {py50 / rf50:.2f} |")
    print(f"| usearch {getattr(sys.modules['usearch'], '__version__', '?')} Python `Index.search` | {py50:.3f} | {py99:.3f} | 1 |")
    print(f"same top {K} on both sides: {same} of {total} queries")

    print(f"\ndaemon level, text embedding included, {args.queries} searches x {args.rounds} rounds")
    print("| side | p50 ms | p99 ms |")
    print("|---|---|---|")
    for side in sides:
        a, b = ms_stats(daemon[side])
        print(f"| {side} | {a:.2f} | {b:.2f} |")
    for fs in [s for s in sides if s.startswith("frameseek")]:
        for py in ("python f32", "python int8"):
            print(f"{py} / {fs}: p50 {ms_stats(daemon[py])[0] / ms_stats(daemon[fs])[0]:.2f}x, "
                  f"p99 {ms_stats(daemon[py])[1] / ms_stats(daemon[fs])[1]:.2f}x")
    for side, xs in starts.items():
        print(f"{side}: serve to first answer {', '.join(f'{x:.2f}' for x in xs)} s")


if __name__ == "__main__":
    main()
