"""Tiny Hugging Face model folders and a synthetic corpus for training tests (nothing downloaded).

The corpus is a small made-up language: documents built from a handful of fixed sentences,
which a tiny model learns within a few dozen steps. The tokenizer is a byte-level BPE learned
on it; the model is a random Llama built with transformers and saved with save_pretrained.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

SENTENCES = [
    "the cat sat on the warm mat.",
    "a dog ran to the old red barn.",
    "birds sing in the tall green trees.",
    "we read books by the quiet river.",
    "the sun sets over the blue hills.",
    "children play games in the park.",
]


def write_corpus(folder: Path, n_docs: int = 12, sentences_per_doc: int = 30, seed: int = 0) -> Path:
    """n_docs .txt files of random sentences from SENTENCES (plus a skipped binary file)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n_docs):
        text = " ".join(rng.choice(SENTENCES) for _ in range(sentences_per_doc))
        (folder / f"doc{i:02d}.txt").write_text(text + "\n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    return folder


def write_chat_file(path: Path, n: int = 16, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            s = rng.choice(SENTENCES)
            messages = [{"role": "user", "content": f"repeat: {s}"}, {"role": "assistant", "content": s}]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def tiny_tokenizer(vocab_size: int = 320):
    from chatapp.training.scratch import train_tokenizer

    texts = SENTENCES * 20 + ["repeat: " + s for s in SENTENCES] * 5
    return train_tokenizer(texts, vocab_size)


def tiny_llama_folder(folder: Path, seed: int = 0, dim: int = 32, layers: int = 2, max_len: int = 128,
                      family: str = "llama") -> Path:
    """A random tiny model (transformers, save_pretrained) with the tiny tokenizer's files."""
    import transformers

    from chatapp.training.scratch import save_tokenizer

    tokenizer = tiny_tokenizer()
    common = dict(vocab_size=tokenizer.vocab_size, hidden_size=dim, intermediate_size=2 * dim,
                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=max_len, eos_token_id=tokenizer.eos_id, bos_token_id=None,
                  pad_token_id=None)  # Phi-3's and SmolLM3's defaults are ids of their real vocabularies
    config = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
              "phi3": transformers.Phi3Config, "smollm3": transformers.SmolLM3Config}[family](**common)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # wider than the default init, so outputs differ visibly from uniform
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.1)
    model.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)
    return folder


def read_events(text: str) -> list[dict]:
    """Every stdout line as JSON (fails the test on any line that is not)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]
