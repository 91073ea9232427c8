"""Phi-3 LoRA adapters in PEFT format, checked against `peft` on transformers' Phi3ForCausalLM.

Our adapters sit on the split q/k/v and gate/up layers; PEFT names Phi-3's fused qkv_proj and
gate_up_proj. They are written there by rank stacking (rank n*r, alpha n*alpha; a part left out
is a zero block) and split again on reading; a fused adapter PEFT trained on the fused layer
itself (B not block-diagonal) is refused.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from chatapp.errors import CorruptFileError, ShapeMismatchError, UnsupportedArchitectureError
from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers, merge_lora
from chatapp.training.export import export_hf_folder
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder
from chatapp.weights.peft_adapter import load_adapter, save_adapter
from chatapp.weights.phi3 import fuse_lora, split_lora

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
# Raised inside transformers when peft wraps a model; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

VOCAB = 64
PARTIAL = ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]  # k and up left out: zero blocks


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    config = transformers.Phi3Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                     pad_token_id=None, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(11)
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    path = tmp_path_factory.mktemp("phi3")
    ref.save_pretrained(path)
    return path


def _ours(folder):
    return build_model(*load_hf_folder(folder)).eval()


def _reference(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()


def _adapted(folder, lora: LoRAConfig, seed: int = 5):
    model = _ours(folder)
    apply_lora(model, lora)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=g) * 0.2)
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.2)
    return model


X = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(4))


def test_fuse_and_split_are_inverse_and_stack_the_products():
    g = torch.Generator().manual_seed(0)
    rows, r = [6, 4, 4], 2
    pairs = [(torch.randn(r, 5, generator=g), torch.randn(n, r, generator=g)) for n in rows]
    a, b = fuse_lora([pairs[0], None, pairs[2]], rows, r, 5)
    assert a.shape == (6, 5) and b.shape == (14, 6)
    delta = b @ a
    assert torch.allclose(delta[:6], pairs[0][1] @ pairs[0][0]) and torch.equal(delta[6:10], torch.zeros(4, 5))
    assert torch.allclose(delta[10:], pairs[2][1] @ pairs[2][0])
    back = split_lora("x", a, b, rows)
    assert torch.equal(back[0][0], pairs[0][0]) and torch.equal(back[2][1], pairs[2][1])
    b[0, 5] = 1.0  # q's rows reaching v's rank block
    with pytest.raises(ValueError, match="not block-diagonal"):
        split_lora("x", a, b, rows)
    with pytest.raises(ValueError, match="not 3 stacked ranks"):
        split_lora("x", a[:5], b[:, :5], rows)


@pytest.mark.parametrize("targets, rslora", [(PARTIAL, False), (list(LoRAConfig().target_modules), True),
                                             (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"], False)])
def test_our_adapter_loads_in_peft_and_back_in_ours_with_the_same_logits(folder, tmp_path, targets, rslora):
    lora = LoRAConfig(r=4, alpha=8, target_modules=targets, use_rslora=rslora)
    ours = _adapted(folder, lora)
    adapter = save_adapter(ours, lora, tmp_path / "adapter", base_model_name=str(folder))

    config = json.loads((adapter / "adapter_config.json").read_text())
    groups = {"qkv_proj": 3, "gate_up_proj": 2}
    used = {g for g, t in (("qkv_proj", "q_proj k_proj v_proj"), ("gate_up_proj", "gate_proj up_proj"))
            if set(t.split()) & set(targets)}
    assert set(config["target_modules"]) <= {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    assert config["rank_pattern"] == {g: 4 * groups[g] for g in used}
    for g in used:  # each part keeps alpha/r (alpha/sqrt(r) with rsLoRA) at the stacked rank
        n = groups[g]
        expected = lora.scaling * ((4 * n) ** 0.5 if rslora else 4 * n)
        assert config["alpha_pattern"][g] == pytest.approx(expected)
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        names = set(f.keys())
    if "qkv_proj" in used:
        assert "base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight" in names
    assert not any(".q_proj." in n or ".gate_proj." in n for n in names)

    ref = peft.PeftModel.from_pretrained(_reference(folder), adapter).eval()
    with torch.no_grad():
        expected = ref(X).logits
        got = ours(X)
        base = _ours(folder)(X)
    assert (expected - base).abs().max() > 1e-3  # the adapter matters
    assert (got - expected).abs().max().item() <= 1e-4

    again = _ours(folder)
    info = load_adapter(again, adapter)
    assert info.config.target_modules == sorted(targets)  # zero blocks of parts left out are not layers
    assert len(list(lora_layers(again))) == 2 * len(targets)
    with torch.no_grad():
        assert (again(X) - expected).abs().max().item() <= 1e-4

    # PEFT's own copy (no chatapp_adapter.json): every part of a fused group, the left-out ones zero
    resaved = tmp_path / "resaved"
    ref.save_pretrained(resaved)
    third = _ours(folder)
    load_adapter(third, resaved)
    with torch.no_grad():
        assert (third(X) - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("rank, message", [(6, "not block-diagonal"), (4, "not 3 stacked ranks")])
def test_adapter_trained_by_peft_on_the_fused_layers_is_refused(folder, tmp_path, rank, message):
    config = peft.LoraConfig(r=rank, lora_alpha=8, target_modules=["qkv_proj", "o_proj"], task_type="CAUSAL_LM",
                             init_lora_weights=False)
    ref = peft.get_peft_model(_reference(folder), config).eval()
    ref.save_pretrained(tmp_path / "adapter")
    ours = _ours(folder)
    with torch.no_grad():
        before = ours(X)
    with pytest.raises(UnsupportedArchitectureError, match=message) as info:
        load_adapter(ours, tmp_path / "adapter")
    assert "trained on the fused layer" in str(info.value) and "merge_and_unload" in str(info.value)
    assert not list(lora_layers(ours))
    with torch.no_grad():
        assert torch.equal(ours(X), before)  # untouched


@torch.no_grad()
def test_merged_phi3_lora_exports_a_folder_transformers_reads_with_the_same_logits(folder, tmp_path):
    lora = LoRAConfig(r=4, alpha=8, target_modules=PARTIAL)
    ours = _adapted(folder, lora)
    with_adapter = ours(X)
    merge_lora(ours)
    assert not list(lora_layers(ours))
    out = export_hf_folder(ours, ours.config, None, tmp_path / "merged")
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    assert (ref(X).logits - with_adapter).abs().max().item() <= 1e-4
    assert (_ours(folder)(X) - with_adapter).abs().max() > 1e-3


def test_merge_and_export_folds_a_saved_phi3_adapter(tmp_path):
    from helpers.tiny_hf import tiny_llama_folder

    from chatapp.engine.loader import load_model
    from chatapp.training.export import merge_and_export

    base = tiny_llama_folder(tmp_path / "base", family="phi3")
    lora = LoRAConfig(r=4, alpha=8, target_modules=PARTIAL)
    model = _adapted(base, lora)
    save_adapter(model, lora, tmp_path / "adapter", str(base))
    out = merge_and_export(base, tmp_path / "adapter", tmp_path / "merged")
    x = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = model(x)
        assert (load_model(out, device="cpu").model(x) - expected).abs().max() <= 1e-4
        ref = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
        assert (ref(x).logits - expected).abs().max() <= 1e-4
        assert (_ours(base)(x) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("change, error, message", [
    ({"alpha_pattern": {"qkv_proj": "big"}}, CorruptFileError, "alpha_pattern 'big'"),
    ({"rank_pattern": {"qkv_proj": 6, "gate_up_proj": 8}}, ShapeMismatchError,
     "qkv: lora_A has rank 12, the config says 6"),
    ({"rank_pattern": {"model.layers.0.self_attn.qkv_proj": 12}}, UnsupportedArchitectureError, "rank_pattern"),
])
def test_bad_fused_patterns_are_refused(folder, tmp_path, change, error, message):
    lora = LoRAConfig(r=4, alpha=8, target_modules=PARTIAL)
    adapter = save_adapter(_adapted(folder, lora), lora, tmp_path / "adapter", "base")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(error, match=message):
        load_adapter(_ours(folder), adapter)
