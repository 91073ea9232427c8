"""Phi-3 and SmolLM3 models of ours written as Hugging Face folders (fused qkv_proj and
gate_up_proj written back, LongRoPE and partial rotary kept, layers without RoPE kept): the folder
opens in transformers with the same logits, and with our loader with the same tensors."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.model import ModelConfig, Transformer  # noqa: E402
from chatapp.model.config import RopeScaling  # noqa: E402
from chatapp.training.export import export_hf_folder  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder  # noqa: E402

SIZE = dict(vocab_size=53, dim=64, n_layers=4, n_heads=4, n_kv_heads=2, intermediate_size=96, max_seq_len=64)


def _models():
    longrope = RopeScaling(kind="longrope", factor=4.0, original_max_position_embeddings=16,
                           short_factor=[1.0 + 0.2 * i for i in range(6)], long_factor=[2.0 + i for i in range(6)])
    return {
        "phi3-longrope-partial": ModelConfig(arch="phi3", **SIZE, partial_rotary_factor=0.75, rope_scaling=longrope,
                                             tie_embeddings=True),
        "phi3-sliding": ModelConfig(arch="phi3", **SIZE, sliding_window=8),
        "smollm3": ModelConfig(arch="smollm3", **SIZE, no_rope_layers=[1, 3], rope_theta=1000.0),
    }


@pytest.mark.parametrize("case", list(_models()))
@torch.no_grad()
def test_exported_folder_matches_in_transformers_and_reloads(case, tmp_path):
    config = _models()[case]
    torch.manual_seed(0)
    model = Transformer(config).eval()
    for p in model.parameters():
        p.normal_(0.0, 0.2)
    folder = export_hf_folder(model, config, None, tmp_path / case)
    tokens = torch.randint(0, 53, (2, 21), generator=torch.Generator().manual_seed(3))  # 21 > 16: long factors
    ref = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    assert (ref(tokens).logits - model(tokens)).abs().max().item() <= 1e-4
    again, state = load_hf_folder(folder)
    assert again.to_dict() == {**config.to_dict(), "name": again.name}
    for name, tensor in model.state_dict().items():
        if not (name == "lm_head.weight" and config.tie_embeddings):
            assert torch.equal(state[name], tensor), name
