#!/usr/bin/env bash
# The prepared GPU check of issue 9, for a GPU machine with no Rust toolchain and no
# network. Runs from the bundle made by tools/gpu-bundle.sh (target/gpu-bundle inside a
# checkout, which brings the fixture models in assets/models):
#
#   bash target/gpu-bundle/gpu-check.sh            # on the GPU machine
#   bash target/gpu-bundle/gpu-check.sh --cpu      # the same steps on the CPU (to test it)
#
# Steps, each with its own time limit; a failing step is recorded and the next one runs:
#   a. GPU (f16 and f32) vs CPU (f32) embeddings of the fixture checkpoints: cosine >= 0.999
#   b. image-embedding throughput, random-weight ViT-B/32 and ViT-L/14, batch 32 to 256
#   c. ingest of the bundled 1080p H.264 clip (copies of it) at 1 and 5 frames/s, with
#      ingest.hwaccel = none and = cuda, timed end to end through the daemon
#   d. text-query latency: the text tower alone, and `frameseek search` end to end
# Every figure goes to one results file: $OUT/gpu-check-results.txt when $OUT is set (the
# device tool's output folder), else target/gpu-bundle/gpu-check-results.txt.
# Whole run: about 3 to 6 minutes on an H100 (budget: well inside 10).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mode=gpu
quick=0
for arg in "$@"; do
    case "$arg" in
        --cpu) mode=cpu ;;
        --quick) quick=1 ;;
        *) echo "gpu-check: unknown argument $arg (expected --cpu, --quick)" >&2; exit 2 ;;
    esac
done
results="${OUT:+$OUT/gpu-check-results.txt}"
results="${results:-$here/gpu-check-results.txt}"
work="$(mktemp -d /tmp/gpu-check.XXXXXX)"
start_all=$(date +%s)
failures=0

say() { echo "$*" | tee -a "$results"; }
step_fail() { say "FAIL: $*"; failures=$((failures + 1)); }
: > "$results"
say "# frameseek GPU check ($mode) $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "bundle: $(cat "$here/BUILD-INFO" 2>/dev/null | tr '\n' ' ')"

# --- the binary and its libraries: FFmpeg and cudart from the bundle, the rest from the
# machine.
mkdir -p "$work/payload"
tar -xJf "$here/payload.tar.xz" -C "$work/payload" || step_fail "cannot unpack $here/payload.tar.xz"
libpath="$work/payload/lib"
if [ "$mode" = gpu ]; then
    # cuBLAS, cuBLASLt, cuRAND, NVRTC: the PyTorch venv's NVIDIA wheels or a system CUDA.
    for py in python3 /opt/torch/.venv/bin/python3; do
        command -v "$py" > /dev/null 2>&1 || continue
        for sp in $("$py" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
            for d in "$sp"/nvidia/cu13/lib "$sp"/nvidia/*/lib; do
                [ -d "$d" ] && ls "$d"/lib*.so.* > /dev/null 2>&1 && libpath="$libpath:$d"
            done
        done
    done
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 \
        /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && libpath="$libpath:$d"
    done
fi
# Only frameseek sees the bundled libraries (they would break python3, bash and nvidia-smi).
cat > "$work/frameseek" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$libpath\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$work/payload/frameseek" "\$@"
WRAP
chmod +x "$work/frameseek"
bin="$work/frameseek"
missing=$(LD_TRACE_LOADED_OBJECTS=1 LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/payload/frameseek" 2>&1 | grep "not found" | awk '{print $1}' | tr '\n' ' ')
if [ -n "$missing" ]; then
    step_fail "libraries not found: $missing"
fi
say "machine: $(nproc) cores, $(uname -r)"
if [ "$mode" = gpu ]; then
    say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    # NVDEC needs the driver's libnvcuvid; without it FFmpeg's CUDA hwaccel refuses streams.
    say "nvdec library: $( (ldconfig -p 2>/dev/null | grep -m1 -o '/[^ ]*libnvcuvid.so.1') || find /usr/local/nvidia /usr/lib/x86_64-linux-gnu -name 'libnvcuvid.so.1' 2>/dev/null | head -1 || true)"
    device=cuda:0
else
    device=cpu
fi
export FRAMESEEK_LOG=info

# --- a. parity: CPU f32 vs device f16 and f32 on the fixture checkpoints ------------------
say ""
say "## a. embeddings, $device vs cpu (cosine, lowest over all rows)"
python3 "$here/gpu_check_helper.py" pngs "$work/img" 6
imgs=()
for f in "$work"/img/*.png; do imgs+=(--image "$f"); done
texts=(--text "a dog running on a beach" --text "red car at night" --text "x")
for model in "$repo"/assets/models/*/; do
    [ -f "$model/config.json" ] || continue
    name=$(basename "$model")
    timeout 120 "$bin" --json embed --model "$model" --device cpu --dtype f32 \
        "${imgs[@]}" "${texts[@]}" > "$work/$name-cpu.jsonl" 2> "$work/$name-cpu.log" \
        || { step_fail "a: cpu embed $name: $(tail -1 "$work/$name-cpu.log")"; continue; }
    for dtype in f16 f32; do
        timeout 120 "$bin" --json embed --model "$model" --device "$device" --dtype "$dtype" \
            "${imgs[@]}" "${texts[@]}" > "$work/$name-$dtype.jsonl" 2> "$work/$name-$dtype.log" \
            || { step_fail "a: $device embed $name $dtype: $(tail -1 "$work/$name-$dtype.log")"; continue; }
        cmp=$(python3 "$here/gpu_check_helper.py" compare "$work/$name-cpu.jsonl" "$work/$name-$dtype.jsonl" 0.999)
        rc=$?
        say "parity model=$name device=$device dtype=$dtype min_cosine=${cmp% *} rows=${cmp#* } $([ $rc -eq 0 ] && echo ok || echo BELOW-0.999)"
        [ $rc -eq 0 ] || failures=$((failures + 1))
    done
done

# --- b. throughput, random ViT-B/32 and ViT-L/14 ------------------------------------------
say ""
say "## b. image-embedding throughput ($device, images/s; targets on one H100 in f16: ViT-B/32 >= 5000, ViT-L/14 >= 800)"
if [ "$mode" = cpu ]; then
    batches=1; iters_b=1; iters_l=1; warmup=0
elif [ "$quick" -eq 1 ]; then
    batches=64,256; iters_b=5; iters_l=3; warmup=1
else
    batches=32,64,128,256; iters_b=20; iters_l=8; warmup=2
fi
for arch in vit-b32 vit-l14; do
    iters=$iters_b
    [ "$arch" = vit-l14 ] && iters=$iters_l
    for dtype in auto; do
        if timeout 240 "$bin" --json bench-embed --arch "$arch" --device "$device" --dtype "$dtype" \
            --batch "$batches" --iters "$iters" --warmup "$warmup" > "$work/bench-$arch.jsonl" 2> "$work/bench-$arch.log"; then
            while read -r line; do
                say "throughput $line"
            done < "$work/bench-$arch.jsonl"
        else
            step_fail "b: bench-embed $arch: $(tail -2 "$work/bench-$arch.log" | tr '\n' ' ')"
        fi
    done
done

# --- c. ingest of 1080p H.264 through the daemon ------------------------------------------
say ""
say "## c. ingest of 1080p H.264 (realtime factor = footage seconds / wall seconds; target at 1 fps >= 100)"
clip="$here/clip-1080p.mp4"
copies=24
[ "$mode" = cpu ] && copies=2
[ "$quick" -eq 1 ] && copies=1
fixture=""
for model in "$repo"/assets/models/*/; do [ -f "$model/config.json" ] && fixture="$model"; done
if [ ! -f "$clip" ]; then
    step_fail "c: $clip is missing (tools/gpu-bundle.sh makes it)"
elif [ -z "$fixture" ]; then
    step_fail "c: no fixture model under $repo/assets/models"
else
    clip_s=$(cat "$here/clip-1080p.seconds" 2>/dev/null || echo 10)
    workers=$(( copies < $(nproc) ? copies : $(nproc) ))
    mkdir -p "$work/footage"
    for i in $(seq 1 $copies); do cp "$clip" "$work/footage/cam$i.mp4"; done
    for hw in none cuda; do
        for fps in 1 5; do
            run="$work/ingest-$hw-$fps"
            mkdir -p "$run"
            interval=$(python3 -c "print(1/$fps)")
            cat > "$run/frameseek.toml" <<TOML
[daemon]
socket = "$run/fs.sock"
state_dir = "$run/state"
footage_roots = ["$work/footage"]

[model]
path = "$fixture"
device = "$device"
batch_size = 0

[ingest]
sample_interval = $interval
decode_workers = $workers
hwaccel = "$hw"
TOML
            "$bin" serve --config "$run/frameseek.toml" > /dev/null 2> "$run/daemon.log" &
            pid=$!
            for _ in $(seq 1 300); do [ -S "$run/fs.sock" ] && break; sleep 0.1; done
            t0=$(date +%s.%N)
            if timeout 240 "$bin" --socket "$run/fs.sock" ingest --wait "$work/footage" > "$run/ingest.out" 2>&1; then
                t1=$(date +%s.%N)
                frames=$("$bin" --socket "$run/fs.sock" --json status 2>/dev/null \
                    | python3 -c 'import json,sys; print(json.load(sys.stdin)["frames"])' 2>/dev/null)
                hw_used=$(grep -c "hardware decoding (cuda)" "$run/daemon.log")
                sw_fallback=$(grep -c "decoding in software" "$run/daemon.log")
                python3 - "$t0" "$t1" "$clip_s" "$copies" "$hw" "$fps" "$frames" "$hw_used" "$sw_fallback" <<'PY' | tee -a "$results"
import sys
t0, t1, clip_s, copies = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
wall = t1 - t0
print(f"ingest hwaccel={sys.argv[5]} fps={sys.argv[6]} sources={copies} footage_s={clip_s * copies:.0f} "
      f"wall_s={wall:.2f} realtime_x={clip_s * copies / max(wall, 1e-9):.1f} frames={sys.argv[7]} "
      f"hw_sources={sys.argv[8]} software_fallbacks={sys.argv[9]}")
PY
                if [ "$hw" = cuda ]; then
                    grep -m 2 "decoding in software\|hardware decoding" "$run/daemon.log" | sed 's/^/  log: /' | tee -a "$results"
                fi
            else
                step_fail "c: ingest hwaccel=$hw fps=$fps: $(tail -2 "$run/ingest.out" | tr '\n' ' ') $(tail -2 "$run/daemon.log" | tr '\n' ' ')"
            fi
            # --- d (end to end) on the first daemon: search latency, process start included.
            if [ "$hw" = none ] && [ "$fps" = 1 ]; then
                for i in $(seq 1 10); do
                    python3 "$here/gpu_check_helper.py" ms "$bin" --socket "$run/fs.sock" search "a test pattern $i" -k 5
                done > "$work/search-ms.txt"
                e2e=$(sort -n "$work/search-ms.txt" | awk '{a[NR]=$1} END {print "p50_ms=" a[int((NR+1)/2)] " max_ms=" a[NR]}')
            fi
            kill "$pid" 2> /dev/null
            wait "$pid" 2> /dev/null
        done
    done
fi

# --- d. text-query latency -----------------------------------------------------------------
say ""
say "## d. text-query latency"
for model in "$repo"/assets/models/*/; do
    [ -f "$model/config.json" ] || continue
    if out=$(timeout 120 "$bin" --json bench-text --model "$model" --device "$device" --iters 100 2> "$work/text.log"); then
        say "text_embed $out"
    else
        step_fail "d: bench-text $(basename "$model"): $(tail -1 "$work/text.log")"
    fi
done
[ -n "${e2e:-}" ] && say "search_end_to_end (frameseek search process, socket, index; 10 queries) $e2e"

say ""
say "total_s=$(( $(date +%s) - start_all )) failures=$failures"
rm -rf "$work"
[ "$failures" -eq 0 ]
