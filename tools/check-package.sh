#!/usr/bin/env bash
# Installs the package built by tools/package.sh on this machine (as root), checks what it
# put where (owners, modes, the conffile, the user), runs the INSTALLED `frameseek demo`
# from outside the repository, verifies the installed units with systemd-analyze, installs
# it again (the upgrade path), then purges it and checks that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
deb=$(ls -t "$target"/debian/frameseek_*_"$(dpkg --print-architecture)".deb | head -n 1)
[ "$(id -u)" = 0 ] || { echo "check-package: run as root (it installs and purges $deb)" >&2; exit 2; }
if dpkg -s frameseek >/dev/null 2>&1; then
    echo "check-package: frameseek is already installed here; purge it first" >&2
    exit 2
fi
work=$(mktemp -d)
cleanup() {
    dpkg --purge frameseek >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
expect_mode() { # PATH "MODE OWNER GROUP"
    local got
    got=$(stat -c '%a %U %G' "$1") || fail "$1 missing"
    [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}

echo "== dpkg -i $deb"
dpkg -i "$deb"
id frameseek >/dev/null || fail "no frameseek user"
expect_mode /usr/bin/frameseek "755 root root"
expect_mode /usr/lib/frameseek/frameseek-engine "755 root root"
# The lean client loads no FFmpeg library; engine commands reach the installed engine.
if ldd /usr/bin/frameseek | grep -E 'libav|libsw'; then fail "/usr/bin/frameseek loads FFmpeg"; fi
ldd /usr/lib/frameseek/frameseek-engine | grep -q libavcodec || fail "the engine does not link FFmpeg"
expect_mode /etc/frameseek/frameseek.toml "640 root frameseek"
expect_mode /var/lib/frameseek "750 frameseek frameseek"
dpkg-query -W -f='${Conffiles}\n' frameseek | grep -q '/etc/frameseek/frameseek.toml' \
    || fail "/etc/frameseek/frameseek.toml is not a conffile"
for f in /lib/systemd/system/frameseek.service /lib/systemd/system/frameseek.socket \
    /usr/lib/sysusers.d/frameseek.conf /usr/lib/tmpfiles.d/frameseek.conf \
    /usr/share/bash-completion/completions/frameseek /usr/share/zsh/vendor-completions/_frameseek \
    /usr/share/fish/vendor_completions.d/frameseek.fish /usr/share/man/man1/frameseek.1.gz \
    /usr/share/man/man1/frameseek-doctor.1.gz /usr/share/doc/frameseek/OPERATIONS.md; do
    expect_mode "$f" "644 root root"
done
doc=$(sed -n 's#^Documentation=file://\([^ ]*\).*#\1#p' /lib/systemd/system/frameseek.service)
[ -f "$doc" ] || fail "the unit's Documentation= ($doc) is not installed"
grep -q '^ExecStart=/usr/bin/frameseek ' /lib/systemd/system/frameseek.service || fail "ExecStart is not /usr/bin/frameseek"

echo "== systemd-analyze verify (installed units)"
systemd-analyze verify /lib/systemd/system/frameseek.service /lib/systemd/system/frameseek.socket

echo "== frameseek doctor (installed; the footage root as user frameseek)"
(cd "$work" && /usr/bin/frameseek doctor --json > "$work/doctor.json") || true
python3 - "$work/doctor.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
checks = {c["name"]: c for c in report["checks"]}
assert checks["config"]["status"] == "ok", checks["config"]
assert checks["access"]["status"] == "ok", checks["access"]
assert "user frameseek" in checks["access"]["detail"], checks["access"]
PY

echo "== frameseek demo (installed, run outside the repository)"
(cd "$work" && env -u CARGO_TARGET_DIR /usr/bin/frameseek demo --dir "$work/demo") > "$work/demo.txt" 2>&1 \
    || { cat "$work/demo.txt"; fail "the installed frameseek demo failed"; }
grep -q '^model: /usr/share/frameseek/assets/models/frameseek-tiny' "$work/demo.txt" \
    || { cat "$work/demo.txt"; fail "the demo did not use the installed model"; }
tail -n 3 "$work/demo.txt"

echo "== dpkg -i again (upgrade path keeps the conffile's mode)"
dpkg -i "$deb" >/dev/null
expect_mode /etc/frameseek/frameseek.toml "640 root frameseek"

echo "== dpkg --purge frameseek"
dpkg --purge frameseek
for gone in /usr/bin/frameseek /usr/lib/frameseek /etc/frameseek /var/lib/frameseek /lib/systemd/system/frameseek.service \
    /usr/share/frameseek /usr/share/doc/frameseek; do
    [ ! -e "$gone" ] || fail "$gone is still there after purge"
done
if dpkg-statoverride --list /etc/frameseek/frameseek.toml >/dev/null 2>&1; then
    fail "the statoverride of /etc/frameseek/frameseek.toml survived the purge"
fi
echo "== package checks passed"
