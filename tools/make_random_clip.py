#!/usr/bin/env python3
"""Write a random-weight CLIP checkpoint folder in Hugging Face layout.

Only numpy + safetensors are needed to write it (no torch).  The folder gets:

    config.json               as transformers' CLIPConfig would serialise it
    model.safetensors         float32 tensors named and shaped exactly like
                              transformers' CLIPModel.state_dict() (without the
                              non-persistent position_ids buffers)
    preprocessor_config.json  as CLIPImageProcessor would serialise it
    tokenizer.json            copied from --tokenizer (see make_tokenizer.py)
    tokenizer_config.json     copied too when present next to it

Initialisation (seeded by --seed): every linear weight and bias, embedding,
class embedding and patch-embedding kernel ~ N(0, 0.02); LayerNorm weight 1,
bias 0; logit_scale = 2.6592 (= ln(1/0.07)).  Linear biases are random rather
than zero (as transformers would initialise them) so that a loader that drops
biases gives visibly different outputs.  Exception, on by default for the
vision tower only (--vision-init/--text-init): the encoder-layer matrices and
the patch-embedding kernel use std 1/sqrt(fan_in), because with 0.02 the
pooled token ignores the input and all images embed to nearly the same vector.

If transformers is importable, config.json is cross-checked by loading it with
CLIPConfig.  If torch is importable too, the checkpoint is loaded into
CLIPModel with strict key matching.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

VOCAB_SIZE = 49408
MAX_POSITIONS = 77
BOS_ID, EOS_ID, PAD_ID = 49406, 49407, 1
LOGIT_SCALE_INIT = 2.6592
LN_EPS = 1e-5
INIT_STD = 0.02
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TRANSFORMERS_VERSION_FALLBACK = "5.24.0"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="tokenizer.json to copy in (default: tools/build/tokenizer/tokenizer.json)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--vision-hidden", type=int, default=64)
    ap.add_argument("--vision-layers", type=int, default=2)
    ap.add_argument("--vision-heads", type=int, default=4)
    ap.add_argument("--text-hidden", type=int, default=64)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--text-heads", type=int, default=4)
    ap.add_argument("--projection-dim", type=int, default=64)
    ap.add_argument("--hidden-act", choices=["quick_gelu", "gelu"], default="quick_gelu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-init", choices=["scaled", "hf"], default="scaled",
                    help="vision tower init: 'scaled' (default, inputs give distinct embeddings) or 'hf' (all N(0, 0.02))")
    ap.add_argument("--text-init", choices=["scaled", "hf"], default="hf",
                    help="text tower init, same choices (default 'hf')")
    a = ap.parse_args()
    if a.image_size % a.patch_size:
        ap.error("--image-size must be a multiple of --patch-size")
    if a.vision_hidden % a.vision_heads or a.text_hidden % a.text_heads:
        ap.error("hidden sizes must be divisible by their head counts")
    return a


def transformers_version() -> str:
    try:
        import transformers  # noqa: F401

        return transformers.__version__
    except Exception:
        return TRANSFORMERS_VERSION_FALLBACK


def make_config(a: argparse.Namespace) -> dict:
    """Same keys/values as CLIPConfig(...).to_json_string() (the diff-against-
    defaults form save_pretrained writes), plus the dtype save_pretrained records."""
    text = {
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "hidden_act": a.hidden_act,
        "hidden_size": a.text_hidden,
        "initializer_factor": 1.0,
        "initializer_range": INIT_STD,
        "intermediate_size": 4 * a.text_hidden,
        "layer_norm_eps": LN_EPS,
        "max_position_embeddings": MAX_POSITIONS,
        "model_type": "clip_text_model",
        "num_attention_heads": a.text_heads,
        "num_hidden_layers": a.text_layers,
        "pad_token_id": PAD_ID,
        "projection_dim": a.projection_dim,
        "vocab_size": VOCAB_SIZE,
    }
    vision = {
        "attention_dropout": 0.0,
        "hidden_act": a.hidden_act,
        "hidden_size": a.vision_hidden,
        "image_size": a.image_size,
        "initializer_factor": 1.0,
        "initializer_range": INIT_STD,
        "intermediate_size": 4 * a.vision_hidden,
        "layer_norm_eps": LN_EPS,
        "model_type": "clip_vision_model",
        "num_attention_heads": a.vision_heads,
        "num_channels": 3,
        "num_hidden_layers": a.vision_layers,
        "patch_size": a.patch_size,
        "projection_dim": a.projection_dim,
    }
    return {
        "architectures": ["CLIPModel"],
        "dtype": "float32",
        "initializer_factor": 1.0,
        "logit_scale_init_value": LOGIT_SCALE_INIT,
        "model_type": "clip",
        "projection_dim": a.projection_dim,
        "text_config": text,
        "transformers_version": transformers_version(),
        "vision_config": vision,
    }


def make_preprocessor_config(a: argparse.Namespace) -> dict:
    return {
        "crop_size": {"height": a.image_size, "width": a.image_size},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": a.image_size},
    }


def expected_shapes(a: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    """Every CLIPModel state_dict entry and its shape, in module order."""
    shapes: dict[str, tuple[int, ...]] = {}

    def encoder(prefix: str, hidden: int, layers: int) -> None:
        inter = 4 * hidden
        for i in range(layers):
            p = f"{prefix}.encoder.layers.{i}"
            for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
                shapes[f"{p}.self_attn.{proj}.weight"] = (hidden, hidden)
                shapes[f"{p}.self_attn.{proj}.bias"] = (hidden,)
            shapes[f"{p}.layer_norm1.weight"] = (hidden,)
            shapes[f"{p}.layer_norm1.bias"] = (hidden,)
            shapes[f"{p}.mlp.fc1.weight"] = (inter, hidden)
            shapes[f"{p}.mlp.fc1.bias"] = (inter,)
            shapes[f"{p}.mlp.fc2.weight"] = (hidden, inter)
            shapes[f"{p}.mlp.fc2.bias"] = (hidden,)
            shapes[f"{p}.layer_norm2.weight"] = (hidden,)
            shapes[f"{p}.layer_norm2.bias"] = (hidden,)

    th, vh = a.text_hidden, a.vision_hidden
    shapes["text_model.embeddings.token_embedding.weight"] = (VOCAB_SIZE, th)
    shapes["text_model.embeddings.position_embedding.weight"] = (MAX_POSITIONS, th)
    encoder("text_model", th, a.text_layers)
    shapes["text_model.final_layer_norm.weight"] = (th,)
    shapes["text_model.final_layer_norm.bias"] = (th,)

    n_pos = (a.image_size // a.patch_size) ** 2 + 1
    shapes["vision_model.embeddings.class_embedding"] = (vh,)
    shapes["vision_model.embeddings.patch_embedding.weight"] = (vh, 3, a.patch_size, a.patch_size)
    shapes["vision_model.embeddings.position_embedding.weight"] = (n_pos, vh)
    shapes["vision_model.pre_layrnorm.weight"] = (vh,)  # sic: transformers' spelling
    shapes["vision_model.pre_layrnorm.bias"] = (vh,)
    encoder("vision_model", vh, a.vision_layers)
    shapes["vision_model.post_layernorm.weight"] = (vh,)
    shapes["vision_model.post_layernorm.bias"] = (vh,)

    shapes["visual_projection.weight"] = (a.projection_dim, vh)
    shapes["text_projection.weight"] = (a.projection_dim, th)
    shapes["logit_scale"] = ()
    return shapes


def is_layer_norm(name: str) -> bool:
    return any(k in name for k in ("layer_norm1.", "layer_norm2.", "final_layer_norm.", "pre_layrnorm.", "post_layernorm."))


def weight_std(name: str, shape: tuple[int, ...], tower_init: dict[str, str]) -> float:
    """Standard deviation for one randomly initialised tensor.

    "hf": N(0, 0.02) everywhere.  With 0.02-scaled attention and MLP weights
    the pooled (CLS / end-of-text) token barely sees the rest of the sequence,
    so every input gets almost the same embedding (cosine ~0.999 between a red
    and a blue image).  "scaled": matrices of that tower's encoder layers and
    the patch-embedding kernel use std 1/sqrt(fan_in) instead, so the
    embedding follows the input; embeddings, biases and projections stay 0.02."""
    tower = "vision" if name.startswith("vision_model.") else "text" if name.startswith("text_model.") else None
    if tower is None or tower_init[tower] == "hf" or not name.endswith(".weight"):
        return INIT_STD
    if ".encoder.layers." in name or name.endswith("patch_embedding.weight"):
        fan_in = int(np.prod(shape[1:]))
        return 1.0 / np.sqrt(fan_in)
    return INIT_STD


def make_weights(a: argparse.Namespace) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(a.seed)
    tower_init = {"vision": a.vision_init, "text": a.text_init}
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(a).items():
        if name == "logit_scale":
            t = np.array(LOGIT_SCALE_INIT, dtype=np.float32)
        elif is_layer_norm(name):
            t = np.ones(shape, np.float32) if name.endswith(".weight") else np.zeros(shape, np.float32)
        else:
            t = rng.normal(0.0, weight_std(name, shape, tower_init), size=shape)
        # np.array rather than np.ascontiguousarray: the latter turns the 0-d
        # logit_scale into shape [1].
        out[name] = np.array(t, dtype=np.float32, order="C")
    return out


def write_json(path: Path, obj: dict) -> None:
    # Same formatting as transformers' to_json_file: indent 2, sorted keys, trailing newline.
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def validate(out: Path, a: argparse.Namespace) -> None:
    want = expected_shapes(a)
    got = load_file(str(out / "model.safetensors"))
    problems = []
    for k in sorted(set(want) | set(got)):
        if k not in got:
            problems.append(f"missing {k}")
        elif k not in want:
            problems.append(f"unexpected {k}")
        elif tuple(got[k].shape) != want[k] or got[k].dtype != np.float32:
            problems.append(f"{k}: {got[k].dtype}{tuple(got[k].shape)} != float32{want[k]}")
    if any("position_ids" in k for k in got):
        problems.append("position_ids buffer present")
    if problems:
        sys.exit("checkpoint validation failed:\n  " + "\n  ".join(problems))
    n_params = sum(int(np.prod(s)) for s in want.values())
    print(f"safetensors: {len(got)} tensors, {n_params:,} parameters, all float32, names/shapes as expected")

    try:
        from transformers import CLIPConfig
    except Exception as e:  # pragma: no cover
        print(f"transformers not importable ({e}); skipped CLIPConfig check")
        return
    cfg = CLIPConfig.from_pretrained(str(out))
    tc, vc = cfg.text_config, cfg.vision_config
    checks = {
        "model_type": (cfg.model_type, "clip"),
        "projection_dim": (cfg.projection_dim, a.projection_dim),
        "text.hidden_size": (tc.hidden_size, a.text_hidden),
        "text.intermediate_size": (tc.intermediate_size, 4 * a.text_hidden),
        "text.num_hidden_layers": (tc.num_hidden_layers, a.text_layers),
        "text.num_attention_heads": (tc.num_attention_heads, a.text_heads),
        "text.vocab_size": (tc.vocab_size, VOCAB_SIZE),
        "text.eos_token_id": (tc.eos_token_id, EOS_ID),
        "text.hidden_act": (tc.hidden_act, a.hidden_act),
        "vision.hidden_size": (vc.hidden_size, a.vision_hidden),
        "vision.num_hidden_layers": (vc.num_hidden_layers, a.vision_layers),
        "vision.num_attention_heads": (vc.num_attention_heads, a.vision_heads),
        "vision.image_size": (vc.image_size, a.image_size),
        "vision.patch_size": (vc.patch_size, a.patch_size),
        "vision.hidden_act": (vc.hidden_act, a.hidden_act),
    }
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    if bad:
        sys.exit(f"CLIPConfig round trip mismatch: {bad}")
    # Our hand-written config must hold exactly the keys CLIPConfig writes itself.
    ref = json.loads(cfg.to_json_string())
    mine = json.loads((out / "config.json").read_text())
    for section in (None, "text_config", "vision_config"):
        r = ref if section is None else ref[section]
        m = mine if section is None else mine[section]
        diff = {k for k in set(r) ^ set(m) if k not in ("dtype", "transformers_version")}
        diff |= {k for k in set(r) & set(m) if not isinstance(r[k], dict) and r[k] != m[k]}
        if diff:
            sys.exit(f"config.json {section or 'top level'} differs from CLIPConfig output in: {sorted(diff)}")
    print(f"config.json: loads with transformers {transformers_version()} CLIPConfig and matches its own serialisation")

    try:
        import torch  # noqa: F401
    except Exception:
        print("torch not installed; skipped CLIPModel strict load")
        return
    from transformers import CLIPModel
    from safetensors.torch import load_file as torch_load

    model = CLIPModel(cfg)
    model.load_state_dict(torch_load(str(out / "model.safetensors")), strict=True)
    print("CLIPModel.load_state_dict(strict=True): ok")


def main() -> None:
    a = parse_args()
    here = Path(__file__).resolve().parent
    tokenizer = a.tokenizer or here / "build" / "tokenizer" / "tokenizer.json"
    if not tokenizer.is_file():
        sys.exit(f"{tokenizer} not found: run tools/make_tokenizer.py first (or pass --tokenizer)")

    a.out.mkdir(parents=True, exist_ok=True)
    weights = make_weights(a)
    save_file(weights, str(a.out / "model.safetensors"), metadata={"format": "pt"})
    (a.out / "model.safetensors").chmod(0o644)  # safetensors creates it 0600
    write_json(a.out / "config.json", make_config(a))
    write_json(a.out / "preprocessor_config.json", make_preprocessor_config(a))
    shutil.copy(tokenizer, a.out / "tokenizer.json")
    tok_cfg = tokenizer.parent / "tokenizer_config.json"
    if tok_cfg.is_file():
        shutil.copy(tok_cfg, a.out / "tokenizer_config.json")

    validate(a.out, a)
    # (A README.md in --out, e.g. the fixture's attribution notice, is left alone.)
    total = sum(p.stat().st_size for p in a.out.iterdir() if p.is_file())
    for p in sorted(a.out.iterdir()):
        print(f"  {p.stat().st_size:>10,}  {p.name}")
    print(f"  {total:>10,}  total in {a.out}")


if __name__ == "__main__":
    main()
