#!/usr/bin/env python3
"""Issue 18: frames through the daemon into a shared Milvus, against the embedded usearch
index, in the same run, on the same footage and model.

Starts a real Milvus 2.3.5 (from .venv-milvus, `bash tools/setup.sh`) inside a network
namespace with only loopback, then for each backend a fresh daemon (the Milvus one inside
that namespace) and measures:
  - insert throughput: frames / seconds from `ingest` until every source is done and, for
    Milvus, the outbox is empty (every frame written to Milvus);
  - search p50/p99 over the socket (text queries), unfiltered and filtered (one source plus
    an offset range);
  - recall@10 against exact search, per filter kind (a source id, a glob of ten sources, none): with `clip_gap = 0` every clip is one frame, and the
    usearch daemon answers a one-source filter by scoring every frame of that source exactly
    (at most 5 % of the frames, ARCHITECTURE.md), so its 10 clips are the exact top 10
    frames; recall@10 is the share of them among the Milvus daemon's 10 for the same query
    and filter;
  - each daemon's resident memory (VmRSS) after the searches, and Milvus's.

    python3 tools/bench/milvus_bench.py --binary target/release/frameseek \\
        --model assets/models/tiny-random-clip --sources 25 --seconds 80 --queries 200

With `--preload-state DIR` (a state that `examples/preload_state` filled with N frames for
`--model`), no footage is ingested: the embedded daemon starts on a copy of DIR without its
index file and rebuilds the index from the stored vectors (its insert, timed from `serve` to
the first answer), and the Milvus daemon starts on another copy, where the outbox queues
every stored frame and drains it into Milvus (timed until the backlog is empty and Milvus
counts all N). The filters are then one camera's source plus an offset range, and the glob
`/bench/synthetic/cam0*` (10 of 100 cameras).

    cargo run --release --example preload_state -- --state /tmp/pre1m --model MODEL --n 1000000
    python3 tools/bench/milvus_bench.py --model MODEL --preload-state /tmp/pre1m --queries 200

Run as root (unshare/nsenter). Footage: `life` patterns of FFmpeg (a different seed per
source), 320x240 at 25 fps, every frame sampled (sample_interval 0.04).
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["red car", "person walking", "empty street", "truck at night", "dog", "bicycle",
         "crowd", "rain", "parking lot", "door opening"]


def call(sock: Path, req: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise RuntimeError(f"{req['op']}: {reply}")
    return reply


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def group_rss_mb(pgid: int) -> float:
    total = 0.0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getpgid(int(p.name)) == pgid:
                    total += rss_mb(int(p.name))
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
    return total


def make_footage(folder: Path, sources: int, seconds: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(sources):
        p = folder / f"cam{i:03d}.mp4"
        if not p.exists():
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"life=s=320x240:r=25:seed={1000 + i}:mold=10:ratio=0.3,format=yuv420p",
                            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
                            str(p)], check=True)
        paths.append(p)
    return paths


def serve(binary: Path, model: Path, work: Path, footage: Path, milvus: str | None,
          wrapper: list[str]) -> tuple[subprocess.Popen, Path]:
    state = work / ("milvus" if milvus else "usearch")
    state.mkdir(exist_ok=True)
    sock = state / "s.sock"
    cfg = state / "c.toml"
    text = (f'[daemon]\nsocket = "{sock}"\nstate_dir = "{state / "state"}"\n'
            f'footage_roots = ["{footage}"]\nnode = "bench"\n'
            f'[model]\npath = "{model}"\ndevice = "cpu"\n'
            f"[ingest]\nsample_interval = 0.04\nclip_gap = 0.0\n")
    if milvus:
        text += f'[index]\nbackend = "milvus"\n[milvus]\nuri = "{milvus}"\ncollection = "bench"\n'
    cfg.write_text(text)
    log = open(state / "log", "w")
    p = subprocess.Popen(wrapper + [str(binary), "serve", "--config", str(cfg)], stderr=log, stdout=log)
    deadline = time.time() + 120
    while True:
        try:
            call(sock, {"op": "status", "limit": 0})
            return p, sock
        except (OSError, RuntimeError, json.JSONDecodeError):
            if p.poll() is not None or time.time() > deadline:
                raise SystemExit(f"daemon did not start: {(state / 'log').read_text()}")
            time.sleep(0.1)


def ingest(sock: Path, paths: list[Path], milvus: bool) -> tuple[int, float]:
    t = time.perf_counter()
    call(sock, {"op": "ingest", "paths": [str(p) for p in paths]})
    while True:
        s = call(sock, {"op": "status", "limit": 0})
        st = s["states"]
        done = st.get("done", 0) + st.get("failed", 0) == len(paths)
        if done and (not milvus or (s["milvus"]["backlog"] == 0 and s["milvus"]["reachable"])):
            return s["frames"], time.perf_counter() - t
        time.sleep(0.2)


def drained(sock: Path, net: str, expected: int, t: float) -> tuple[int, float]:
    """Waits until the Milvus daemon's outbox is empty and Milvus counts `expected` rows;
    returns the rows counted and the seconds since `t` (before the daemons started)."""
    while True:
        s = call(sock, {"op": "status", "limit": 0})["milvus"]
        if s["reachable"] and s["backlog"] == 0:
            break
        time.sleep(1)
    secs = time.perf_counter() - t
    while True:
        out = subprocess.run(["nsenter", net, "curl", "-s", "-m", "30", "-H", "Content-Type: application/json",
                              "-d", json.dumps({"collectionName": "bench", "filter": "sno >= 0",
                                                "outputFields": ["count(*)"], "limit": 0}),
                              "http://127.0.0.1:19530/v1/vector/query"], capture_output=True, text=True)
        try:
            rows = int(json.loads(out.stdout)["data"][0]["count(*)"])
        except (ValueError, KeyError, IndexError, TypeError):
            rows = -1
        if rows >= expected or time.perf_counter() - t > secs + 120:
            return rows, secs
        time.sleep(2)


def searches(sock: Path, queries: int, source: str | None) -> tuple[list[float], list[list[dict]]]:
    times, answers = [], []
    for i in range(queries):
        req = {"op": "search", "text": f"{WORDS[i % len(WORDS)]} {i}", "k": 10}
        if source:
            req.update({"source": source, "start_ms": 5000, "end_ms": 60000})
        t = time.perf_counter()
        answers.append(call(sock, req)["clips"])
        times.append((time.perf_counter() - t) * 1000)
    return times, answers


def recall(exact: list[list[dict]], got: list[list[dict]]) -> float:
    """Share of the reference's top-10 frames among the other's top 10, over all queries."""
    hits = total = 0
    for e, g in zip(exact, got):
        for c in e[:10]:
            total += 1
            hits += any(x["source"] == c["source"] and x["best_ms"] == c["best_ms"] for x in g[:10])
    return hits / max(total, 1)


def pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[max(0, min(len(s) - 1, int(round(q * len(s) + 0.5)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/frameseek")
    ap.add_argument("--model", type=Path, default=ROOT / "assets/models/tiny-random-clip")
    ap.add_argument("--sources", type=int, default=25)
    ap.add_argument("--seconds", type=int, default=80)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--work", type=Path, default=None, help="keep footage here between runs")
    ap.add_argument("--preload-state", type=Path, default=None,
                    help="a state filled by examples/preload_state: measure its frames, ingest no footage")
    ap.add_argument("--interim-nprobe", type=int, default=0,
                    help="Milvus queryNode.segcore.interimIndex.nprobe (0: the server's default, 16 of nlist 128)")
    args = ap.parse_args()
    server = ROOT / ".venv-milvus/bin/milvus-server"
    if not server.exists():
        raise SystemExit("run `bash tools/setup.sh` first: .venv-milvus/bin/milvus-server is missing")
    work = args.work or Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    footage = work / "footage"
    paths = [] if args.preload_state else make_footage(footage, args.sources, args.seconds)
    runs = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    extra = []
    if args.interim_nprobe:
        extra = ["--extra-config", f"queryNode.segcore.interimIndex.nprobe={args.interim_nprobe}"]
    ns = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
    time.sleep(0.5)
    net = f"--net=/proc/{ns.pid}/ns/net"
    subprocess.run(["nsenter", net, "ip", "link", "set", "lo", "up"], check=True)
    mlog = open(runs / "milvus.log", "w")
    mv = subprocess.Popen(["nsenter", net, str(ROOT / ".venv-milvus/bin/python"),
                           str(ROOT / "tools/milvus_server.py"), "--data", str(runs / "milvus-data")] + extra,
                          stdout=mlog, stderr=mlog, process_group=0)
    procs = []
    try:
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.preload_state:
            for name in ("usearch", "milvus"):
                copy = runs / name / "state"
                copy.parent.mkdir()
                shutil.copytree(args.preload_state, copy)
                if name == "usearch":  # the Milvus node keeps its index: only the drain is timed
                    (copy / "index.usearch").unlink(missing_ok=True)
        t = time.perf_counter()
        u, usock = serve(args.binary, args.model, runs, footage, None, [])
        procs.append(u)
        if args.preload_state:
            while (st := call(usock, {"op": "status", "limit": 0})).get("index_rebuild"):
                time.sleep(0.5)
            frames_u, secs_u = st["frames"], time.perf_counter() - t
        else:
            frames_u, secs_u = ingest(usock, paths, False)
        while subprocess.run(["nsenter", net, "curl", "-sf", "-m", "2", "http://127.0.0.1:19530/v1/vector/collections"],
                             capture_output=True).returncode != 0:
            time.sleep(1)
        tm = time.perf_counter()
        m, msock = serve(args.binary, args.model, runs, footage, "http://127.0.0.1:19530",
                         ["nsenter", net])
        procs.append(m)
        if args.preload_state:
            frames_m, secs_m = drained(msock, net, frames_u, tm)
        else:
            frames_m, secs_m = ingest(msock, paths, True)
        time.sleep(5)  # Milvus's bounded consistency: let the last inserts become visible
        if args.preload_state:
            first = call(usock, {"op": "status", "limit": 1})["sources"][0]["source"]
            target, glob = first, first.rsplit("/cam", 1)[0] + "/cam0*"
        else:
            target, glob = str(paths[3]), str(paths[3])[:-5] + "*"
        res = {}
        for name, sock in (("usearch", usock), ("milvus", msock)):
            searches(sock, 10, None)  # warm-up
            res[name] = {"plain": searches(sock, args.queries, None),
                         "filtered": searches(sock, args.queries, target),
                         # A glob of ten sources (cam000-cam009): Milvus gets its prefix,
                         # the daemon checks the whole glob.
                         "glob": searches(sock, args.queries, glob)}
        rec = {kind: recall(res["usearch"][kind][1], res["milvus"][kind][1])
               for kind in ("plain", "filtered", "glob")}
        mem = {"usearch": rss_mb(u.pid), "milvus": rss_mb(m.pid), "server": group_rss_mb(mv.pid)}
        if args.preload_state:
            print(f"frames: usearch {frames_u}, milvus {frames_m}; preloaded state {args.preload_state.name}; model {args.model.name}; glob {glob}")
        else:
            print(f"frames: usearch {frames_u}, milvus {frames_m}; sources {args.sources} x {args.seconds} s at 25 fps; model {args.model.name}")
        print("| measure | usearch (embedded) | milvus | milvus / usearch |")
        print("|---|---|---|---|")
        fu, fm = frames_u / secs_u, frames_m / secs_m
        what = ("stored frames into the index, frames/s (usearch: rebuild, serve to first answer; "
                "milvus: serve until the outbox is empty)" if args.preload_state
                else "insert throughput, frames/s (ingest until searchable)")
        print(f"| {what} | {fu:.0f} | {fm:.0f} | {fm / fu:.2f} |")
        for kind in ("plain", "filtered"):
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                a, b = pct(res["usearch"][kind][0], q), pct(res["milvus"][kind][0], q)
                print(f"| search {label} ms, {'no filter' if kind == 'plain' else 'one source + offset range'} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
        print(f"| recall@10 against exact (one source id + offset range, frames) | 1 (exact scan) | {rec['filtered']:.3f} | |")
        print(f"| recall@10 against the embedded daemon (a glob of 10 sources + offset range: 40 % of the frames, graph search there, exact in Milvus's) | 1 (reference) | {rec['glob']:.3f} | |")
        print(f"| recall@10 against the embedded HNSW (no filter, frames) | 1 (reference) | {rec['plain']:.3f} | |")
        print(f"| daemon RSS, MB | {mem['usearch']:.0f} | {mem['milvus']:.0f} | {mem['milvus'] / mem['usearch']:.2f} |")
        print(f"| Milvus standalone RSS, MB | | {mem['server']:.0f} | |")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        os.killpg(mv.pid, signal.SIGTERM)
        time.sleep(5)
        try:
            os.killpg(mv.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        ns.kill()
        ns.wait()
        shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
