#!/usr/bin/env python3
"""Train a tiny CLIP (Hugging Face CLIPModel architecture, random init) on frameseek's
synthetic camera world, contrastively, and save it in Hugging Face layout.

Reads the training set written by `frameseek world dataset` (images.u8 + captions.jsonl:
4:3 frames centre-cropped and square views of 16:9 frames, each captioned with what it
shows), tokenizes captions with the real CLIP tokenizer, trains with a symmetric InfoNCE
loss in which every image of the same scene counts as a positive, saves config.json,
model.safetensors (float16), tokenizer files and preprocessor_config.json, reloads the
folder with transformers and prints its retrieval accuracy on held-out images, overall and
per kind of image (centre crop, view, padded frame). The held-out compositions (object x
place x light) are absent from the training set itself (`meta.json` lists them); the
footage evaluation measures them.

See tools/README.md for the commands and the time it takes.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import CLIPConfig, CLIPModel

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
EOT = 49407


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder written by `frameseek world dataset`")
    p.add_argument("--tokenizer", required=True, help="CLIP tokenizer.json")
    p.add_argument("--tokenizer-config", help="tokenizer_config.json to copy beside it")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--holdout", type=int, default=2000, help="images kept out of training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--patch-size", type=int, default=8)
    p.add_argument("--vision-hidden", type=int, default=64)
    p.add_argument("--vision-layers", type=int, default=3)
    p.add_argument("--vision-heads", type=int, default=4)
    p.add_argument("--text-hidden", type=int, default=48)
    p.add_argument("--text-layers", type=int, default=2)
    p.add_argument("--text-heads", type=int, default=4)
    p.add_argument("--projection-dim", type=int, default=64)
    p.add_argument("--max-minutes", type=float, default=35.0, help="stop training after this long")
    p.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop after this many steps (0: no limit); the schedule still spans --epochs",
    )
    return p.parse_args()


def load_dataset(folder):
    meta = json.load(open(os.path.join(folder, "meta.json")))
    size, count = meta["size"], meta["count"]
    images = np.fromfile(os.path.join(folder, "images.u8"), dtype=np.uint8)
    images = images.reshape(count, size, size, 3)
    records = [json.loads(line) for line in open(os.path.join(folder, "captions.jsonl"))]
    assert len(records) == count, "captions.jsonl and images.u8 disagree"
    return meta, images, records


def tokenize_all(tokenizer, texts):
    """Token ids of each text, padded with <|endoftext|> to one length (as frameseek does)."""
    encoded = [tokenizer.encode(t).ids[:77] for t in texts]
    for ids in encoded:
        ids[-1] = EOT if len(ids) == 77 else ids[-1]
    length = max(len(ids) for ids in encoded)
    out = np.full((len(texts), length), EOT, dtype=np.int64)
    for i, ids in enumerate(encoded):
        out[i, : len(ids)] = ids
    return out


def build_config(args, size):
    return CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            hidden_size=args.text_hidden,
            intermediate_size=4 * args.text_hidden,
            num_hidden_layers=args.text_layers,
            num_attention_heads=args.text_heads,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            bos_token_id=49406,
            eos_token_id=EOT,
            pad_token_id=1,
            projection_dim=args.projection_dim,
        ),
        vision_config=dict(
            hidden_size=args.vision_hidden,
            intermediate_size=4 * args.vision_hidden,
            num_hidden_layers=args.vision_layers,
            num_attention_heads=args.vision_heads,
            image_size=size,
            patch_size=args.patch_size,
            hidden_act="quick_gelu",
            projection_dim=args.projection_dim,
        ),
        projection_dim=args.projection_dim,
    )


class Augment:
    """Cheap tensor augmentations: small shifts, brightness/contrast/colour jitter, noise.
    No flips: left and right mean something in this world."""

    def __init__(self, generator):
        self.g = generator
        self.mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    def __call__(self, batch_u8):
        x = batch_u8.permute(0, 3, 1, 2).float() / 255.0
        n, _, h, w = x.shape
        g = self.g
        pad = 3
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
        bright = 1.0 + 0.15 * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
        colour = 1.0 + 0.05 * (2 * torch.rand(n, 3, 1, 1, generator=g) - 1)
        contrast = 1.0 + 0.15 * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * contrast + m
        x = x * bright * colour
        x = x + 0.02 * torch.rand(n, 1, 1, 1, generator=g) * torch.randn(x.shape, generator=g)
        x = x.clamp(0, 1)
        return (x - self.mean) / self.std


def normalise(batch_u8):
    x = batch_u8.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def contrastive_loss(model, pixels, ids, scene_ids):
    img = F.normalize(to_tensor(model.get_image_features(pixel_values=pixels)), dim=-1)
    txt = F.normalize(to_tensor(model.get_text_features(input_ids=ids)), dim=-1)
    scale = model.logit_scale.exp().clamp(max=100.0)
    logits = scale * img @ txt.t()
    same = (scene_ids[:, None] == scene_ids[None, :]).float()
    targets = same / same.sum(dim=1, keepdim=True)
    loss_i = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


@torch.no_grad()
def features(model, images_u8, ids, batch=512):
    model.eval()
    im = torch.cat(
        [
            F.normalize(to_tensor(model.get_image_features(pixel_values=normalise(images_u8[i : i + batch]))), dim=-1)
            for i in range(0, len(images_u8), batch)
        ]
    )
    tx = torch.cat(
        [
            F.normalize(to_tensor(model.get_text_features(input_ids=ids[i : i + batch])), dim=-1)
            for i in range(0, len(ids), batch)
        ]
    )
    return im, tx


def to_tensor(output):
    """transformers 5 may return a model output object from get_*_features."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output if hasattr(output, "pooler_output") else output[0]


@torch.no_grad()
def heldout_accuracy(model, images_u8, scene_ids, canon_ids, canon_tokens):
    """Image -> canonical caption top-1 accuracy over every distinct scene caption, and
    caption -> image top-1 (is the best image one of that scene?)."""
    im, tx = features(model, images_u8, canon_tokens)
    sims = im @ tx.t()
    img_to_txt = (sims.argmax(dim=1) == scene_ids).float().mean().item()
    present = torch.unique(scene_ids)
    best_img = sims[:, present].argmax(dim=0)
    txt_to_img = (scene_ids[best_img] == present).float().mean().item()
    return img_to_txt, txt_to_img


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()

    meta, images, records = load_dataset(args.data)
    size = meta["size"]
    tokenizer = Tokenizer.from_file(args.tokenizer)

    canon = sorted({r["caption"] for r in records})
    canon_index = {c: i for i, c in enumerate(canon)}
    scene_ids = torch.tensor([canon_index[r["caption"]] for r in records])
    # Every image's caption choices: the canonical caption plus the random phrasings.
    choices = [[r["caption"]] + r["captions"] for r in records]
    flat = sorted({c for cs in choices for c in cs})
    flat_index = {c: i for i, c in enumerate(flat)}
    flat_tokens = torch.from_numpy(tokenize_all(tokenizer, flat))
    choice_ids = [[flat_index[c] for c in cs] for cs in choices]
    canon_tokens = torch.from_numpy(tokenize_all(tokenizer, canon))
    print(f"{len(records)} images, {len(canon)} distinct scenes, {len(flat)} distinct captions")

    n_train = len(records) - args.holdout
    images_t = torch.from_numpy(images)
    config = build_config(args, size)
    model = CLIPModel(config)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f} M parameters")

    steps_per_epoch = n_train // args.batch
    total_steps = steps_per_epoch * args.epochs
    warmup = max(1, min(300, total_steps // 10))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total_steps))),
    )
    g = torch.Generator().manual_seed(args.seed)
    augment = Augment(g)
    step = 0
    deadline = started + args.max_minutes * 60
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n_train, generator=g)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch : (b + 1) * args.batch]
            pick = torch.randint(0, 7, (len(idx),), generator=g)
            text_rows = torch.tensor([choice_ids[i][k] for i, k in zip(idx.tolist(), pick.tolist())])
            ids = flat_tokens[text_rows]
            # Trim padding columns shared by the whole batch.
            longest = int((ids != EOT).sum(dim=1).max()) + 1
            ids = ids[:, :longest]
            pixels = augment(images_t[idx])
            loss = contrastive_loss(model, pixels, ids, scene_ids[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            running += loss.item()
            if step % 20 == 0:
                print(
                    f"epoch {epoch} step {step}/{total_steps} loss {running / 20:.3f} "
                    f"scale {model.logit_scale.exp().item():.1f} {time.time() - started:.0f}s",
                    flush=True,
                )
                running = 0.0
            if time.time() > deadline or step == args.max_steps:
                break
        acc = heldout_accuracy(
            model, images_t[n_train:], scene_ids[n_train:], torch.arange(len(canon)), canon_tokens
        )
        print(f"epoch {epoch}: held-out image->caption {acc[0]:.3f}, caption->image {acc[1]:.3f}", flush=True)
        trained_acc = acc
        if time.time() > deadline or step == args.max_steps:
            print(f"stopped after {step} steps ({'time' if time.time() > deadline else 'step'} limit)")
            break
    train_seconds = time.time() - started
    print(f"training took {train_seconds / 60:.1f} min, {step} steps")

    save(model, config, args, size)
    views = [r.get("view", "centre") for r in records[n_train:]]
    verify(args, images_t[n_train:], scene_ids[n_train:], canon_tokens, views, trained_acc)
    print(f"total {(time.time() - started) / 60:.1f} min")


def save(model, config, args, size):
    os.makedirs(args.out, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    save_file(state, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    config.dtype = "float16"
    config.architectures = ["CLIPModel"]
    config.save_pretrained(args.out)
    shutil.copyfile(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    if args.tokenizer_config:
        shutil.copyfile(args.tokenizer_config, os.path.join(args.out, "tokenizer_config.json"))
    pre = {
        "crop_size": {"height": size, "width": size},
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
        "size": {"shortest_edge": size},
    }
    with open(os.path.join(args.out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"saved {args.out} ({total / 1e6:.1f} MB)")


def verify(args, images_u8, scene_ids, canon_tokens, views, trained_acc):
    """Reload the saved folder with transformers (float32), measure it again (overall and per
    kind of image), and fail if float16 storage changed the accuracy."""
    model = CLIPModel.from_pretrained(args.out, dtype=torch.float32)
    model.eval()
    acc = heldout_accuracy(model, images_u8, scene_ids, torch.arange(len(canon_tokens)), canon_tokens)
    print(f"reloaded with transformers: held-out image->caption {acc[0]:.3f}, caption->image {acc[1]:.3f}")
    for kind in sorted(set(views)):
        rows = torch.tensor([i for i, v in enumerate(views) if v == kind])
        part = heldout_accuracy(model, images_u8[rows], scene_ids[rows], torch.arange(len(canon_tokens)), canon_tokens)
        print(f"  {kind}: {len(rows)} images, image->caption {part[0]:.3f}, caption->image {part[1]:.3f}")
    if abs(acc[0] - trained_acc[0]) > 0.02:
        sys.exit(f"the saved model does not reproduce the trained accuracy ({trained_acc[0]:.3f})")


if __name__ == "__main__":
    main()
