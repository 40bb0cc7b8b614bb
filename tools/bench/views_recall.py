#!/usr/bin/env python3
"""Which views retrieve best (issue 16): the test world's camera videos pasted into 16:9
frames (1280 x 720, grey), three ways, then for each view set (`ingest.views`) the daemon
ingests them and `frameseek eval` measures the world's text queries, each searched within its
own video (`filter_source`: the right time must win) and across all four.

    edge    the picture at 30 % of the frame's width, at the far left (cameras 1, 3) or far
            right (2, 4), vertically centred
    small   the picture covering 1/30 of the frame's area, centred
    middle  the picture as for `edge`, centred (the control)

    python3 tools/bench/views_recall.py --binary target/release/frameseek \\
        --model assets/models/frameseek-tiny --views centre,pad,cover,cover+tiles
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from views_cost import start_daemon  # noqa: E402  (the same daemon set-up as the cost runs)

W, H = 1280, 720


def layouts() -> dict[str, callable]:
    ew, eh = 384, 288  # 30 % of the width, 4:3 like the world's pictures
    sw, sh = 208, 156  # 1/30 of 1280 x 720 (30,720 pixels): 208 x 156 = 32,448
    return {
        "edge": lambda cam: (ew, eh, 0 if cam % 2 else W - ew, (H - eh) // 2),
        "small": lambda cam: (sw, sh, (W - sw) // 2, (H - sh) // 2),
        "middle": lambda cam: (ew, eh, (W - ew) // 2, (H - eh) // 2),
    }


def make_variant(world: Path, out: Path, place) -> None:
    for cam in range(1, 5):
        w, h, x, y = place(cam)
        (out / f"cam{cam}").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
             str(world / f"cam{cam}/footage.mp4"), "-vf",
             f"scale={w}:{h},pad={W}:{H}:{x}:{y}:color=0x808080", "-c:v", "libx264",
             "-preset", "veryfast", "-g", "25", str(out / f"cam{cam}/footage.mp4")],
            check=True)
    queries = []
    for line in (world / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        if "query" in q and not any(k in q for k in ("filter_source", "from_s", "to_s")):
            queries.append(q)
    (out / "across.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (out / "within.jsonl").write_text(
        "".join(json.dumps({**q, "filter_source": q["source"]}) + "\n" for q in queries))


def evaluate(binary: Path, model: Path, footage: Path, views: str) -> dict[str, dict]:
    p, cfg, state = start_daemon(binary, model, footage, views, 1.0)
    try:
        run = lambda *a: subprocess.run([str(binary), "--config", str(cfg), *a, "--json"],
                                        check=True, capture_output=True, text=True).stdout
        run("ingest", str(footage), "--wait")
        return {name: json.loads(run("eval", str(footage / f"{name}.jsonl")))
                for name in ("within", "across")}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--views", default="centre,pad,cover,cover+tiles")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="views-world-", dir="/tmp"))
    world = root / "world"
    subprocess.run([str(args.binary), "world", "footage", "--out", str(world)], check=True,
                   capture_output=True)
    print("| footage | views | queries | within its video: recall@1 | recall@5 "
          "| across the 4 videos: recall@1 | recall@5 |")
    print("|---|---|---|---|---|---|---|")
    for name, place in layouts().items():
        footage = root / name
        make_variant(world, footage, place)
        for views in args.views.split(","):
            r = evaluate(args.binary, args.model.resolve(), footage, views)
            w, a = r["within"], r["across"]
            print(f"| {name} | {views} | {w['queries']} | {w['recall_at_1']:.3f} "
                  f"| {w['recall_at_5']:.3f} | {a['recall_at_1']:.3f} | {a['recall_at_5']:.3f} |",
                  flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
