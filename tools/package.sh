#!/usr/bin/env bash
# Builds the Debian package target/debian/frameseek_VERSION_ARCH.deb (or under
# $CARGO_TARGET_DIR) with dpkg-deb from a staging tree: the lean client /usr/bin/frameseek
# and the engine it execs, /usr/lib/frameseek/frameseek-engine, the systemd units,
# sysusers and tmpfiles entries, /etc/frameseek/frameseek.toml (a conffile, mode 0640
# root:frameseek set by postinst), completions, man pages, the docs and the demo model.
# Reuses target/release/frameseek{,-engine} when both are newer than every source file. gzip, not xz:
# 25 % larger, and 1-2 s instead of 20-30 s of a busy CI core (BENCHMARKS.md, issue 17).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/frameseek
engine=$target/release/frameseek-engine
stale() { [ ! -x "$1" ] || [ -n "$(find src config assets Cargo.toml Cargo.lock -newer "$1" -print -quit)" ]; }
if stale "$bin" || stale "$engine"; then
    echo "== cargo build --release"
    cargo build --release
fi
version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
out=$target/debian
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/frameseek
doc=$root/usr/share/doc/frameseek

echo "== staging frameseek $version ($arch)"
install -D -m 0755 "$bin" "$root/usr/bin/frameseek"
strip --strip-unneeded "$root/usr/bin/frameseek"
# The engine is not a command of its own: `frameseek` execs it (docs/ARCHITECTURE.md).
install -D -m 0755 "$engine" "$root/usr/lib/frameseek/frameseek-engine"
strip --strip-unneeded "$root/usr/lib/frameseek/frameseek-engine"
for unit in frameseek.service frameseek.socket; do
    sed 's#/usr/local/bin/frameseek#/usr/bin/frameseek#g' "systemd/$unit" > "$stage/$unit"
    install -D -m 0644 "$stage/$unit" "$root/lib/systemd/system/$unit"
done
install -D -m 0644 systemd/frameseek.sysusers "$root/usr/lib/sysusers.d/frameseek.conf"
install -D -m 0644 systemd/frameseek.tmpfiles "$root/usr/lib/tmpfiles.d/frameseek.conf"
install -D -m 0640 tools/debian/frameseek.toml "$root/etc/frameseek/frameseek.toml"

"$bin" completions bash > "$stage/bash"
"$bin" completions zsh > "$stage/zsh"
"$bin" completions fish > "$stage/fish"
install -D -m 0644 "$stage/bash" "$root/usr/share/bash-completion/completions/frameseek"
install -D -m 0644 "$stage/zsh" "$root/usr/share/zsh/vendor-completions/_frameseek"
install -D -m 0644 "$stage/fish" "$root/usr/share/fish/vendor_completions.d/frameseek.fish"
"$bin" manpages "$stage/man"
install -d -m 0755 "$root/usr/share/man/man1"
for page in "$stage"/man/*.1; do
    gzip -9n < "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
done

install -d -m 0755 "$doc"
install -m 0644 README.md docs/OPERATIONS.md docs/PROTOCOL.md docs/ARCHITECTURE.md "$doc/"
install -m 0644 config/frameseek.toml "$doc/frameseek.toml.example"
printf 'frameseek\n\nLicense: MIT OR Apache-2.0 (see Cargo.toml).\n' > "$doc/copyright"
chmod 0644 "$doc/copyright"
model=$root/usr/share/frameseek/assets/models/frameseek-tiny
install -d -m 0755 "$model"
# -L: the tokenizer is a link to the random-weight model's copy in the repository.
cp -L assets/models/frameseek-tiny/* "$model/"
chmod 0644 "$model"/*

install -d -m 0755 "$root/DEBIAN"
install -m 0755 tools/debian/postinst tools/debian/prerm tools/debian/postrm "$root/DEBIAN/"
echo /etc/frameseek/frameseek.toml > "$root/DEBIAN/conffiles"
# Shared-library dependencies of both binaries, as Debian's tooling computes them.
mkdir -p "$stage/shlibs/debian"
printf 'Source: frameseek\n\nPackage: frameseek\nArchitecture: any\n' > "$stage/shlibs/debian/control"
depends=$(cd "$stage/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/frameseek" "$root/usr/lib/frameseek/frameseek-engine" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package: dpkg-shlibdeps found no dependencies (is dpkg-dev installed?)" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" tools/debian/control.in > "$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/frameseek_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "== built $deb ($(du -h "$deb" | cut -f1))"
