"""A tiny static-embedding (model2vec-layout) folder written in a test: a word-level tokenizer,
an `embeddings` tensor, a config. Nothing downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def write_static_model(folder: Path, words: Sequence[str], vectors: np.ndarray, *, normalize: bool = True,
                       weights: Optional[np.ndarray] = None, mapping: Optional[np.ndarray] = None,
                       config_extra: Optional[dict] = None, tensor_name: str = "embeddings") -> Path:
    """`words` get ids 1.. ([UNK] is 0, with row 0 of `vectors`): vectors has len(words) + 1 rows
    (or as many as `mapping` points at)."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"[UNK]": 0, **{w: i for i, w in enumerate(words, start=1)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    tensors = {tensor_name: np.ascontiguousarray(vectors)}
    if weights is not None:
        tensors["weights"] = np.ascontiguousarray(weights)
    if mapping is not None:
        tensors["mapping"] = np.ascontiguousarray(mapping)
    save_file(tensors, str(folder / "model.safetensors"))
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": int(vectors.shape[1]),
              "normalize": normalize, **(config_extra or {})}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def synonym_model(folder: Path, groups: Sequence[Sequence[str]], other_words: Sequence[str], dim: int = 64,
                  seed: int = 0) -> Path:
    """Words of one group share one random vector (synonyms); every other word has its own."""
    rng = np.random.default_rng(seed)
    words: list[str] = []
    rows = [np.zeros(dim, dtype=np.float32)]  # [UNK]
    for group in groups:
        shared = rng.standard_normal(dim).astype(np.float32)
        for word in group:
            words.append(word)
            rows.append(shared)
    for word in other_words:
        if word not in words:
            words.append(word)
            rows.append(rng.standard_normal(dim).astype(np.float32))
    return write_static_model(folder, words, np.stack(rows))
