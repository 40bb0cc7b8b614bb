#!/usr/bin/env bash
# Keeps the parity fixtures (tests/fixtures/parity, ~30 MB) out of what the device tool
# sends with each call: it sends the tracked and untracked-not-ignored files of the checkout,
# at most 64 MiB together with the carried GPU bundle, and the GPU check does not need them.
#
#   bash tools/device-slim.sh on    # untrack them in the index only and ignore them locally
#   ... device calls (run(carry=["target/gpu-bundle"], ...)) ...
#   bash tools/device-slim.sh off   # track them again: the index is as before
#
# The files stay on disk throughout. Do not commit while it is on (the commit would delete
# the fixtures); `off` refuses to run when HEAD no longer has them.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=tests/fixtures/parity
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
case "${1:-}" in
    on)
        git rm -r -q --cached "$fixtures"
        grep -qxF "/$fixtures/" "$exclude" 2>/dev/null || echo "/$fixtures/" >> "$exclude"
        ;;
    off)
        git cat-file -e "HEAD:$fixtures" || {
            echo "device-slim: HEAD has no $fixtures (committed while slim?)" >&2
            exit 1
        }
        grep -vxF "/$fixtures/" "$exclude" > "$exclude.tmp" || true
        mv "$exclude.tmp" "$exclude"
        git reset -q -- "$fixtures"
        ;;
    *)
        echo "usage: bash tools/device-slim.sh on|off" >&2
        exit 2
        ;;
esac
size=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "device-slim $1: the checkout that travels holds $((size / 1048576)) MiB"
