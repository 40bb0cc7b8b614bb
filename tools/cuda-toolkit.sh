#!/usr/bin/env bash
# Assembles a CUDA toolkit from PyPI's split NVIDIA wheels, enough for candle's CUDA build
# (nvcc, its front end and NVVM, the runtime headers, CCCL), on a machine with no GPU and no
# system CUDA. Prints the environment to use it; evaluate the output:
#
#   eval "$(bash tools/cuda-toolkit.sh)"            # 13.4.x, enough for `cargo check`
#   eval "$(bash tools/cuda-toolkit.sh --link)"     # adds link-time stand-ins for libcuda,
#                                                   # cuBLAS(Lt), cuRAND and NVRTC
#                                                   # (tools/cuda-stub.sh), to link a binary
#
# CUDA_WHEELS (default 13.4) picks the minor series. cudarc 0.19 accepts 11.4 to 13.4 and
# refuses 13.5 ("Unsupported cuda toolkit version"); the cu12 nvcc wheels hold no nvcc, so
# only 13.x works here. A binary that runs on a GPU must be built with a toolkit no newer
# than the GPU's driver: candle JIT-compiles its PTX there, and a driver refuses PTX from a
# newer toolkit (driver 580 = CUDA 13.0, so tools/gpu-bundle.sh uses CUDA_WHEELS=13.0).
# CUDA_COMPUTE_CAP (default 90, Hopper) is the architecture nvcc builds for.
# The wheels go to $FRAMESEEK_CUDA_DIR (default target/cuda-toolkit-<series>); a second run
# with the same pins installs nothing. Progress goes to stderr, the exports to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

link=0
for arg in "$@"; do
    case "$arg" in
        --link) link=1 ;;
        *) echo "cuda-toolkit: unknown argument $arg (expected --link)" >&2; exit 2 ;;
    esac
done

series="${CUDA_WHEELS:-13.4}"
case "$series" in
    13.[0-4]) ;;
    *) echo "cuda-toolkit: CUDA_WHEELS=$series is not supported by cudarc 0.19 with PyPI's wheels (use 13.0 to 13.4)" >&2; exit 2 ;;
esac
dir="${FRAMESEEK_CUDA_DIR:-$PWD/target/cuda-toolkit-$series}"
cap="${CUDA_COMPUTE_CAP:-90}"
python="${PYTHON:-python3}"

# Exact pins per series: the wheels are versioned one by one (CCCL follows its own numbers
# from 13.3 on), so "13.4.x" means these.
case "$series" in
    13.4) specs=(nvidia-cuda-nvcc==13.4.92 nvidia-cuda-crt==13.4.92 nvidia-nvvm==13.4.92
                 nvidia-cuda-runtime==13.4.92 nvidia-cuda-cccl==13.3.4.3.1) ;;
    13.0) specs=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
                 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85) ;;
    *) specs=(nvidia-cuda-nvcc~="$series".0 nvidia-cuda-crt~="$series".0 nvidia-nvvm~="$series".0
              nvidia-cuda-runtime~="$series".0 nvidia-cuda-cccl~="$series".0) ;;
esac

# A fresh Debian has python3 without pip: install it (CI runs as root).
if ! "$python" -m pip --version > /dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
        echo "cuda-toolkit: installing python3-pip" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip >&2
    else
        echo "cuda-toolkit: $python has no pip; install python3-pip" >&2
        exit 1
    fi
fi

stamp="$dir/.installed"
want="${specs[*]}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "cuda-toolkit: installing ${specs[*]} into $dir" >&2
    mkdir -p "$dir"
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
        --upgrade --target "$dir" "${specs[@]}" >&2
    echo "$want" > "$stamp"
fi

root="$dir/nvidia/cu13"
if [ ! -x "$root/bin/nvcc" ]; then
    echo "cuda-toolkit: $root/bin/nvcc is missing after install; the wheels' layout changed" >&2
    exit 1
fi
# nvcc looks for NVVM (cicc, libdevice) beside itself under nvvm/; the wheel puts it there.
# Sonames without the unversioned link (libcudart.so) break `-lcudart`; add the links.
for lib in "$root"/lib/*.so.*; do
    [ -e "$lib" ] || continue
    base="${lib%%.so.*}.so"
    [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done
if [ "$link" -eq 1 ]; then
    bash tools/cuda-stub.sh "$root" >&2
fi
# lib64 is where several build scripts (cudarc, cudaforge) look by default.
[ -e "$root/lib64" ] || ln -s lib "$root/lib64"

cat <<OUT
export CUDA_HOME="$root"
export CUDA_PATH="$root"
export CUDA_ROOT="$root"
export CUDA_TOOLKIT_ROOT_DIR="$root"
export CUDA_COMPUTE_CAP="$cap"
export PATH="$root/bin:\$PATH"
export LIBRARY_PATH="$root/lib:$root/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export CPATH="$root/include\${CPATH:+:\$CPATH}"
export NVCC_PREPEND_FLAGS="-I$root/include -I$root/include/cccl"
OUT
