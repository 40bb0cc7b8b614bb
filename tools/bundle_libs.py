#!/usr/bin/env python3
"""Collects the shared libraries a frameseek binary needs into one folder, small enough to
carry to a GPU machine (tools/gpu-bundle.sh).

    bundle_libs.py BINARY OUTDIR

Debian's FFmpeg pulls in about 200 libraries (240 MB): encoders, network, subtitle, font and
filter libraries frameseek never calls. The libraries decoding needs are copied (FFmpeg's
own, dav1d, VA-API/VDPAU/DRM, compression); every other one is replaced by a stand-in
under the same soname that exports the symbols (with their versions) the copied libraries
import from it; the stand-ins' functions return 0 and are never called on the decode path.
The C library, the C++ runtime and the CUDA driver libraries come from the target machine.
"""
import os
import re
import subprocess
import sys
import tempfile

FROM_MACHINE = re.compile(
    r"^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libgcc_s|"
    r"libstdc\+\+|libcuda\.so|libcublas|libcublasLt|libcurand|libnvrtc|libcudart)")
KEEP = re.compile(
    r"^lib(avcodec|avformat|avutil|avdevice|avfilter|swscale|swresample|postproc|dav1d|"
    r"va|va-drm|va-x11|vdpau|drm|OpenCL|z|bz2|lzma|zstd|numa|gme)\.so")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def closure(binary):
    libs = {}
    for line in run("ldd", binary).splitlines():
        m = re.match(r"\s*(\S+) => (\S+) ", line)
        if m and not FROM_MACHINE.match(m.group(1)):
            libs[m.group(1)] = os.path.realpath(m.group(2))
    return libs


def imports(path):
    """Undefined dynamic symbols as (name, version or None)."""
    out = []
    for line in run("nm", "-D", "--undefined-only", path).splitlines():
        sym = line.split()[-1]
        name, _, version = sym.partition("@")
        out.append((name, version.lstrip("@") or None))
    return out


def needed_versions(path):
    """{soname: {version names}} from the .gnu.version_r section."""
    out, current = {}, None
    for line in run("readelf", "-V", "-W", path).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = out.setdefault(m.group(1), set())
            continue
        m = re.search(r"Name: (\S+)\s+Flags", line)
        if m and current is not None:
            current.add(m.group(1))
    return out


def exports(path):
    """Defined dynamic symbols: name -> (kind, size, {versions, None when unversioned})."""
    out = {}
    for line in run("readelf", "--dyn-syms", "-W", path).splitlines():
        f = line.split()
        if len(f) < 8 or f[6] == "UND" or f[4] == "LOCAL" or not f[0].endswith(":"):
            continue
        name, _, version = f[7].partition("@")
        version = version.lstrip("@") or None
        size = int(f[2], 0) if f[2].isdigit() else int(f[2], 16) if f[2].startswith("0x") else 0
        kind, old_size, versions = out.get(name, (f[3], size, set()))
        versions.add(version)
        out[name] = (kind, max(size, old_size), versions)
    return out


def make_stub(soname, real, wanted, versions, outdir, work):
    table = exports(real)
    nodes = {v: [] for v in versions}
    lines = []
    for name, version in sorted(wanted.items()):
        kind, size, _ = table.get(name, ("FUNC", 0, set()))
        if kind == "TLS":
            lines.append(f"__thread char {name}[{max(size, 1)}];")
        elif kind == "OBJECT":
            lines.append(f"char {name}[{max(size, 1)}] __attribute__((aligned(16)));")
        else:
            lines.append(f"long {name}(void) {{ return 0; }}")
        if version:
            nodes.setdefault(version, []).append(name)
    c = os.path.join(work, soname + ".c")
    with open(c, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = ["cc", "-shared", "-fPIC", "-O0", "-o", os.path.join(outdir, soname),
           f"-Wl,-soname,{soname}", c]
    if nodes:
        script = os.path.join(work, soname + ".map")
        with open(script, "w") as f:
            for version, names in sorted(nodes.items()):
                body = " ".join(f"{n};" for n in names) or f"frameseek_stub_{re.sub(r'[^A-Za-z0-9_]', '_', version)};"
                if not names:
                    with open(c, "a") as cf:
                        cf.write(f"long frameseek_stub_{re.sub(r'[^A-Za-z0-9_]', '_', version)}(void) {{ return 0; }}\n")
                f.write(f"{version} {{ global: {body} }};\n")
        cmd.append(f"-Wl,--version-script={script}")
    subprocess.run(cmd, check=True)


def main(binary, outdir):
    os.makedirs(outdir, exist_ok=True)
    libs = closure(binary)
    kept = {s: p for s, p in libs.items() if KEEP.match(s)}
    stubbed = {s: p for s, p in libs.items() if s not in kept}
    wanted = {s: {} for s in stubbed}
    versions = {s: set() for s in stubbed}
    provided = {s: exports(p) for s, p in stubbed.items()}
    for consumer in [binary] + list(kept.values()):
        for soname, vs in needed_versions(consumer).items():
            if soname in versions:
                versions[soname] |= vs
        for name, version in imports(consumer):
            for s, table in provided.items():
                if name in table and (version is None or version in table[name][2]):
                    wanted[s][name] = version or wanted[s].get(name)
                    break
    for soname, path in kept.items():
        dest = os.path.join(outdir, soname)
        subprocess.run(["cp", "-L", path, dest], check=True)
    with tempfile.TemporaryDirectory() as work:
        for soname, path in stubbed.items():
            make_stub(soname, path, wanted[soname], versions[soname], outdir, work)
    size = sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir))
    print(f"bundle_libs: {len(kept)} libraries copied, {len(stubbed)} replaced by stand-ins, "
          f"{size / 1e6:.1f} MB in {outdir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
