#!/usr/bin/env python3
"""The Python reference pipeline frameseek is compared against (issue 8).

Ingest: PyAV decodes every frame of a video; a frame is kept when its presentation time
reaches the next multiple of the sampling interval (the same rule as frameseek's
IntervalSampler); kept frames go through transformers' CLIPImageProcessor and
CLIPModel.get_image_features in batches of 32; the L2-normalised vectors are kept in a
numpy array.

Query: CLIP tokenizer + get_text_features + normalise, then a matmul against the stored
matrix and argmax (top-k by argpartition for k > 1).

Used as a library by compare.py, or on its own:

    python tools/bench/python_pipeline.py ingest --model DIR --video FILE --fps 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import av
import numpy as np
import torch
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizerFast


def _features(out) -> torch.Tensor:
    # transformers 5 may return a model output object instead of a tensor.
    if isinstance(out, torch.Tensor):
        return out
    for name in ("image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, name, None)
        if isinstance(v, torch.Tensor):
            return v
    raise TypeError(f"unexpected get_*_features output {type(out)}")


class Pipeline:
    def __init__(self, model_dir: str, threads: int = 2, batch: int = 32):
        torch.set_num_threads(threads)
        self.threads = threads
        self.batch = batch
        t = time.perf_counter()
        self.model = CLIPModel.from_pretrained(model_dir).eval()
        self.processor = CLIPImageProcessor.from_pretrained(model_dir)
        self.tokenizer = CLIPTokenizerFast.from_pretrained(model_dir)
        self.load_s = time.perf_counter() - t
        self.vectors = np.zeros((0, self.model.config.projection_dim), dtype=np.float32)
        self.offsets: list[float] = []

    # ---------------------------------------------------------------- ingest
    def ingest(self, video: str, interval: float) -> dict:
        stages = {"decode": 0.0, "convert": 0.0, "embed": 0.0, "store": 0.0}
        chunks: list[np.ndarray] = []
        pending: list = []
        decoded = kept = 0
        next_ms = 0.0
        interval_ms = interval * 1000.0
        t_all = time.perf_counter()

        def flush():
            if not pending:
                return
            t = time.perf_counter()
            pixels = self.processor(images=pending, return_tensors="pt")["pixel_values"]
            t2 = time.perf_counter()
            stages["convert"] += t2 - t
            with torch.inference_mode():
                f = _features(self.model.get_image_features(pixel_values=pixels))
                f = torch.nn.functional.normalize(f, dim=-1)
            t3 = time.perf_counter()
            stages["embed"] += t3 - t2
            chunks.append(f.numpy().astype(np.float32, copy=False))
            stages["store"] += time.perf_counter() - t3
            pending.clear()

        with av.open(video) as container:
            stream = container.streams.video[0]
            stream.thread_type = "FRAME"
            stream.thread_count = self.threads
            start = stream.start_time or 0
            tb = float(stream.time_base)
            it = container.decode(stream)
            while True:
                t = time.perf_counter()
                frame = next(it, None)
                stages["decode"] += time.perf_counter() - t
                if frame is None:
                    break
                decoded += 1
                pts = frame.pts if frame.pts is not None else start
                offset_ms = (pts - start) * tb * 1000.0
                if offset_ms + 0.5 < next_ms:
                    continue
                while next_ms <= offset_ms + 0.5:
                    next_ms += interval_ms
                t = time.perf_counter()
                pending.append(frame.to_image())
                stages["convert"] += time.perf_counter() - t
                self.offsets.append(offset_ms)
                kept += 1
                if len(pending) >= self.batch:
                    flush()
            flush()
        t = time.perf_counter()
        if chunks:
            self.vectors = np.concatenate([self.vectors, *chunks])
        stages["store"] += time.perf_counter() - t
        wall = time.perf_counter() - t_all
        return {
            "wall_s": wall,
            "decoded": decoded,
            "kept": kept,
            "stages_s": stages,
            "model_load_s": self.load_s,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }

    # ---------------------------------------------------------------- query
    def embed_text(self, text: str) -> np.ndarray:
        tokens = self.tokenizer([text], padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            f = _features(self.model.get_text_features(**tokens))
            f = torch.nn.functional.normalize(f, dim=-1)
        return f[0].numpy()

    def query(self, text: str, k: int = 1) -> np.ndarray:
        q = self.embed_text(text)
        scores = self.vectors @ q
        if k == 1:
            return np.array([int(np.argmax(scores))])
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["ingest"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--video", required=True)
    ap.add_argument("--fps", type=float, default=1.0, help="sampled frames per second")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    p = Pipeline(a.model, a.threads, a.batch)
    r = p.ingest(a.video, 1.0 / a.fps)
    r["vectors_shape"] = list(p.vectors.shape)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
