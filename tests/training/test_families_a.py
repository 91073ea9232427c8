"""Qwen3, Qwen3-MoE and Mixtral in training: LoRA reduces the loss, LoRA targets (experts are
not adapted), the training estimate's LoRA count, PEFT adapters checked with `peft`, export."""

from __future__ import annotations

import random

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
from chatapp.model.moe import MoE
from chatapp.training.dataset import TokenBlocks, pack_documents
from chatapp.training.estimate import lora_param_count
from chatapp.training.export import ExportError, export_hf_folder, hf_config_dict
from chatapp.training.trainer import TrainConfig, Trainer
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder
from chatapp.weights.peft_adapter import save_adapter

VOCAB = 48
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SHAPE = dict(vocab_size=VOCAB, dim=64, n_layers=3, n_heads=4, n_kv_heads=2, max_seq_len=64)
FAMILIES = {
    "qwen3": dict(arch="qwen3", head_dim=24, intermediate_size=128, qk_norm=True, norm_eps=1e-6),
    "qwen3_moe": dict(arch="qwen3_moe", head_dim=24, intermediate_size=128, qk_norm=True, n_experts=4,
                      n_experts_per_tok=2, moe_intermediate_size=48, norm_topk_prob=False, dense_layers=(1,)),
    "mixtral": dict(arch="mixtral", intermediate_size=64, n_experts=4, n_experts_per_tok=2, rope_theta=1e6),
}


def random_model(family: str, seed: int = 0, std: float = 0.0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**SHAPE, **FAMILIES[family])).eval()
    if std:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, std)
    return model


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_targets_leave_the_experts_out_and_the_estimate_counts_what_is_wrapped(family):
    model = random_model(family)
    lora = LoRAConfig(r=4, alpha=8, target_modules=ALL_TARGETS)
    apply_lora(model, lora)
    wrapped = dict(lora_layers(model))
    for i, block in enumerate(model.layers):
        moe = isinstance(block.mlp, MoE)
        assert all(f"layers.{i}.attn.{p}" in wrapped for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
        assert (f"layers.{i}.mlp.down_proj" in wrapped) == (not moe)
        assert f"layers.{i}.mlp.router" not in wrapped
    assert lora_param_count(model.config, lora) == sum(
        layer.lora_A.numel() + layer.lora_B.numel() for layer in wrapped.values())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_training_reduces_loss(family):
    rng = random.Random(0)
    eos = VOCAB - 1
    phrases = [[rng.randrange(eos) for _ in range(6)] for _ in range(6)]
    docs = [[t for _ in range(8) for t in rng.choice(phrases)] for _ in range(40)]
    train = TokenBlocks.from_blocks(pack_documents(docs, 32, eos))
    model = random_model(family)
    experts_before = {n: p.clone() for n, p in model.named_parameters() if "_exps" in n or "router" in n}
    config = TrainConfig(method="lora", lr=1e-2, warmup_steps=5, max_steps=40, batch_size=8, eval_every=0,
                         block_size=32, lora=LoRAConfig(r=8, alpha=16, target_modules=ALL_TARGETS))
    result = Trainer(model, config, train).fit()
    first, last = result.losses[1], sum(result.losses[s] for s in range(36, 41)) / 5
    assert last < 0.7 * first, (first, last)
    for name, before in experts_before.items():  # frozen: LoRA adapts attention (and dense MLPs) only
        assert torch.equal(model.get_parameter(name), before), name
    assert experts_before or family == "qwen3"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_export_opens_in_our_loader_and_transformers_with_the_same_logits(family, tmp_path):
    transformers = pytest.importorskip("transformers")
    model = random_model(family, std=0.15)
    export_hf_folder(model, model.config, None, tmp_path)
    config, state = load_hf_folder(tmp_path)
    for field in ("arch", "head_dim", "qk_norm", "n_experts", "n_experts_per_tok", "moe_intermediate_size",
                  "norm_topk_prob", "dense_layers", "rope_theta"):
        assert getattr(config, field) == getattr(model.config, field), field
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    x = torch.randint(0, VOCAB, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        assert (build_model(config, state)(x) - expected).abs().max() <= 1e-4
        assert (ref(x).logits - expected).abs().max() <= 1e-4


def test_export_refuses_a_mixtral_without_renormalised_routing():
    model = random_model("mixtral")
    model.config.norm_topk_prob = False
    with pytest.raises(ExportError, match="Mixtral"):
        hf_config_dict(model.config)


def test_moe_adapter_loads_in_peft_with_the_same_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    model = random_model("qwen3_moe", std=0.15)
    export_hf_folder(model, model.config, None, tmp_path / "base")
    ours = build_model(*load_hf_folder(tmp_path / "base"))
    # Attention targets: PEFT on transformers 5 would also put `down_proj` etc. on the stacked
    # experts (which our LoRA leaves alone), so MLP targets of a MoE model differ there.
    lora = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj"])
    apply_lora(ours, lora)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _, layer in lora_layers(ours):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.1)
    adapter = save_adapter(ours, lora, tmp_path / "adapter", base_model_name="tiny")
    base = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base", attn_implementation="eager")
    ref = peft.PeftModel.from_pretrained(base.eval(), adapter).eval()
    x = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (ref(x).logits - ours(x)).abs().max().item() <= 1e-4



def test_moe_adapter_round_trips_in_our_format(tmp_path):
    """An adapter on a Qwen3-MoE model with MLP targets (its dense layer's MLP is wrapped, the
    experts are not) loads back into a fresh model with the same logits."""
    from chatapp.weights.peft_adapter import load_adapter

    model = random_model("qwen3_moe", std=0.15)
    lora = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "down_proj"])
    apply_lora(model, lora)
    assert sorted(n for n, _ in lora_layers(model) if ".mlp." in n) == ["layers.1.mlp.down_proj"]
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.1)
    adapter = save_adapter(model, lora, tmp_path / "a", base_model_name="tiny")
    fresh = random_model("qwen3_moe", std=0.15)
    load_adapter(fresh, adapter)
    x = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.allclose(fresh(x), model(x), atol=1e-6)
