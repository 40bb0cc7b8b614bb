#!/usr/bin/env bash
# CPU throughput of the CLIP image tower: frameseek (candle) against PyTorch transformers,
# same checkpoint, batch sizes and thread count, run alternately so that load from other
# processes on the machine hits both alike. Prints a Markdown table (best and median of the
# rounds) and keeps every measurement as JSON lines in $OUT.
#
#   tools/parity/bench_cpu.sh [MODEL_DIR] [ROUNDS]
#
# MODEL_DIR defaults to /tmp/parity/bench-b32, written here if missing: ViT-B/32 image
# tower shapes (224 px, patch 32, 768 wide, 12 layers, 12 heads, projection 512), random
# weights. Environment: THREADS (2), BATCHES ("1 8 32"), SECONDS_PER (8), PY (the torch venv's
# python), PRECISIONS ("f32" or "f32 int8"), OUT (results file).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-/tmp/parity/bench-b32}
ROUNDS=${2:-3}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-"1 8 32"}
SECONDS_PER=${SECONDS_PER:-8}
PY=${PY:-/work/venv-torch/bin/python}
PRECISIONS=${PRECISIONS:-f32}
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
    for batch in $BATCHES; do
        echo "round $round batch $batch" >&2
        nice -n 19 "$PY" tools/parity/bench_torch.py "$MODEL" --threads "$THREADS" \
            --batch "$batch" --seconds "$SECONDS_PER" 2>/dev/null | grep '^{' >> "$OUT"
        for precision in $PRECISIONS; do
            RAYON_NUM_THREADS=$THREADS CLIP_BENCH_SECONDS=$SECONDS_PER CLIP_BENCH_PRECISION=$precision \
                nice -n 19 target/release/examples/clip_bench "$MODEL" "$batch" >> "$OUT"
        done
    done
done
"$PY" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r["batch"], r["impl"] + (" " + r["precision"] if "precision" in r else ""))
groups = {}
for r in rows:
    groups.setdefault(key(r), []).append(r["images_per_s"])
batches = sorted({b for b, _ in groups})
impls = sorted({i for _, i in groups}, key=lambda i: (not i.startswith("pytorch"), i))
print(f"| batch | implementation | best images/s | median images/s | ratio to PyTorch (best) |")
print("| ---: | --- | ---: | ---: | ---: |")
for b in batches:
    torch_best = max(groups.get((b, impls[0]), [float("nan")]))
    for i in impls:
        v = groups.get((b, i))
        if not v:
            continue
        print(f"| {b} | {i} | {max(v):.2f} | {statistics.median(v):.2f} | {max(v) / torch_best:.2f} |")
PY
