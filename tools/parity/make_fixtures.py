#!/usr/bin/env python3
"""Write the CLIP parity fixtures: small random-weight checkpoints of several standard CLIP
shapes, and reference outputs from PyTorch transformers for real photos and sentences.

Run by hand (not in CI), from the repository root, with the venv of requirements.txt:

    nice -n 19 .venv-torch/bin/python tools/parity/make_fixtures.py

Inputs: the real OpenAI CLIP tokenizer (assets/models/tiny-random-clip/tokenizer.json and
tokenizer_config.json) and a few photographs shipped in the scikit-image wheel.
Outputs, under tests/fixtures/parity/:

    images/<name>.png|jpg                      the photographs (copied, one cropped)
    models/<checkpoint>/config.json            CLIPConfig.save_pretrained
    models/<checkpoint>/model.safetensors      CLIPModel.save_pretrained (float32)
    models/<checkpoint>/preprocessor_config.json   CLIPImageProcessor(Pil).save_pretrained
    models/<checkpoint>/tokenizer.json, tokenizer_config.json   the real CLIP tokenizer
    models/<checkpoint>/reference.json         token ids, L2-normalised text and image
                                               embeddings, logit scale, versions
    models/<checkpoint>/reference.safetensors  preprocessed pixel tensors, one per image

The image reference is transformers' PIL backend (`CLIPImageProcessorPil`, which is what
`CLIPImageProcessor` falls back to without torchvision): PIL decoding, `convert("RGB")`,
shortest side to the size with PIL BICUBIC, centre crop, 1/255, OpenAI mean/std.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoTokenizer, CLIPConfig, CLIPModel
from transformers.models.clip import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "parity"
TOKENIZER_DIR = ROOT / "assets" / "models" / "tiny-random-clip"

# Sentences for the tokenizer and text-embedding checks.  Embeddable ones first; the
# tokenizer-only cases (empty, whitespace only) are marked.
TEXTS = [
    ("plain", "a photo of a cat"),
    ("cased", "A Photo Of A CAT On The SOFA"),
    ("punctuated", "Hello, world!!! What's up? (it's late...) -- \"quoted\"; [brackets] & more"),
    ("numeric", "The year 2024: 3.14159, 1,000,000 people and 42nd street at 9:30pm"),
    ("unicode", "Café naïve façade — 東京タワー、ありがとう 🚀🐱 Ünïcödé ß"),
    ("combining", "cafe\u0301 and re\u0301sume\u0301"),
    ("whitespace", "   lots\tof \n\n  whitespace \u00a0 here   \t"),
    ("long-words", "a dog running on the beach " * 20),
    ("long-punct", "red, green; blue! " * 30 + "the end"),
    ("long-single", "supercalifragilisticexpialidocious" * 12),
]
TOKENIZER_ONLY = [
    ("empty", ""),
    ("spaces-only", "   \t \n "),
]

# Photographs from skimage/data (licences in tests/fixtures/parity/README.md).
IMAGES = [
    ("astronaut.png", "astronaut.png", None),
    ("coffee.png", "coffee.png", None),
    ("chelsea.png", "chelsea.png", None),
    ("rocket.jpg", "rocket.jpg", None),
    # A portrait-shaped crop of the grayscale camera photo (exercises L -> RGB and the
    # portrait branch of the resize).
    ("camera_portrait.png", "camera.png", (96, 0, 416, 512)),
]

# The checkpoints: small widths, standard geometries and the config variants to cover.
CHECKPOINTS = {
    "b32-quickgelu-224": dict(
        image_size=224, patch_size=32, vision_hidden=64, vision_layers=2, vision_heads=4,
        text_hidden=32, text_layers=2, text_heads=2, projection_dim=512,
        hidden_act="quick_gelu", eos_token_id=49407, seed=1, logit_scale=math.log(100.0),
    ),
    "b16-gelu-64": dict(
        image_size=64, patch_size=16, vision_hidden=48, vision_layers=3, vision_heads=4,
        text_hidden=32, text_layers=2, text_heads=4, projection_dim=96,
        hidden_act="gelu", eos_token_id=49407, seed=2, logit_scale=math.log(1 / 0.07),
    ),
    "l14-336-legacy-eos": dict(
        image_size=336, patch_size=14, vision_hidden=32, vision_layers=2, vision_heads=2,
        text_hidden=32, text_layers=2, text_heads=2, projection_dim=48,
        hidden_act="quick_gelu", eos_token_id=2, seed=3, logit_scale=math.log(50.0),
    ),
}


def make_config(c: dict) -> CLIPConfig:
    text = dict(
        vocab_size=49408, hidden_size=c["text_hidden"], intermediate_size=4 * c["text_hidden"],
        num_hidden_layers=c["text_layers"], num_attention_heads=c["text_heads"],
        max_position_embeddings=77, hidden_act=c["hidden_act"], layer_norm_eps=1e-5,
        bos_token_id=49406, eos_token_id=c["eos_token_id"], pad_token_id=1,
        projection_dim=c["projection_dim"],
    )
    vision = dict(
        hidden_size=c["vision_hidden"], intermediate_size=4 * c["vision_hidden"],
        num_hidden_layers=c["vision_layers"], num_attention_heads=c["vision_heads"],
        num_channels=3, image_size=c["image_size"], patch_size=c["patch_size"],
        hidden_act=c["hidden_act"], layer_norm_eps=1e-5, projection_dim=c["projection_dim"],
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=c["projection_dim"],
                      logit_scale_init_value=c["logit_scale"])


@torch.no_grad()
def randomise(model: CLIPModel, seed: int, logit_scale: float) -> None:
    """Weights that make every input matter: matrices N(0, 1/fan_in), biases and LayerNorm
    parameters random too (so a loader that drops or swaps one is caught)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if name == "logit_scale":
            p.fill_(logit_scale)
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias") or "class_embedding" in name:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        elif "token_embedding" in name:
            p.copy_(torch.randn(p.shape, generator=g))
        elif "position_embedding" in name:
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
        else:
            fan_in = int(np.prod(p.shape[1:]))
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))


def features(out) -> torch.Tensor:
    """get_*_features returns a tensor in older transformers, a model output in newer."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def prepare_images() -> dict[str, Path]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, source, crop in IMAGES:
        dst = OUT / "images" / name
        if crop is None:
            shutil.copyfile(data / source, dst)
        else:
            Image.open(data / source).crop(crop).save(dst, optimize=True)
        paths[name] = dst
    return paths


def cosine_spread(x: torch.Tensor) -> tuple[float, float]:
    sims = x @ x.T
    off = sims[~torch.eye(len(x), dtype=torch.bool)]
    return float(off.min()), float(off.max())


def main() -> None:
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    images = prepare_images()
    models_dir = OUT / "models"
    for name, c in CHECKPOINTS.items():
        folder = models_dir / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        config = make_config(c)
        model = CLIPModel(config).eval()
        randomise(model, c["seed"], c["logit_scale"])
        model.save_pretrained(str(folder), safe_serialization=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(TOKENIZER_DIR / f, folder / f)
        size = c["image_size"]
        processor = CLIPImageProcessorPil(size={"shortest_edge": size},
                                          crop_size={"height": size, "width": size})
        processor.save_pretrained(str(folder))
        # Reload from disk, as a user would.
        model = CLIPModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))

        texts = []
        text_embeds = []
        with torch.no_grad():
            for kind, text in TEXTS + TOKENIZER_ONLY:
                enc = tokenizer(text, truncation=True, max_length=77)
                ids = list(enc["input_ids"])
                entry = {"kind": kind, "text": text, "ids": ids}
                if (kind, text) in TEXTS:
                    emb = features(model.get_text_features(input_ids=torch.tensor([ids])))[0]
                    emb = emb / emb.norm()
                    text_embeds.append(emb)
                    entry["embedding"] = [float(v) for v in emb]
                texts.append(entry)

            pixel_tensors = {}
            image_entries = []
            image_embeds = []
            for img_name, path in images.items():
                pil = Image.open(path)
                pixels = processor(images=pil.convert("RGB"), return_tensors="pt")["pixel_values"]
                emb = features(model.get_image_features(pixel_values=pixels))[0]
                emb = emb / emb.norm()
                image_embeds.append(emb)
                pixel_tensors[f"pixels.{img_name}"] = pixels[0].contiguous().float()
                image_entries.append({
                    "file": f"images/{img_name}", "name": img_name, "mode": pil.mode,
                    "width": pil.width, "height": pil.height,
                    "embedding": [float(v) for v in emb],
                })
        save_file(pixel_tensors, str(folder / "reference.safetensors"))
        for p in folder.iterdir():
            p.chmod(0o644)
        t_lo, t_hi = cosine_spread(torch.stack(text_embeds))
        i_lo, i_hi = cosine_spread(torch.stack(image_embeds))
        reference = {
            "checkpoint": name,
            "generated_by": "tools/parity/make_fixtures.py",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "pillow": PIL.__version__, "numpy": np.__version__},
            "tokenizer_class": type(tokenizer).__name__,
            "image_processor_class": type(processor).__name__,
            "settings": c,
            "projection_dim": c["projection_dim"],
            "logit_scale_exp": float(model.logit_scale.detach().exp()),
            "texts": texts,
            "images": image_entries,
            "spread": {"text_cosine_min": t_lo, "text_cosine_max": t_hi,
                       "image_cosine_min": i_lo, "image_cosine_max": i_hi},
        }
        (folder / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{name}: {size_mb:.1f} MB; text cosines between inputs {t_lo:.3f}..{t_hi:.3f}, "
              f"image {i_lo:.3f}..{i_hi:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
