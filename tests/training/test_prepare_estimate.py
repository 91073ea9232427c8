"""Blocks from documents and chat files, and the memory/time estimate made before training."""

from __future__ import annotations

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, apply_lora
from chatapp.training.dataset import IGNORE_INDEX, pack_masked
from chatapp.training.estimate import (TIME_RANGE, estimate_seconds, estimate_training_memory, lora_param_count,
                                       measure_micro_batch_seconds, parse_bytes, suggest_smaller)
from chatapp.training.prepare import count_targets, pack_with_tail, prepare_blocks, read_sources

from helpers.tiny_hf import tiny_tokenizer, write_chat_file, write_corpus

CONFIG = ModelConfig(arch="llama", vocab_size=1000, dim=64, n_layers=3, n_heads=4, n_kv_heads=2,
                     intermediate_size=160, max_seq_len=128)


def test_pack_with_tail_keeps_every_target_once():
    ids = list(range(1, 12))  # 11 tokens: 10 targets
    mask = [True] * 11
    blocks = pack_with_tail(ids, mask, block_size=4, pad_id=0)
    assert blocks.tokens.tolist() == [[1, 2, 3, 4, 5], [5, 6, 7, 8, 9], [9, 10, 11, 0, 0]]
    assert count_targets(blocks) == 10
    _, labels = blocks.batch(torch.arange(3))
    assert labels[2].tolist() == [10, 11, IGNORE_INDEX, IGNORE_INDEX]
    full = list(pack_masked([(ids, mask)], 4))  # the same full blocks as dataset.pack_masked
    assert [row for row, _ in full] == blocks.tokens[:2].tolist()
    assert pack_with_tail([7], [True], 4, 0) is None


def test_documents_and_chat_become_split_blocks(tmp_path):
    tokenizer = tiny_tokenizer()
    sources = read_sources([write_corpus(tmp_path / "docs", n_docs=10)])
    assert sources.kind == "documents" and len(sources.examples) == 10
    assert sources.report["files_skipped"] == 1
    data = prepare_blocks(sources, tokenizer, 32, val_fraction=0.2, seed=0)
    assert (data.n_train, data.n_val) == (8, 2) and data.train.block_size == 32
    again = prepare_blocks(read_sources([tmp_path / "docs"]), tokenizer, 32, 0.2, 0)
    assert torch.equal(again.val.tokens, data.val.tokens) and again.fingerprint == data.fingerprint
    assert not torch.equal(prepare_blocks(sources, tokenizer, 32, 0.2, seed=1).val.tokens, data.val.tokens)
    eos = tokenizer.eos_id
    assert int((data.train.tokens == eos).sum()) >= 8  # each document ends with EOS

    chat = read_sources([write_chat_file(tmp_path / "c.jsonl", n=10)])
    assert chat.kind == "chat" and chat.report["conversations"] == 10
    blocks = prepare_blocks(chat, tokenizer, 32, 0.0, 0).train
    start = tokenizer.token_to_id("<|im_start|>")
    assert not blocks.loss_mask[blocks.tokens == start].any()  # template tokens are never targets
    assert blocks.loss_mask.any()


def test_lora_count_matches_the_layers_and_estimates_scale():
    lora = LoRAConfig(r=4, target_modules=["q_proj", "k_proj", "down_proj", "gate_proj"])
    model = apply_lora(Transformer(CONFIG), lora)
    assert lora_param_count(CONFIG, lora) == sum(p.numel() for p in model.parameters() if p.requires_grad)

    def total(**kw):
        args = dict(config=CONFIG, method="lora", lora=lora, batch_size=4, block_size=64)
        return estimate_training_memory(**{**args, **kw})

    small = total()
    assert total(batch_size=8).activations_bytes > 1.9 * small.activations_bytes
    assert total(block_size=128).activations_bytes > 2 * small.activations_bytes
    assert total(gradient_checkpointing=True).activations_bytes < small.activations_bytes
    full = total(method="full")
    assert full.trainable_params == CONFIG.n_params and full.optimizer_bytes == 2 * 4 * CONFIG.n_params
    assert full.total_bytes > small.total_bytes
    fitting = total(batch_size=1).total_bytes
    hint = suggest_smaller(CONFIG, "lora", lora, 8, 64, fitting)
    assert hint.startswith("try --batch-size 1 (with --grad-accum 8")


def test_measuring_a_step_changes_nothing():
    torch.manual_seed(0)
    model = Transformer(CONFIG)
    apply_lora(model, LoRAConfig(r=4, dropout=0.1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    x = torch.randint(0, 1000, (2, 33))
    torch.manual_seed(5)
    seconds = measure_micro_batch_seconds(model, x[:, :-1], x[:, 1:])
    assert seconds > 0
    assert torch.equal(torch.rand(3), expected)  # the random stream is where it was
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_the_first_passs_one_time_costs_are_not_timed(monkeypatch):
    # The first forward+backward pays one-time costs (28 s against 4.7 s per step on the default
    # model): timing it made the estimate five times the real time (issue 19, item 9).
    from chatapp.training import estimate, trainer

    clock = {"now": 0.0}
    monkeypatch.setattr(estimate.time, "perf_counter", lambda: clock["now"])
    real, calls = trainer._token_loss_sum, []

    def first_call_slow(*args, **kwargs):
        calls.append(1)
        clock["now"] += 100.0 if len(calls) == 1 else 1.5  # a slow first pass, then the steady cost
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_token_loss_sum", first_call_slow)
    model = Transformer(CONFIG)
    x = torch.randint(0, 1000, (2, 33))
    assert measure_micro_batch_seconds(model, x[:, :-1], x[:, 1:]) == 1.5 and len(calls) == 2


def test_time_estimate_counts_steps_and_evaluations_and_gives_a_range():
    likely, low, high = estimate_seconds(micro_batch_s=2.0, grad_accum=3, steps=10, val_blocks=9, micro_blocks=4,
                                         n_evals=2)
    from chatapp.training.estimate import STEP_OVERHEAD
    # an evaluation: 9 blocks forward, a third of the cost of 4 blocks forward and backward per 4 blocks
    assert likely == pytest.approx(2.0 * (3 + STEP_OVERHEAD) * 10 + 2 * (2.0 / 3) * 9 / 4)
    assert (low, high) == pytest.approx((likely * TIME_RANGE[0], likely * TIME_RANGE[1]))
    assert low < likely < high


@pytest.mark.parametrize("text, value", [("1000", 1000), ("8G", 8 * 1024**3), ("512MB", 512 * 1024**2),
                                         ("1.5GiB", int(1.5 * 1024**3)), ("64k", 65536)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


def test_parse_bytes_refuses_nonsense():
    for bad in ("", "G", "-1G", "lots"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_sharded_estimate_splits_weights_gradients_and_optimizer():
    config = ModelConfig(arch="llama", vocab_size=32000, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8,
                         intermediate_size=14336, max_seq_len=4096)  # a Llama-3-8B-sized model
    whole = estimate_training_memory(config, "full", None, 1, 512)
    sharded = estimate_training_memory(config, "full", None, 1, 512, shards=4)
    assert sharded.optimizer_bytes * 4 == whole.optimizer_bytes
    assert sharded.gradients_bytes * 4 == whole.gradients_bytes
    # a quarter of the weights, plus the embeddings and two blocks gathered at a time
    assert whole.weights_bytes / 4 < sharded.weights_bytes < whole.weights_bytes / 2
    assert sharded.total_bytes < whole.total_bytes / 2
