"""The training estimate counts the data: the packed token blocks held for the run, the peak of
tokenizing them (checked against a measurement), and the time reading and tokenizing took."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest
import torch

from helpers.tiny_hf import read_events, tiny_llama_folder, write_corpus

from chatapp.cli import main
from chatapp.model.config import ModelConfig
from chatapp.training.dataset import TokenBlocks
from chatapp.training.estimate import (TOKENIZE_BYTES_PER_TOKEN, TOKENIZE_PIECE_BYTES, blocks_bytes,
                                       estimate_seconds, estimate_training_memory, tokenization_bytes)
from tests.helpers.bounded import run_bounded

CONFIG = ModelConfig(arch="llama", vocab_size=1000, dim=64, n_layers=2, n_heads=4, intermediate_size=128,
                     max_seq_len=256)


def test_data_and_its_tokenization_are_in_the_memory_estimate():
    without = estimate_training_memory(CONFIG, "full", None, 2, 64)
    blocks = TokenBlocks(torch.zeros(1000, 65, dtype=torch.long), torch.ones(1000, 65, dtype=torch.bool))
    data = blocks_bytes(blocks, None)
    assert data == 1000 * 65 * (8 + 1)
    small = estimate_training_memory(CONFIG, "full", None, 2, 64, data_bytes=data, tokenize_bytes=1)
    assert small.total_bytes - without.total_bytes == data + data // 10  # held all run, with the margin
    tokenizing = tokenization_bytes(65_000)
    assert tokenizing == TOKENIZE_PIECE_BYTES + TOKENIZE_BYTES_PER_TOKEN * 65_000
    big = estimate_training_memory(CONFIG, "full", None, 2, 64, data_bytes=data, tokenize_bytes=tokenizing)
    training = big.gradients_bytes + big.optimizer_bytes + big.activations_bytes
    assert tokenizing > training  # a small model: tokenizing is the peak, before the steps
    assert big.total_bytes == big.weights_bytes + data + tokenizing + big.overhead_bytes
    assert "data 0.00 (tokenizing it 0.19)" in big.describe()


def test_the_time_estimate_includes_preparing_the_data():
    plain = estimate_seconds(0.5, 2, 100, 10, 2, 3)
    prepared = estimate_seconds(0.5, 2, 100, 10, 2, 3, prepare_s=12.5)
    assert [b - a for a, b in zip(plain, prepared)] == pytest.approx([12.5, 12.5, 12.5])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_tokenizing_a_long_document_stays_within_its_estimate(default_gguf_path):
    """The default model's tokenizer over 3 MB of text in a child: its growth (ids included)
    stays under tokenization_bytes(n_tokens)."""
    result = run_bounded(f"""
        from chatapp.text import Tokenizer
        from chatapp.training.estimate import tokenization_bytes
        from chatapp.training.prepare import encode_in_pieces
        tokenizer = Tokenizer.from_gguf({str(default_gguf_path)!r})
        para = "The keeper logs the tides at 06:40, and the cranes unload 1,234 crates of cod and ling.\\n"
        text = para * (3_000_000 // len(para))
        with open("/proc/self/clear_refs", "w") as f:  # the peak so far (reading the vocabulary) is forgotten
            f.write("5")
        before = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) / 1024
        ids = encode_in_pieces(text, tokenizer)
        report(grew_mb=peak_mb() - before, tokens=len(ids),
               estimate_mb=tokenization_bytes(len(ids)) / 2**20)
    """, memory=2 << 30, timeout=180)
    assert result["tokens"] > 500_000
    assert 0 < result["grew_mb"] <= result["estimate_mb"], result


def test_dry_run_reports_the_data_in_memory_and_time(tmp_path):
    pytest.importorskip("transformers")
    model = tiny_llama_folder(tmp_path / "model")
    docs = write_corpus(tmp_path / "docs")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--model", str(model), "--data", str(docs), "--out", str(tmp_path / "o"),
                     "--progress", "jsonl", "--recipe", "text", "--block-size", "32", "--threads", "1", "--dry-run"])
    assert code == 0, err.getvalue()
    events = read_events(out.getvalue())
    dataset = next(e for e in events if e["event"] == "dataset")
    estimate = next(e for e in events if e["event"] == "estimate")
    blocks = dataset["train_blocks"] + dataset.get("val_blocks", 0)
    assert estimate["memory"]["data_bytes"] >= blocks * 33 * 8  # (blocks, 33) int64 ids at least
    assert estimate["memory"]["tokenize_bytes"] > TOKENIZE_PIECE_BYTES
    assert estimate["memory_bytes"] == estimate["memory"]["total_bytes"]
    assert estimate["prepare_s"] > 0 and estimate["eta_s"] > estimate["prepare_s"]
