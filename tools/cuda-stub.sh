#!/usr/bin/env bash
# Writes link-time stand-ins for the CUDA libraries a `--features cuda` binary links
# (cudarc's dynamic linking: libcuda, cuBLAS, cuBLASLt, cuRAND, NVRTC) into ROOT/lib/stubs,
# so the binary can be linked on a machine with no GPU driver and without downloading the
# large cuBLAS wheels. Each stub exports every function name cudarc declares for that
# library, under the real soname; at run time the GPU machine's real libraries are loaded.
# Usage: tools/cuda-stub.sh ROOT   (ROOT = the toolkit folder from tools/cuda-toolkit.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$1"
version=$(awk '/^name = "cudarc"/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
src=""
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$version"; do
    [ -d "$d" ] && src="$d"
done
if [ -z "$src" ]; then
    cargo fetch --quiet
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$version"; do
        [ -d "$d" ] && src="$d"
    done
fi
[ -n "$src" ] || { echo "cuda-stub: cudarc $version sources not found" >&2; exit 1; }

stubs="$root/lib/stubs"
mkdir -p "$stubs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# module  soname            prefix
while read -r module soname prefix; do
    name="${soname%%.so*}"
    grep -ohE "\bfn ${prefix}[A-Za-z0-9_]*\(" "$src/src/$module/sys/mod.rs" \
        | sed -E 's/^fn ([A-Za-z0-9_]+)\($/\1/' | sort -u \
        | awk '{print "void " $1 "(void) {}"}' > "$work/$name.c"
    count=$(wc -l < "$work/$name.c")
    cc -shared -fPIC -o "$stubs/$name.so" -Wl,-soname,"$soname" "$work/$name.c"
    echo "cuda-stub: $stubs/$name.so ($soname, $count functions)"
done <<'LIST'
driver libcuda.so.1 cu
cublas libcublas.so.13 cublas
cublaslt libcublasLt.so.13 cublasLt
curand libcurand.so.10 curand
nvrtc libnvrtc.so.13 nvrtc
LIST
