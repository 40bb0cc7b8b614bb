#!/usr/bin/env bash
# CPU throughput of the CLIP image tower: frameseek (candle) against PyTorch transformers,
# same checkpoint, batch sizes and thread count, run alternately so that load from other
# processes on the machine hits both alike. Prints a Markdown table (best and median of the
# rounds, in images per wall-clock second and per CPU-second of the process) and keeps every
# measurement as JSON lines in $OUT. Images per CPU-second is the steadier figure on a
# shared machine; with 1 thread it is free of any thread-synchronisation spinning.
#
#   tools/parity/bench_cpu.sh [MODEL_DIR] [ROUNDS]
#
# MODEL_DIR defaults to /tmp/parity/bench-b32, written here if missing: ViT-B/32 image
# tower shapes (224 px, patch 32, 768 wide, 12 layers, 12 heads, projection 512), random
# weights. Environment: THREADS (a list, "1 2"), BATCHES ("1 8 32"), SECONDS_PER (8), PY (the torch venv's
# python), PRECISIONS ("f32" or "f32 int8"), MICRO (CLIP_BENCH_MICRO_BATCH values for batches
# over 8: "default 0" times the default micro-batching and one whole batch), BASELINES
# (other binaries taking MODEL_DIR BATCH and printing the same JSON), OUT (results file).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-/tmp/parity/bench-b32}
ROUNDS=${2:-3}
THREADS=${THREADS:-"1 2"}
BATCHES=${BATCHES:-"1 8 32"}
SECONDS_PER=${SECONDS_PER:-8}
PY=${PY:-.venv-torch/bin/python}
PRECISIONS=${PRECISIONS:-f32}
MICRO=${MICRO:-"default 0"}
BASELINES=${BASELINES:-}
OUT=${OUT:-/tmp/parity/bench-results.jsonl}
mkdir -p "$(dirname "$OUT")"
if [ ! -f "$MODEL/model.safetensors" ]; then
    nice -n 19 "$PY" tools/make_random_clip.py --out "$MODEL" \
        --tokenizer assets/models/tiny-random-clip/tokenizer.json \
        --image-size 224 --patch-size 32 --vision-hidden 768 --vision-layers 12 --vision-heads 12 \
        --text-hidden 64 --text-layers 1 --text-heads 4 --projection-dim 512 \
        --hidden-act quick_gelu --seed 1 >&2
fi
cargo build --release --example clip_bench >&2
: > "$OUT"
for round in $(seq "$ROUNDS"); do
    for threads in $THREADS; do
        for batch in $BATCHES; do
            echo "round $round threads $threads batch $batch" >&2
            OMP_NUM_THREADS=$threads nice -n 19 "$PY" tools/parity/bench_torch.py "$MODEL" \
                --threads "$threads" --batch "$batch" --seconds "$SECONDS_PER" 2>/dev/null \
                | grep '^{' >> "$OUT"
            for precision in $PRECISIONS; do
                for micro in $MICRO; do
                    if [ "$micro" != default ] && [ "$batch" -le 8 ]; then continue; fi
                    env RAYON_NUM_THREADS="$threads" CLIP_BENCH_SECONDS="$SECONDS_PER" \
                        CLIP_BENCH_PRECISION="$precision" \
                        $( [ "$micro" != default ] && echo CLIP_BENCH_MICRO_BATCH="$micro" ) \
                        nice -n 19 target/release/examples/clip_bench "$MODEL" "$batch" >> "$OUT"
                done
            done
            for base in $BASELINES; do
                RAYON_NUM_THREADS=$threads CLIP_BENCH_SECONDS=$SECONDS_PER \
                    nice -n 19 "$base" "$MODEL" "$batch" >> "$OUT"
            done
        done
    done
done
"$PY" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def label(r):
    s = r["impl"]
    if "precision" in r:
        s += " " + r["precision"].lower()
    if r.get("micro_batch") == "whole" and r["batch"] > 8:
        s += ", one pass"
    elif "micro_batch" in r and r["batch"] > int(r["micro_batch"]):
        s += f", passes of {r['micro_batch']}"
    return s
key = lambda r: (r["threads"], r["batch"], label(r))
groups = {}
for r in rows:
    groups.setdefault(key(r), []).append(r)
loads = [r["load"] for r in rows if "load" in r]
print(f"{len(rows)} measurements; 1-minute load average during them {min(loads):.1f} to {max(loads):.1f}\n")
print("| threads | batch | implementation | images/s best | median | images per CPU-s best | median | ratio to PyTorch (images/s best) | ratio (per CPU-s best) |")
print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (t, b, i) in sorted(groups, key=lambda k: (k[0], k[1], not k[2].startswith("pytorch"), k[2])):
    v = groups[(t, b, i)]
    ref = [g for (tt, bb, ii), g in groups.items() if tt == t and bb == b and ii.startswith("pytorch")]
    wall = [r["images_per_s"] for r in v]
    cpu = [r["images_per_cpu_s"] for r in v]
    if ref:
        rw = max(r["images_per_s"] for r in ref[0])
        rc = max(r["images_per_cpu_s"] for r in ref[0])
        ratios = f"{max(wall) / rw:.2f} | {max(cpu) / rc:.2f}"
    else:
        ratios = "- | -"
    print(f"| {t} | {b} | {i} | {max(wall):.2f} | {statistics.median(wall):.2f} | "
          f"{max(cpu):.2f} | {statistics.median(cpu):.2f} | {ratios} |")
PY
