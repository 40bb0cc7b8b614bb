#!/usr/bin/env python3
"""The Python reference pipeline frameseek is compared against (issue 8).

Ingest: PyAV decodes every frame of a video; a frame is kept when its presentation time
reaches the next multiple of the sampling interval (the same rule as frameseek's
IntervalSampler); kept frames go through transformers' CLIPImageProcessor and
CLIPModel.get_image_features in batches of 32; the L2-normalised vectors are kept in a
numpy array.

With --producer (issue 20: what a careful Python user writes next), a producer thread
decodes, samples (the same rule, so the same pictures) and preprocesses whole batches,
handing pixel tensors through a bounded queue to the main thread, which only runs the
model; decoding (PyAV), preprocessing (PIL, numpy) and torch release the GIL, so the two
overlap. Tune --batch for it (tools/bench/compare.py --python-batches).

Query: CLIP tokenizer + get_text_features + normalise, then a matmul against the stored
matrix and argmax (top-k by argpartition for k > 1).

Used as a library by compare.py, or on its own:

    python tools/bench/python_pipeline.py ingest --model DIR --video FILE --fps 1 --threads 2 \
        [--producer --batch 8]
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import sys
import threading
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
    def _sampled(self, video: str, interval: float, stages: dict, counts: dict):
        """Yields (offset_ms, PIL image) for each kept frame: a frame is kept when its
        presentation time reaches the next multiple of `interval` (frameseek's rule)."""
        next_ms = 0.0
        interval_ms = interval * 1000.0
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
                    return
                counts["decoded"] += 1
                pts = frame.pts if frame.pts is not None else start
                offset_ms = (pts - start) * tb * 1000.0
                if offset_ms + 0.5 < next_ms:
                    continue
                while next_ms <= offset_ms + 0.5:
                    next_ms += interval_ms
                t = time.perf_counter()
                image = frame.to_image()
                stages["convert"] += time.perf_counter() - t
                counts["kept"] += 1
                yield offset_ms, image

    def _embed(self, pixels: torch.Tensor, stages: dict, chunks: list) -> None:
        t = time.perf_counter()
        with torch.inference_mode():
            f = _features(self.model.get_image_features(pixel_values=pixels))
            f = torch.nn.functional.normalize(f, dim=-1)
        t2 = time.perf_counter()
        stages["embed"] += t2 - t
        chunks.append(f.numpy().astype(np.float32, copy=False))
        stages["store"] += time.perf_counter() - t2

    def ingest(self, video: str, interval: float, producer: bool = False) -> dict:
        stages = {"decode": 0.0, "convert": 0.0, "embed": 0.0, "store": 0.0, "wait": 0.0}
        counts = {"decoded": 0, "kept": 0}
        chunks: list[np.ndarray] = []
        t_all = time.perf_counter()

        def batches():
            """Preprocessed pixel batches of `self.batch` sampled frames (the last one shorter)."""
            pending: list = []
            for offset_ms, image in self._sampled(video, interval, stages, counts):
                pending.append(image)
                self.offsets.append(offset_ms)
                if len(pending) >= self.batch:
                    yield self._preprocess(pending, stages)
                    pending = []
            if pending:
                yield self._preprocess(pending, stages)

        if producer:
            q: queue.Queue = queue.Queue(maxsize=2)
            failure: list = []

            def produce():
                try:
                    for pixels in batches():
                        q.put(pixels)
                except BaseException as e:  # noqa: BLE001 - re-raised on the main thread
                    failure.append(e)
                finally:
                    q.put(None)

            worker = threading.Thread(target=produce, name="decode-preprocess", daemon=True)
            worker.start()
            while True:
                t = time.perf_counter()
                pixels = q.get()
                stages["wait"] += time.perf_counter() - t
                if pixels is None:
                    break
                self._embed(pixels, stages, chunks)
            worker.join()
            if failure:
                raise failure[0]
        else:
            for pixels in batches():
                self._embed(pixels, stages, chunks)
        t = time.perf_counter()
        if chunks:
            self.vectors = np.concatenate([self.vectors, *chunks])
        stages["store"] += time.perf_counter() - t
        wall = time.perf_counter() - t_all
        return {
            "wall_s": wall,
            "decoded": counts["decoded"],
            "kept": counts["kept"],
            "producer": producer,
            "batch": self.batch,
            "stages_s": stages,
            "model_load_s": self.load_s,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }

    def _preprocess(self, images: list, stages: dict) -> torch.Tensor:
        t = time.perf_counter()
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        stages["convert"] += time.perf_counter() - t
        return pixels

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
    ap.add_argument("--producer", action="store_true",
                    help="decode and preprocess in a producer thread, the model on the main thread")
    a = ap.parse_args()
    p = Pipeline(a.model, a.threads, a.batch)
    r = p.ingest(a.video, 1.0 / a.fps, producer=a.producer)
    r["vectors_shape"] = list(p.vectors.shape)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
