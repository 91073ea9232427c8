"""Exported Hugging Face folders: our loader and transformers both open them with the same logits."""

from __future__ import annotations

import json

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.config import RopeScaling
from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
from chatapp.text import Tokenizer
from chatapp.training.export import ExportError, export_hf_folder, hf_config_dict, hf_name, merge_and_export
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder
from chatapp.weights.hf_names import our_name
from chatapp.weights.peft_adapter import save_adapter

from helpers.tiny_hf import tiny_llama_folder, tiny_tokenizer

transformers = pytest.importorskip("transformers")

VOCAB = 50
SHAPE = dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, max_seq_len=64)
CONFIGS = {
    "llama-gqa-linear-rope": dict(arch="llama", n_kv_heads=2, intermediate_size=48,
                                  rope_scaling=RopeScaling("linear", 2.0)),
    "llama-tied-biases-llama3-rope": dict(arch="llama", n_kv_heads=1, head_dim=16, intermediate_size=48,
                                          qkv_bias=True, o_bias=True, mlp_bias=True, tie_embeddings=True,
                                          rope_scaling=RopeScaling("llama3", 8.0,
                                                                   original_max_position_embeddings=16)),
    "qwen2": dict(arch="qwen2", n_kv_heads=2, intermediate_size=48, qkv_bias=True, tie_embeddings=True,
                  norm_eps=1e-6, rope_theta=1e6),
    "mistral-sliding": dict(arch="mistral", n_kv_heads=2, intermediate_size=48, sliding_window=8),
    "gpt2": dict(arch="gpt2", intermediate_size=128, norm="layernorm", mlp="gelu", positions="learned",
                 qkv_bias=True, o_bias=True, mlp_bias=True, tie_embeddings=True),
}


def random_model(name: str, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**SHAPE, **CONFIGS[name])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.15)
    return model


def tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 20), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_export_opens_in_our_loader_and_transformers_with_the_same_logits(name, tmp_path):
    model = random_model(name)
    export_hf_folder(model, model.config, None, tmp_path)
    config, state = load_hf_folder(tmp_path)
    ours = build_model(config, state)
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    x = tokens()
    with torch.no_grad():
        expected = model(x)
        assert (ours(x) - expected).abs().max() <= 1e-4
        assert (ref(x).logits - expected).abs().max() <= 1e-4
    for field in ("arch", "n_kv_heads", "head_dim", "tie_embeddings", "qkv_bias", "sliding_window", "rope_scaling"):
        assert getattr(config, field) == getattr(model.config, field), field


@pytest.mark.parametrize("name", [n for n in CONFIGS if n != "gpt2"])
def test_names_are_the_inverse_of_the_loaders(name):
    model = random_model(name)
    for ours in model.state_dict():
        assert our_name(hf_name(ours, model.config.arch), model.config.arch) == ours


def test_export_refuses_what_the_format_cannot_hold(tmp_path):
    model = random_model("llama-gqa-linear-rope")
    apply_lora(model, LoRAConfig(r=2))
    with pytest.raises(ExportError, match="merge_lora"):
        export_hf_folder(model, model.config, None, tmp_path)
    assert not list(tmp_path.iterdir())  # refused before writing anything
    odd = ModelConfig(**SHAPE, arch="llama", intermediate_size=48, qkv_bias=True)  # bias on q/k/v only
    with pytest.raises(ExportError, match="attention_bias"):
        hf_config_dict(odd)


def test_tokenizer_files_round_trip(tmp_path):
    tokenizer = tiny_tokenizer()
    model = Transformer(ModelConfig(arch="llama", vocab_size=tokenizer.vocab_size, dim=32, n_layers=1, n_heads=4,
                                    intermediate_size=48, max_seq_len=64))
    export_hf_folder(model, model.config, tokenizer, tmp_path)
    again = Tokenizer.from_hf_folder(tmp_path)
    text = "the cat sat on the warm mat. <|im_start|>user\nhi<|im_end|>"
    assert again.encode(text) == tokenizer.encode(text) and again.decode(again.encode(text)) == text
    assert again.eos_id == tokenizer.eos_id and again.eos_ids == tokenizer.eos_ids and not again.add_bos
    messages = [{"role": "user", "content": "hi"}]
    assert again.apply_chat_template(messages) == tokenizer.apply_chat_template(messages)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["eos_token_id"] == tokenizer.eos_id and config["architectures"] == ["LlamaForCausalLM"]
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert hf_tok("the cat sat", add_special_tokens=False)["input_ids"] == tokenizer.encode("the cat sat")


def test_merge_and_export_equals_base_plus_adapter(tmp_path):
    from chatapp.engine.loader import load_model

    base = tiny_llama_folder(tmp_path / "base", family="qwen2")
    model = load_model(base, device="cpu").model
    apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.2)
    save_adapter(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]),
                 tmp_path / "adapter", str(base))
    out = merge_and_export(base, tmp_path / "adapter", tmp_path / "merged")

    merged = load_model(out, device="cpu").model
    ref = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    plain = load_model(base, device="cpu").model
    x = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = model(x)
        assert (merged(x) - expected).abs().max() <= 1e-4
        assert (ref(x).logits - expected).abs().max() <= 1e-4
        assert (plain(x) - expected).abs().max() > 1e-2  # the adapter matters
    notes = json.loads((out / "chatapp_export.json").read_text())
    assert notes["adapter"] == str(tmp_path / "adapter")
