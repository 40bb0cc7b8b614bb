#!/usr/bin/env python3
"""The bundled model's figures on the test world (issue 16), default views against the centre
crop in the same run, and the clip files its confidence curve is fitted on (issue 19).

For each view set (`ingest.views`, default `cover,centre`) a fresh daemon ingests, at one
frame per second:

    4:3     `frameseek world footage --seed 1`; `frameseek eval queries.jsonl`
    wide    `frameseek world wide-footage --seed 1` (1280 x 720); `eval queries.jsonl` (each
            object within its own video) and `eval queries-all.jsonl` (across the four)

and, for the first view set only, `world footage --seed 2`. The 4:3 evals of the first view
set also write `calibration-seed1.json` and `calibration-seed2.json` (`eval
--calibration-json`) into `--out`, for

    python3 tools/reliability_diagram.py --fit OUT/calibration-seed1.json \\
        --check OUT/calibration-seed2.json --png docs/reliability.png \\
        --write-calibration MODEL/calibration.json

The daemon runs on a copy of the model folder without `calibration.json` (links to its other
files), so the `daemon` row of that script is the uncalibrated curve. Prints a Markdown table
per footage (recall@1 and recall@5 per group, a column pair per view set), the lowest hit
and highest miss cosine of each calibration file, and writes `figures.json` into `--out`.

    python3 tools/bench/world_model_eval.py --binary target/release/frameseek \\
        --model assets/models/frameseek-tiny --out /tmp/world-eval
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from views_cost import start_daemon  # noqa: E402  (the same daemon set-up as the cost runs)


def uncalibrated_copy(model: Path, out: Path) -> Path:
    """`out/model`: links to every file of `model` except `calibration.json`."""
    copy = out / "model"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    for f in model.iterdir():
        if f.name != "calibration.json":
            (copy / f.name).symlink_to(f.resolve())
    return copy


def measure(binary: Path, model: Path, footage: Path, views: str,
            evals: dict[str, tuple[str, Path | None]]) -> dict[str, dict]:
    """Ingests `footage` with `views` on a fresh daemon and runs each eval of `evals` (name ->
    (query file in `footage`, calibration file or None)); returns the `eval --json` reports."""
    p, cfg, state = start_daemon(binary, model, footage, views, 1.0)
    try:
        def run(*a: str) -> str:
            return subprocess.run([str(binary), "--config", str(cfg), *a, "--json"],
                                  check=True, capture_output=True, text=True).stdout

        t = time.perf_counter()
        run("ingest", str(footage), "--wait")
        print(f"  {footage.name} with views {views}: ingest {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
        reports = {}
        for name, (queries, calibration) in evals.items():
            extra = ["--calibration-json", str(calibration)] if calibration else []
            reports[name] = json.loads(run("eval", str(footage / queries), *extra))
        return reports
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def table(title: str, by_views: dict[str, dict]) -> str:
    """A Markdown table: a row per group (then `all`), recall@1/@5 per view set."""
    views = list(by_views)
    first = by_views[views[0]]
    groups = list(first["groups"]) + ["all"]
    head = "| group | queries | " + " | ".join(f"{v} R@1 | {v} R@5" for v in views) + " |"
    lines = [f"{title}", "", head, "|" + "---|" * (2 + 2 * len(views))]
    for g in groups:
        cells = []
        for v in views:
            s = by_views[v] if g == "all" else by_views[v]["groups"][g]
            cells += [f"{s['recall_at_1']:.3f}", f"{s['recall_at_5']:.3f}"]
        n = first["queries"] if g == "all" else first["groups"][g]["queries"]
        lines.append(f"| {g} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cosines(path: Path) -> str:
    clips = json.loads(path.read_text())["clips"]
    hits = [c["score"] for c in clips if c["hit"]]
    misses = [c["score"] for c in clips if not c["hit"]]
    return (f"{path.name}: {len(clips)} clips, {len(hits)} hits; hits score {min(hits):.3f}-"
            f"{max(hits):.3f}, misses {min(misses):.3f}-{max(misses):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--views", default="cover,centre",
                    help="view sets, comma-separated; the first also gets the calibration runs")
    args = ap.parse_args()
    binary, out = args.binary.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = uncalibrated_copy(args.model.resolve(), out)
    footage = {}
    for name, cmd in (("world-seed1", ["footage", "--seed", "1"]),
                      ("world-seed2", ["footage", "--seed", "2"]),
                      ("wide-seed1", ["wide-footage", "--seed", "1"])):
        footage[name] = out / name
        shutil.rmtree(footage[name], ignore_errors=True)
        subprocess.run([str(binary), "world", *cmd, "--out", str(footage[name])], check=True,
                       capture_output=True)
    view_sets = args.views.split(",")
    figures: dict[str, dict[str, dict]] = {"4:3": {}, "wide, own video": {},
                                           "wide, all videos": {}}
    for i, views in enumerate(view_sets):
        calibrate = i == 0
        seed1 = measure(binary, model, footage["world-seed1"], views, {
            "4:3": ("queries.jsonl", out / "calibration-seed1.json" if calibrate else None)})
        figures["4:3"][views] = seed1["4:3"]
        if calibrate:
            measure(binary, model, footage["world-seed2"], views,
                    {"4:3": ("queries.jsonl", out / "calibration-seed2.json")})
        wide = measure(binary, model, footage["wide-seed1"], views, {
            "wide, own video": ("queries.jsonl", None),
            "wide, all videos": ("queries-all.jsonl", None)})
        figures["wide, own video"][views] = wide["wide, own video"]
        figures["wide, all videos"][views] = wide["wide, all videos"]
    (out / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    for title, by_views in figures.items():
        print(table(f"**{title}**", by_views))
        print()
    for seed in (1, 2):
        print(cosines(out / f"calibration-seed{seed}.json"))


if __name__ == "__main__":
    main()
