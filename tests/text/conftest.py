"""Fixtures for the text layer: the default model's GGUF and its transformers reference (each
loaded once per session, both are slow), and writers for small GGUF files made in the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import gguf
import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import models, pre_tokenizers, trainers

from chatapp.text import Tokenizer
from chatapp.text.gguf_vocab import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED, GGUFVocab, read_gguf_vocab



@pytest.fixture(scope="session")
def default_gguf(default_gguf_path) -> Path:
    return default_gguf_path  # tests/conftest.py


@pytest.fixture(scope="session")
def default_reader(default_gguf: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(str(default_gguf))


@pytest.fixture(scope="session")
def smollm(default_gguf: Path, default_reader: gguf.GGUFReader) -> Tokenizer:
    return Tokenizer.from_gguf(default_gguf, reader=default_reader)


@pytest.fixture(scope="session")
def smollm_vocab(default_gguf: Path, default_reader: gguf.GGUFReader) -> GGUFVocab:
    return read_gguf_vocab(default_reader, default_gguf)


@pytest.fixture(scope="session")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def hf_smollm(transformers, default_gguf: Path):
    """transformers' own tokenizer built from the same GGUF (the reference)."""
    return transformers.AutoTokenizer.from_pretrained(str(default_gguf.parent), gguf_file=default_gguf.name)


def write_tokenizer_gguf(path: Path, *, model: str, tokens: list[str], types: Optional[list[int]] = None,
                         scores: Optional[list[float]] = None, merges: Optional[list[str]] = None,
                         pre: Optional[str] = None, bos: Optional[int] = None, eos: Optional[int] = None,
                         unk: Optional[int] = None, add_bos: Optional[bool] = None,
                         add_space_prefix: Optional[bool] = None, chat_template: Optional[str] = None,
                         arch: str = "llama") -> Path:
    """A metadata-only GGUF (no tensors) with a Llama header (or `arch`'s), enough for transformers' loader."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model(model)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    if types is not None:
        writer.add_token_types(types)
    if scores is not None:
        writer.add_token_scores(scores)
    if merges is not None:
        writer.add_token_merges(merges)
    for value, add in ((bos, writer.add_bos_token_id), (eos, writer.add_eos_token_id), (unk, writer.add_unk_token_id)):
        if value is not None:
            add(value)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    if add_space_prefix is not None:
        writer.add_add_space_prefix(add_space_prefix)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def write_gguf() -> Callable[..., Path]:
    return write_tokenizer_gguf


SPM_CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world, hello there",
              "tokenizers are fun to test", "the theory of the thing", "  spaced   out  text",
              "numbers 12345 and 678", "café naïve façade"] * 5


def _spm_vocab() -> dict:
    """A small SentencePiece-style vocabulary, as llama.cpp stores one: <unk>, <s>, </s>, the 256
    <0xNN> byte tokens, a user-defined <think>, then pieces with "\u2581" for spaces, each scored
    by when BPE training learned it (the score order is the merge order), and no merges."""
    trained = HFBackend(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    trained.train_from_iterator(SPM_CORPUS, trainers.BpeTrainer(vocab_size=200, show_progress=False))
    model = json.loads(trained.to_str())["model"]
    rank = {"".join(m if isinstance(m, list) else m.split(" ")): i for i, m in enumerate(model["merges"])}
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["<think>"]
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256 + [USER_DEFINED]
    scores = [0.0] * len(tokens)
    for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1]):
        tokens.append(token)
        types.append(NORMAL)
        scores.append(-float(rank[token]) if token in rank else -1e6)
    return {"tokens": tokens, "types": types, "scores": scores}


@pytest.fixture(scope="session")
def spm_vocab() -> dict:
    return _spm_vocab()


@pytest.fixture(scope="session")
def spm_gguf(tmp_path_factory, spm_vocab) -> Path:
    path = tmp_path_factory.mktemp("spm") / "tiny-spm.gguf"
    return write_tokenizer_gguf(path, model="llama", bos=1, eos=2, unk=0, add_space_prefix=True, **spm_vocab)
