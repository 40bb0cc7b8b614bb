#!/usr/bin/env bash
# Type-checks the `cuda` build on a machine with no GPU and no system CUDA: assembles the
# toolkit from PyPI (tools/cuda-toolkit.sh) and runs `cargo check --release --features cuda`
# (build scripts included: candle's kernels really go through nvcc) in target/cuda, so the
# CPU build in target/release stays untouched. Also checks the tests and examples of the
# cuda build. Used by .ci/run; takes 8 to 15 minutes on two cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
bash tools/cuda-toolkit.sh > "$env_file"
# shellcheck disable=SC1090
. "$env_file"
echo "== nvcc: $(nvcc --version | tail -n 2 | head -n 1)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CUDA:-$PWD/target/cuda}"
start=$(date +%s)
echo "== cargo check --release --features cuda --all-targets (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
cargo check --release --features cuda --all-targets
echo "== cuda build type-checks ($(( $(date +%s) - start )) s)"
