"""Gemma 2 / Gemma 3 models of ours written as Hugging Face folders: they open in our loader and
in transformers with the same logits, their config (window pattern, soft-caps, local RoPE) intact."""

from __future__ import annotations

import json

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.config import RopeScaling
from chatapp.training.export import ExportError, export_hf_folder
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder

transformers = pytest.importorskip("transformers")
VOCAB = 40
GEMMA = dict(vocab_size=VOCAB, dim=64, n_layers=3, n_heads=4, n_kv_heads=2, head_dim=16, intermediate_size=96,
             max_seq_len=64, norm_unit_offset=True, post_norms=True, embed_scale=True, mlp="geglu",
             attn_scale=24 ** -0.5, sliding_window=5, tie_embeddings=True,
             layer_types=("sliding_attention", "full_attention", "sliding_attention"))
CONFIGS = {
    "gemma2": dict(arch="gemma2", attn_softcap=4.0, final_softcap=6.0),
    "gemma3": dict(arch="gemma3", qk_norm=True, final_softcap=6.0, rope_theta=50000.0,
                   rope_scaling=RopeScaling(kind="linear", factor=2.0), local_rope_theta=100.0),
}


def random_model(name: str) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**GEMMA, **CONFIGS[name])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.15)
    return model


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gemma_export_opens_in_our_loader_and_transformers(name, tmp_path):
    model = random_model(name)
    export_hf_folder(model, model.config, None, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == ("gemma2" if name == "gemma2" else "gemma3_text")
    config, state = load_hf_folder(tmp_path)
    assert {k: v for k, v in vars(config).items() if k != "name"} == {
        k: v for k, v in vars(model.config).items() if k != "name"}  # every Gemma field came back
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    x = torch.randint(0, VOCAB, (2, 15), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        assert (build_model(config, state)(x) - expected).abs().max() <= 1e-4
        assert (ref(x).logits - expected).abs().max() <= 1e-4


def test_gemma_export_refuses_what_its_config_cannot_hold(tmp_path):
    model = random_model("gemma2")
    model.config.mlp_bias = True
    with pytest.raises(ExportError, match="no MLP bias"):
        export_hf_folder(model, model.config, None, tmp_path)
