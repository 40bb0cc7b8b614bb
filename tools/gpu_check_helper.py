#!/usr/bin/env python3
"""Helpers for tools/gpu-check.sh, standard library only (the GPU machine may lack numpy).

  gpu_check_helper.py pngs DIR N          write N small deterministic PNG images into DIR
  gpu_check_helper.py compare A B MIN     compare two `frameseek --json embed` outputs row by
                                          row; print the lowest cosine; exit 1 below MIN
  gpu_check_helper.py ms COMMAND...       run a command, print its wall time in milliseconds
"""
import json
import math
import os
import struct
import subprocess
import sys
import time
import zlib


def write_png(path, width, height, pixel):
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def pngs(folder, count):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        a, b = 3 + i, 5 + 2 * i
        write_png(os.path.join(folder, f"img{i}.png"), 96, 80,
                  lambda x, y: ((x * a) % 256, (y * b) % 256, ((x + y) * (i + 1) * 7) % 256))


def vectors(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                row = json.loads(line)
                out.append((row["kind"], row["input"], row["vector"]))
    return out


def compare(a_path, b_path, minimum):
    a, b = vectors(a_path), vectors(b_path)
    if not a or len(a) != len(b):
        print(f"compare: {len(a)} vs {len(b)} vectors")
        return 1
    worst = 1.0
    for (ka, ia, va), (kb, ib, vb) in zip(a, b):
        if (ka, ia) != (kb, ib) or len(va) != len(vb):
            print(f"compare: rows differ: {ka} {ia} vs {kb} {ib}")
            return 1
        dot = sum(x * y for x, y in zip(va, vb))
        na = math.sqrt(sum(x * x for x in va))
        nb = math.sqrt(sum(y * y for y in vb))
        cos = dot / max(na * nb, 1e-30)
        worst = min(worst, cos)
    print(f"{worst:.6f} {len(a)}")
    return 0 if worst >= minimum else 1


def main(argv):
    if len(argv) >= 3 and argv[1] == "pngs":
        pngs(argv[2], int(argv[3]))
        return 0
    if len(argv) == 5 and argv[1] == "compare":
        return compare(argv[2], argv[3], float(argv[4]))
    if len(argv) >= 3 and argv[1] == "ms":
        t = time.monotonic()
        rc = subprocess.call(argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{(time.monotonic() - t) * 1000:.1f}")
        return rc
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
