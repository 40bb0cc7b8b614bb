#!/usr/bin/env python3
"""Build the OpenAI CLIP BPE tokenizer as a Hugging Face `tokenizer.json`.

The BPE merge list is OpenAI's `bpe_simple_vocab_16e6.txt.gz`, taken from the
`open_clip_torch` wheel on PyPI (installed with --no-deps; only the data file
is used).  From it we derive the 49,408-token CLIP vocabulary:

    ids      0..255    the 256 byte-level characters
    ids    256..511    the same characters with the end-of-word suffix "</w>"
    ids    512..49405  one token per merge (48,894 merges: lines 1..48894 of
                       the file, line 0 being the "#version" header)
    id     49406       <|startoftext|>
    id     49407       <|endoftext|>

vocab.json + merges.txt are written to a scratch directory, loaded with
transformers' CLIPTokenizerFast (a `tokenizers`-backed class, no torch
needed), and saved.  The result is checked against token ids known from the
OpenAI tokenizer and against an independent pure-Python BPE implemented below.

Usage:
    python tools/make_tokenizer.py --out DIR [--bpe PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

VOCAB_SIZE = 49408
N_MERGES = 49152 - 256 - 2  # 48,894
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MODEL_MAX_LENGTH = 77
EOW = "</w>"


def default_bpe_path() -> Path:
    """Locate bpe_simple_vocab_16e6.txt.gz inside the installed open_clip package
    without importing it (importing open_clip would require torch)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "open_clip package not found: pip install --no-deps -r tools/requirements-tools.txt"
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "bpe_simple_vocab_16e6.txt.gz"
        if p.is_file():
            return p
    sys.exit("bpe_simple_vocab_16e6.txt.gz not found in the open_clip package")


def byte_alphabet() -> list[tuple[int, str]]:
    """The reversible byte -> printable-unicode-character table used by
    byte-level BPE.  Bytes that are already visible, non-space Latin-1
    characters stand for themselves; every other byte is assigned a character
    from U+0100 upwards, in increasing byte order.  Returned in vocabulary
    order: the self-mapped bytes first, then the remapped ones."""
    visible = [
        b
        for b in range(256)
        if ord("!") <= b <= ord("~") or ord("\u00a1") <= b <= ord("\u00ac") or ord("\u00ae") <= b <= ord("\u00ff")
    ]
    table = [(b, chr(b)) for b in visible]
    extra = 0
    for b in range(256):
        if b not in visible:
            table.append((b, chr(256 + extra)))
            extra += 1
    assert len(table) == 256 and len({c for _, c in table}) == 256
    return table


def read_merges(bpe_path: Path) -> list[tuple[str, str]]:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    if not lines[0].startswith('"bpe_simple_vocab_16e6.txt#version') and not lines[0].startswith("#version"):
        sys.exit(f"unexpected header line in {bpe_path}: {lines[0]!r}")
    selected = lines[1 : N_MERGES + 1]
    merges = []
    for ln in selected:
        parts = ln.split(" ")
        if len(parts) != 2:
            sys.exit(f"bad merge line {ln!r}")
        merges.append((parts[0], parts[1]))
    assert len(merges) == N_MERGES
    return merges


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    tokens = [c for _, c in byte_alphabet()]
    tokens += [c + EOW for c in list(tokens)]
    tokens += [a + b for a, b in merges]
    tokens += [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE or len(tokens) != VOCAB_SIZE:
        sys.exit(f"vocab size {len(vocab)} / {len(tokens)}, expected {VOCAB_SIZE}")
    return vocab


# ---------------------------------------------------------------------------
# Independent reference BPE (used only for verification).
# ---------------------------------------------------------------------------


class ReferenceBPE:
    """Straightforward CLIP-style BPE: whitespace collapse + lowercase,
    pre-split into contractions / letter runs / single digits / other symbol
    runs, byte-map each piece, mark the last symbol with </w>, then repeatedly
    merge the lowest-ranked adjacent pair."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        import regex

        self.vocab = vocab
        self.rank = {m: i for i, m in enumerate(merges)}
        self.byte_char = dict(byte_alphabet())
        self.split_re = regex.compile(
            r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
            regex.IGNORECASE,
        )
        self.ws_re = regex.compile(r"\s+")

    def bpe(self, piece: str) -> list[str]:
        syms = list(piece[:-1]) + [piece[-1] + EOW]
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = syms[best[1]], syms[best[1] + 1]
            out, i = [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        return syms

    def encode(self, text: str) -> list[int]:
        text = self.ws_re.sub(" ", text).strip().lower()
        ids = [self.vocab[BOS]]
        for piece in self.split_re.findall(text):
            mapped = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            ids += [self.vocab[t] for t in self.bpe(mapped)]
        ids.append(self.vocab[EOS])
        return ids


# ---------------------------------------------------------------------------


KNOWN = {
    # Values published for the OpenAI CLIP tokenizer.
    "a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
    "a photo of a dog": [49406, 320, 1125, 539, 320, 1929, 49407],
    "hello world": [49406, 3306, 1002, 49407],
    "": [49406, 49407],
}

EXTRA_SENTENCES = [
    "A Photo  of\ta CAT",
    "It's 2024, isn't it? We'll see... 3.14159!",
    "naïve café — déjà vu, 東京, emoji 🐈‍⬛ ok",
    "a diagram of a transformer encoder with 12 layers",
    "<|startoftext|>",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "   leading and trailing spaces   ",
]


def verify(out_dir: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    from tokenizers import Tokenizer
    from transformers import CLIPTokenizerFast

    ok = True

    def check(label: str, got, want) -> None:
        nonlocal ok
        status = "ok  " if got == want else "FAIL"
        if got != want:
            ok = False
        print(f"  [{status}] {label}: {got}" + ("" if got == want else f" (expected {want})"))

    print("Checks:")
    check("vocab['!']", vocab["!"], 0)
    check("vocab['a']", vocab["a"], 64)
    check("vocab['a</w>']", vocab["a</w>"], 320)
    check("vocab[BOS]", vocab[BOS], 49406)
    check("vocab[EOS]", vocab[EOS], 49407)

    hf = CLIPTokenizerFast.from_pretrained(str(out_dir))
    check("len(tokenizer)", len(hf), VOCAB_SIZE)
    check("model_max_length", hf.model_max_length, MODEL_MAX_LENGTH)
    check("bos/eos/pad/unk", [hf.bos_token, hf.eos_token, hf.pad_token, hf.unk_token], [BOS, EOS, EOS, EOS])

    raw = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    check("tokenizers vocab size (with added)", raw.get_vocab_size(with_added_tokens=True), VOCAB_SIZE)

    for text, want in KNOWN.items():
        check(f"transformers ids {text!r}", hf(text)["input_ids"], want)
        check(f"tokenizers   ids {text!r}", raw.encode(text).ids, want)

    ref = ReferenceBPE(vocab, merges)
    for text, want in KNOWN.items():
        check(f"reference    ids {text!r}", ref.encode(text), want)
    for text in EXTRA_SENTENCES:
        if text == "<|startoftext|>":
            continue  # special-token handling differs by design in the reference
        check(f"fast == reference {text!r}", raw.encode(text).ids, ref.encode(text))
    check("case/whitespace normalisation", raw.encode("A Photo  of\ta CAT").ids, KNOWN["a photo of a cat"])
    check("special token in text", raw.encode("<|startoftext|>").ids, [49406, 49406, 49407])
    check(
        "decode round trip",
        hf.decode(hf("a photo of a cat")["input_ids"], skip_special_tokens=True),
        "a photo of a cat",
    )

    long_text = " ".join(["cat"] * 200)
    enc = hf(long_text, truncation=True)["input_ids"]
    check("transformers truncation length", len(enc), MODEL_MAX_LENGTH)
    check("transformers truncation first/last", [enc[0], enc[-1]], [49406, 49407])
    enc = hf(long_text, truncation=True, max_length=77, padding="max_length")["input_ids"]
    check("transformers truncation (explicit 77) last", enc[-1], 49407)
    raw.enable_truncation(MODEL_MAX_LENGTH)
    enc = raw.encode(long_text).ids
    check("tokenizers enable_truncation(77) length", len(enc), MODEL_MAX_LENGTH)
    check("tokenizers enable_truncation(77) first/last", [enc[0], enc[-1]], [49406, 49407])
    raw.no_truncation()
    padded = hf(["a photo of a cat"], padding="max_length", max_length=MODEL_MAX_LENGTH)["input_ids"][0]
    check("padding id (transformers, pad=<|endoftext|>)", padded[-1], 49407)

    if not ok:
        sys.exit("verification FAILED")
    print("All tokenizer checks passed.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="directory to write tokenizer files into")
    ap.add_argument("--bpe", type=Path, default=None, help="path to bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument(
        "--all-files",
        action="store_true",
        help="also keep vocab.json and merges.txt (tokenizer.json and tokenizer_config.json are always written)",
    )
    args = ap.parse_args()

    bpe_path = args.bpe or default_bpe_path()
    print(f"BPE merges: {bpe_path}")
    merges = read_merges(bpe_path)
    vocab = build_vocab(merges)

    from transformers import CLIPTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        with open(src / "vocab.json", "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(src / "merges.txt", "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in merges:
                f.write(f"{a} {b}\n")
        # from_pretrained on a folder holding only vocab.json + merges.txt is the
        # code path that works in both transformers 4.x and 5.x.
        tok = CLIPTokenizerFast.from_pretrained(str(src), model_max_length=MODEL_MAX_LENGTH)
        tok.model_max_length = MODEL_MAX_LENGTH
        saved = Path(tmp) / "saved"
        tok.save_pretrained(str(saved))

        # Fail early if the vocab did not make it through as built.
        got_vocab = tok.get_vocab()
        if got_vocab != vocab:
            missing = [t for t in vocab if got_vocab.get(t) != vocab[t]][:5]
            sys.exit(f"tokenizer vocab differs from the built vocab, e.g. {missing}")

        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(saved / "tokenizer.json", args.out / "tokenizer.json")
        # tokenizer_config.json carries model_max_length=77; drop the keys that
        # only describe where this build happened to load its files from.
        tok_cfg = json.loads((saved / "tokenizer_config.json").read_text(encoding="utf-8"))
        for k in ("is_local", "local_files_only", "name_or_path"):
            tok_cfg.pop(k, None)
        (args.out / "tokenizer_config.json").write_text(
            json.dumps(tok_cfg, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if args.all_files:
            shutil.copy(src / "vocab.json", args.out / "vocab.json")
            shutil.copy(src / "merges.txt", args.out / "merges.txt")
            if (saved / "special_tokens_map.json").exists():
                shutil.copy(saved / "special_tokens_map.json", args.out / "special_tokens_map.json")

        # Verify exactly what was written (tokenizer.json + tokenizer_config.json).
        verify(args.out, vocab, merges)

    print(f"wrote {', '.join(sorted(os.listdir(args.out)))} to {args.out}")


if __name__ == "__main__":
    main()
