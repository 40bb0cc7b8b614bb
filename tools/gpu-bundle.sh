#!/usr/bin/env bash
# Builds what the GPU check needs on a GPU machine with no Rust and no network, into
# target/gpu-bundle/ (issue 9):
#   payload.tar.xz     frameseek: the release frameseek-engine (the whole program; it runs
#                      client commands too) built with --features cuda (stripped),
#                      and lib/: FFmpeg's decoding libraries + libcudart, stand-ins for the rest
#                      (tools/bundle_libs.py); cuBLAS/cuRAND/NVRTC/the driver come from the
#                      GPU machine (its PyTorch venv's NVIDIA wheels)
#   clip-1080p.mp4     a generated 10 s 1080p H.264 clip (testsrc2, 4 Mb/s) and its length;
#                      the check ingests many copies of it
#   gpu-check.sh, gpu_check_helper.py, BUILD-INFO
# The fixture models travel with the checkout (assets/models), so the bundle stays small.
#
#   bash tools/gpu-bundle.sh          # CUDA build (toolkit from PyPI, 13.0 to match driver 580)
#   bash tools/gpu-bundle.sh --cpu    # the CPU build, to test gpu-check.sh --cpu here
#
# Carry it with the device tool: run(carry=["target/gpu-bundle"],
#   command="bash target/gpu-bundle/gpu-check.sh", timeout_s=600); figures land in $OUT.
# CUDA_WHEELS picks the toolkit series (default 13.0: candle JIT-compiles its PTX on the
# GPU, and driver 580 refuses PTX made by a newer toolkit). The CUDA build goes to
# target/cuda-<series> and takes 20 to 40 minutes on two cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

mode=cuda
for arg in "$@"; do
    case "$arg" in
        --cpu) mode=cpu ;;
        *) echo "gpu-bundle: unknown argument $arg (expected --cpu)" >&2; exit 2 ;;
    esac
done
out="$PWD/target/gpu-bundle"
series="${CUDA_WHEELS:-13.0}"

if [ "$mode" = cuda ]; then
    env_file="$(mktemp)"
    trap 'rm -f "$env_file"' EXIT
    CUDA_WHEELS="$series" bash tools/cuda-toolkit.sh --link > "$env_file"
    # shellcheck disable=SC1090
    . "$env_file"
    export CARGO_TARGET_DIR="$PWD/target/cuda-$series"
    echo "== cargo build --release --features cuda (CUDA $series, sm_$CUDA_COMPUTE_CAP)"
    cargo build --release --features cuda
    binary="$CARGO_TARGET_DIR/release/frameseek-engine"
    cudart="$CUDA_HOME/lib/libcudart.so.13"
else
    echo "== cargo build --release"
    cargo build --release
    binary="$PWD/target/release/frameseek-engine"
    cudart=""
fi

rm -rf "$out"
mkdir -p "$out/payload/lib"
cp "$binary" "$out/payload/frameseek"
strip "$out/payload/frameseek"
python3 tools/bundle_libs.py "$binary" "$out/payload/lib"
if [ -n "$cudart" ]; then cp -L "$cudart" "$out/payload/lib/"; fi
XZ_OPT="-9 -T2" tar -cJf "$out/payload.tar.xz" -C "$out/payload" .
rm -rf "$out/payload"
cp tools/gpu-check.sh tools/gpu_check_helper.py "$out/"

seconds="${CLIP_SECONDS:-10}"
echo "== generating a ${seconds}s 1080p H.264 clip"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=s=1920x1080:r=30000/1001:d=$seconds" \
    -c:v libx264 -preset veryfast -profile:v high -b:v 4M -maxrate 4M -bufsize 8M -g 60 \
    -pix_fmt yuv420p "$out/clip-1080p.mp4"
echo "$seconds" > "$out/clip-1080p.seconds"
{
    echo "build=$mode"
    [ "$mode" = cuda ] && echo "cuda=$series compute_cap=$CUDA_COMPUTE_CAP"
    echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/BUILD-INFO"

size=$(du -sb "$out" | cut -f1)
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
slim=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | grep -zv '^tests/fixtures/parity/' | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "== bundle: $(du -sh "$out" | cut -f1) in $out; checkout files: $((tree / 1048576)) MiB" \
    "($((slim / 1048576)) MiB without the parity fixtures)"
ls -la "$out"
if [ $((size + slim)) -gt $((60 * 1048576)) ]; then
    echo "gpu-bundle: bundle + checkout exceed 60 MiB even without the parity fixtures;" \
        "the device tool carries 64 MiB in all" >&2
    exit 1
fi
if [ $((size + tree)) -gt $((60 * 1048576)) ]; then
    echo "== bundle + checkout are over 60 MiB: run 'bash tools/device-slim.sh on' before the" \
        "device call and 'bash tools/device-slim.sh off' after it"
fi
