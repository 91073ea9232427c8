"""LoRA training on tiny Phi-3 (LongRoPE, partial rotary) and SmolLM3 (no RoPE on every 4th
layer) models of our own: the loss falls, only the adapters move.

LoRA targets for these families: our decoder holds Phi-3's fused qkv_proj and gate_up_proj as
separate q/k/v and gate/up layers, so every name of LORA_TARGETS is a target on both families.
"""

from __future__ import annotations

import random

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.config import RopeScaling
from chatapp.model.lora import LORA_TARGETS, LoRAConfig, apply_lora, base_names, lora_layers
from chatapp.training.dataset import TokenBlocks, pack_documents, split_documents
from chatapp.training.trainer import TrainConfig, Trainer
from chatapp.weights.peft_adapter import save_adapter

VOCAB, EOS = 48, 47
SIZE = dict(arch="llama", vocab_size=VOCAB, dim=96, n_layers=4, n_heads=4, n_kv_heads=2, intermediate_size=192,
            max_seq_len=64)


def _configs() -> dict[str, ModelConfig]:
    # head_dim 24, 3/4 rotated: 18 dimensions, 9 LongRoPE factors; 64 positions past the original 16
    longrope = RopeScaling(kind="longrope", factor=4.0, original_max_position_embeddings=16,
                           short_factor=[1.0 + 0.1 * i for i in range(9)], long_factor=[2.0 + i for i in range(9)])
    return {"phi3": ModelConfig(**{**SIZE, "arch": "phi3"}, partial_rotary_factor=0.75, rope_scaling=longrope),
            "smollm3": ModelConfig(**{**SIZE, "arch": "smollm3"}, no_rope_layers=[3], tie_embeddings=True)}


def _data():
    rng = random.Random(0)  # six fixed phrases: after a phrase's first token the rest is predictable
    phrases = [[rng.randrange(EOS) for _ in range(6)] for _ in range(6)]
    docs = [[t for _ in range(8) for t in rng.choice(phrases)] for _ in range(60)]
    train_docs, val_docs = split_documents(docs, val_fraction=0.15, seed=0)
    return (TokenBlocks.from_blocks(pack_documents(train_docs, 32, EOS)),
            TokenBlocks.from_blocks(pack_documents(val_docs, 32, EOS)))


@pytest.mark.parametrize("family", ["phi3", "smollm3"])
def test_lora_training_reduces_loss(family):
    config = _configs()[family]
    torch.manual_seed(0)
    model = Transformer(config).eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train, val = _data()
    settings = TrainConfig(method="lora", lr=1e-2, warmup_steps=5, max_steps=40, batch_size=8, eval_every=40,
                           block_size=32, lora=LoRAConfig(r=8, alpha=16, target_modules=list(LORA_TARGETS)))
    result = Trainer(model, settings, train, val).fit()
    first, last = result.losses[1], sum(result.losses[s] for s in range(36, 41)) / 5
    assert last < 0.6 * first
    assert result.evals[-1]["val_ppl"] < 0.5 * result.evals[0]["val_ppl"]
    # every target of every layer carries an adapter, and only the adapters moved
    assert len(list(lora_layers(model))) == config.n_layers * len(LORA_TARGETS)
    after = base_names({n: p for n, p in model.named_parameters() if ".lora_" not in n})
    assert set(after) == set(before)
    assert all(torch.equal(after[n], before[n]) for n in before)


def test_smollm3_adapter_is_written_in_peft_names(tmp_path):
    model = Transformer(_configs()["smollm3"]).eval()
    apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    save_adapter(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]), tmp_path / "a", "base")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "a" / "adapter_model.safetensors"), framework="pt") as f:
        names = set(f.keys())
    assert "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" in names


def test_phi3_adapter_is_written_on_the_fused_peft_layers(tmp_path):
    model = Transformer(_configs()["phi3"]).eval()
    lora = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    apply_lora(model, lora)
    save_adapter(model, lora, tmp_path / "a", "base")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "a" / "adapter_model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        a = f.get_tensor("base_model.model.model.layers.3.self_attn.qkv_proj.lora_A.weight")
    assert "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" not in names
    assert a.shape == (12, 96)  # q, k (zero block) and v stacked: rank 3 * 4
    assert torch.equal(a[4:8], torch.zeros(4, 96))
