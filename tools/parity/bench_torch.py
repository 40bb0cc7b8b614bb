#!/usr/bin/env python3
"""CPU throughput of transformers' CLIPModel image tower (get_image_features), for the
comparison in BENCHMARKS.md.  Same protocol as `examples/clip_bench.rs`: one warm-up batch,
then whole batches for at least --seconds, images per second printed as JSON lines.

    .venv-torch/bin/python tools/parity/bench_torch.py MODEL_DIR --threads 2 --batch 1 8 32
"""

import argparse
import json
import os
import resource
import time

import torch
from transformers import CLIPModel


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = CLIPModel.from_pretrained(a.model, dtype=torch.float32).eval()
    size = model.config.vision_config.image_size
    for batch in a.batch:
        g = torch.Generator().manual_seed(0)
        pixels = torch.rand((batch, 3, size, size), generator=g) * 2 - 1
        with torch.inference_mode():
            model.get_image_features(pixel_values=pixels)
            start = time.perf_counter()
            cpu_start = cpu_seconds()
            images = runs = 0
            while time.perf_counter() - start < a.seconds or runs < 2:
                model.get_image_features(pixel_values=pixels)
                images += batch
                runs += 1
            secs = time.perf_counter() - start
            cpu = cpu_seconds() - cpu_start
        print(json.dumps({"impl": "pytorch-transformers", "torch": torch.__version__,
                          "batch": batch, "threads": torch.get_num_threads(),
                          "images_per_s": round(images / secs, 2),
                          "images_per_cpu_s": round(images / cpu, 2), "runs": runs,
                          "load": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
