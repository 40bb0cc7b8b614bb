#!/usr/bin/env bash
# Installs what frameseek needs to build, test and run on Debian or Ubuntu:
# FFmpeg's libraries and command, clang (for bindgen), pkg-config, a C++ compiler (usearch),
# systemd's tools (unit verification), python3-venv and util-linux (the Milvus tests), iproute2 (`ss`: tests that check no port is bound), Chromium (the `search --html` test renders the page
# headless), tzdata (time zones: ingest.time_zone, local times in tables), and Rust (through
# rustup) when cargo is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

PACKAGES=(
    build-essential pkg-config clang libclang-dev
    ffmpeg libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
    libavdevice-dev libswscale-dev libswresample-dev
    systemd curl ca-certificates git python3 iproute2
    chromium
    tzdata
    python3-venv util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "setup: Rust is installed in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)"
    else
        echo "setup: installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    fi
fi
# Issue 18: the real Milvus server (PyPI's milvus 2.3.5: standalone, etcd embedded, about
# 60 MB) for tests/e2e_milvus.rs, in .venv-milvus (unshare/nsenter come from util-linux).
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${FRAMESEEK_SKIP_MILVUS:-0}" != "1" ] && [ ! -x "$ROOT/.venv-milvus/bin/milvus-server" ]; then
    echo "setup: installing milvus 2.3.5 into .venv-milvus"
    python3 -m venv "$ROOT/.venv-milvus"
    "$ROOT/.venv-milvus/bin/pip" install -q --disable-pip-version-check milvus==2.3.5
fi
echo "setup: ready"
