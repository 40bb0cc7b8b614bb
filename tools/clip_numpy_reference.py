#!/usr/bin/env python3
"""Plain-numpy CLIP forward pass over a Hugging Face CLIP checkpoint folder.

A sanity check for checkpoints made by make_random_clip.py: it prints the
cosine similarities between the embeddings of a few synthetic images and a
few texts, so one can see that different inputs give different embeddings.
With --json it also writes the embeddings, which can serve as reference
values for another implementation.

Caveat: this forward pass was written from the CLIP architecture description
(pre-LayerNorm ViT / causal text transformer, quick_gelu or gelu, pooled
text output at the first <|endoftext|>, pooled image output from the class
token through post_layernorm).  It has NOT been compared with PyTorch
transformers on this machine (no torch), so treat it as a second opinion,
not as ground truth.  Images are given already at image_size, so resize /
centre crop are not exercised; only rescale + normalise are applied.

Usage:
    python tools/clip_numpy_reference.py assets/models/tiny-random-clip [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


class NumpyClip:
    def __init__(self, folder: Path):
        self.cfg = json.loads((folder / "config.json").read_text())
        self.pre = json.loads((folder / "preprocessor_config.json").read_text())
        self.w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(self.cfg["text_config"]["max_position_embeddings"])

    def _ln(self, x, p, eps):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * self.w[p + ".weight"] + self.w[p + ".bias"]

    def _lin(self, x, p, bias=True):
        y = x @ self.w[p + ".weight"].T
        return y + self.w[p + ".bias"] if bias else y

    @staticmethod
    def _act(x, kind):
        if kind == "quick_gelu":
            return x / (1.0 + np.exp(-1.702 * x))
        if kind == "gelu":
            erf = np.vectorize(math.erf)
            return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
        raise ValueError(kind)

    def _encoder(self, x, prefix, c, causal):
        heads, eps = c["num_attention_heads"], c["layer_norm_eps"]
        n, d = x.shape
        hd = d // heads
        for i in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layers.{i}"
            h = self._ln(x, p + ".layer_norm1", eps)
            q = self._lin(h, p + ".self_attn.q_proj") * hd**-0.5
            k = self._lin(h, p + ".self_attn.k_proj")
            v = self._lin(h, p + ".self_attn.v_proj")
            q, k, v = (t.reshape(n, heads, hd).transpose(1, 0, 2) for t in (q, k, v))
            s = q @ k.transpose(0, 2, 1)
            if causal:
                s = s + np.triu(np.full((n, n), -np.inf), 1)
            s = np.exp(s - s.max(-1, keepdims=True))
            s = s / s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, d)
            x = x + self._lin(a, p + ".self_attn.out_proj")
            h = self._ln(x, p + ".layer_norm2", eps)
            x = x + self._lin(self._act(self._lin(h, p + ".mlp.fc1"), c["hidden_act"]), p + ".mlp.fc2")
        return x

    def text_embed(self, text: str) -> tuple[list[int], np.ndarray]:
        c = self.cfg["text_config"]
        ids = self.tok.encode(text).ids
        x = self.w["text_model.embeddings.token_embedding.weight"][ids]
        x = x + self.w["text_model.embeddings.position_embedding.weight"][: len(ids)]
        x = self._encoder(x, "text_model", c, causal=True)
        x = self._ln(x, "text_model.final_layer_norm", c["layer_norm_eps"])
        pooled = x[ids.index(c["eos_token_id"])]
        return ids, self._lin(pooled, "text_projection", bias=False)

    def image_embed(self, rgb_u8: np.ndarray) -> np.ndarray:
        """rgb_u8: (H, W, 3) uint8 at exactly image_size x image_size."""
        c = self.cfg["vision_config"]
        size, patch = c["image_size"], c["patch_size"]
        assert rgb_u8.shape == (size, size, 3), rgb_u8.shape
        x = rgb_u8.astype(np.float64) * self.pre["rescale_factor"]
        x = (x - np.array(self.pre["image_mean"])) / np.array(self.pre["image_std"])
        x = x.transpose(2, 0, 1)  # CHW
        g = size // patch
        patches = x.reshape(3, g, patch, g, patch).transpose(1, 3, 0, 2, 4).reshape(g * g, -1)  # row-major patches
        kernel = self.w["vision_model.embeddings.patch_embedding.weight"]
        tokens = patches @ kernel.reshape(kernel.shape[0], -1).T
        x = np.concatenate([self.w["vision_model.embeddings.class_embedding"][None], tokens])
        x = x + self.w["vision_model.embeddings.position_embedding.weight"]
        x = self._ln(x, "vision_model.pre_layrnorm", c["layer_norm_eps"])
        x = self._encoder(x, "vision_model", c, causal=False)
        pooled = self._ln(x[0], "vision_model.post_layernorm", c["layer_norm_eps"])
        return self._lin(pooled, "visual_projection", bias=False)


def synthetic_images(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    ramp = np.linspace(0, 255, size)
    yy, xx = np.mgrid[0:size, 0:size]
    return {
        "red": np.tile(np.array([255, 0, 0], np.uint8), (size, size, 1)),
        "blue": np.tile(np.array([0, 0, 255], np.uint8), (size, size, 1)),
        "gray": np.full((size, size, 3), 128, np.uint8),
        "h_gradient": np.tile(ramp[None, :, None], (size, 1, 3)).astype(np.uint8),
        "checker": ((((yy // 8) + (xx // 8)) % 2) * 255).astype(np.uint8)[:, :, None].repeat(3, 2),
        "noise": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
    }


TEXTS = ["a photo of a cat", "a photo of a dog", "a red square", "hello world"]


def cosine_table(title: str, emb: dict[str, np.ndarray]) -> None:
    names = list(emb)
    unit = {k: v / np.linalg.norm(v) for k, v in emb.items()}
    print(title)
    width = max(len(n) for n in names)
    print(" " * (width + 2) + " ".join(f"{n[:10]:>10}" for n in names))
    for a in names:
        print(f"  {a:<{width}}" + " ".join(f"{unit[a] @ unit[b]:>10.4f}" for b in names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path, default=None, help="write embeddings (unnormalised, float64) here")
    a = ap.parse_args()

    m = NumpyClip(a.folder)
    imgs = synthetic_images(m.cfg["vision_config"]["image_size"])
    img_emb = {k: m.image_embed(v) for k, v in imgs.items()}
    txt = {t: m.text_embed(t) for t in TEXTS}
    txt_emb = {t: e for t, (_, e) in txt.items()}
    cosine_table("image-image cosine similarity", img_emb)
    cosine_table("text-text cosine similarity", txt_emb)
    if a.json:
        out = {
            "note": "numpy reference forward pass (tools/clip_numpy_reference.py); not checked against PyTorch",
            "images": {k: {"embedding": v.tolist()} for k, v in img_emb.items()},
            "texts": {t: {"input_ids": ids, "embedding": e.tolist()} for t, (ids, e) in txt.items()},
        }
        a.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
