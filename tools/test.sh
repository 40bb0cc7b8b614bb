#!/usr/bin/env bash
# Runs every check: formatting, no import cycle between modules
# (tools/check-module-cycles.py), clippy (warnings are errors, tests included), the unit and
# end-to-end tests (release profile: candle, usearch and FFmpeg glue are slow unoptimised),
# and systemd's verification of the unit file.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== module cycles"
python3 tools/check-module-cycles.py
echo "== cargo clippy"
cargo clippy --release --all-targets -- -D warnings
echo "== cargo test"
cargo test --release
echo "== systemd-analyze verify"
unit_dir=$(mktemp -d)
trap 'rm -rf "$unit_dir"' EXIT
sed "s#/usr/local/bin/frameseek#$PWD/target/release/frameseek#" systemd/frameseek.service > "$unit_dir/frameseek.service"
cp systemd/frameseek.socket "$unit_dir/"
systemd-analyze verify "$unit_dir/frameseek.service" "$unit_dir/frameseek.socket"
echo "== systemd-analyze security"
systemd-analyze security --offline=true "$unit_dir/frameseek.service" | tail -n 1
echo "== all checks passed"
