"""Training a model from nothing: a byte-level BPE tokenizer learned on the documents, a small
Llama-shaped config chosen by size, and GPT-2-style random initialisation.

Byte-level means any text encodes (no unknown token), as GPT-2's. The tokenizer knows three
special tokens: <|endoftext|> (ends every document; the EOS), and ChatML's <|im_start|> and
<|im_end|>, so the result can be fine-tuned on conversations and chatted with later.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable, Union

import torch
from torch import nn

from ..model.config import ModelConfig
from ..model.transformer import Transformer
from ..text import CHATML_TEMPLATE, Tokenizer

log = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = (EOS_TOKEN, "<|im_start|>", "<|im_end|>")
DEFAULT_VOCAB_SIZE = 4096
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte, plus the special tokens

# Shapes by name: parameters without embeddings are about 0.8M (tiny), 14M (small), 85M (medium).
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, intermediate_size=384),
    "small": dict(dim=384, n_layers=8, n_heads=6, n_kv_heads=2, intermediate_size=1024),
    "medium": dict(dim=768, n_layers=12, n_heads=12, n_kv_heads=4, intermediate_size=2048),
}


def train_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """A byte-level BPE tokenizer learned on `texts`. The vocabulary may come out smaller than
    `vocab_size` when the texts offer fewer merges."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE} (256 bytes and the special tokens), "
                         f"got {vocab_size}")
    backend = tokenizers.Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(texts, trainer)
    log.info("trained a byte-level BPE tokenizer of %d tokens", backend.get_vocab_size())
    return wrap_tokenizer(backend)


def wrap_tokenizer(backend) -> Tokenizer:
    return Tokenizer(backend, eos_id=backend.token_to_id(EOS_TOKEN), chat_template=CHATML_TEMPLATE)


def save_tokenizer(tokenizer: Tokenizer, folder: Union[str, Path]) -> Path:
    """tokenizer.json and its side files, readable by Tokenizer.from_hf_folder."""
    from .export import write_tokenizer_files

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(tokenizer, folder)
    return folder


def scratch_config(size: str, vocab_size: int, block_size: int, name: str = "") -> ModelConfig:
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    return ModelConfig(arch="llama", vocab_size=vocab_size, max_seq_len=max(block_size, 1024), tie_embeddings=True,
                       norm_eps=1e-5, rope_theta=10000.0, name=name or f"chatapp-scratch-{size}", **SIZES[size])


def init_weights(model: Transformer, std: float = 0.02) -> Transformer:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the projections that write into
    the residual stream (o_proj, down_proj) scaled by 1/sqrt(2 * n_layers). Torch's defaults would
    give N(0, 1) embeddings, whose tied logits start far too large."""
    residual_std = std / math.sqrt(2 * model.config.n_layers)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                is_residual = name.endswith("o_proj") or name.endswith("down_proj")
                module.weight.normal_(0.0, residual_std if is_residual else std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, std)
    return model


def new_model(config: ModelConfig, seed: int, device: Union[str, torch.device] = "cpu") -> Transformer:
    """A randomly initialised model, the same for the same seed."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = Transformer(config)
    return init_weights(model).eval()
