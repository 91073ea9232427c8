"""LoRA layers on our Transformer, and adapters in PEFT's format checked against `peft` itself."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors import safe_open

from chatapp.errors import MissingFileError, ModelLoadError, ShapeMismatchError, UnsupportedArchitectureError
from chatapp.model import ModelConfig, Transformer
from chatapp.model.linear import Linear
from chatapp.model.lora import (LoRAConfig, LoRALinear, apply_lora, base_names, lora_layers, lora_state_dict,
                                merge_lora, remove_lora, set_lora_enabled)
from chatapp.training.dataset import TokenBlocks, pack_documents, split_documents
from chatapp.training.trainer import TrainConfig, Trainer, evaluate
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder
from chatapp.weights.peft_adapter import load_adapter, read_adapter_info, save_adapter

# Raised inside transformers when peft wraps a model; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(seed: int = 0, vocab: int = 48, **overrides) -> Transformer:
    config = ModelConfig(**{**dict(arch="llama", vocab_size=vocab, dim=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                   intermediate_size=128, max_seq_len=64), **overrides})
    torch.manual_seed(seed)
    return Transformer(config).eval()


def tokens(batch: int = 2, seq: int = 16, vocab: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


def randomize_lora(model: torch.nn.Module, seed: int = 5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.1)


# -- config and layer ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(r=0), "rank"),
    (dict(alpha=0), "alpha"),
    (dict(dropout=1.0), "dropout"),
    (dict(target_modules=["qkv"]), "unknown LoRA target"),
    (dict(target_modules=[]), "empty"),
    (dict(target_modules=["q_proj", "q_proj"]), "duplicates"),
])
def test_config_validates_itself(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoRAConfig(**kwargs)


def test_config_scaling():
    assert LoRAConfig(r=8, alpha=16).scaling == 2.0
    assert LoRAConfig(r=16, alpha=8, use_rslora=True).scaling == 2.0


def test_fresh_adapter_changes_nothing_and_only_lora_trains():
    model = tiny_llama()
    x = tokens()
    with torch.no_grad():
        base = model(x)
    base_keys = set(model.state_dict())
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    with torch.no_grad():
        assert torch.equal(model(x), base)  # B = 0
    layers = dict(lora_layers(model))
    assert sorted(layers) == [f"layers.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    q = layers["layers.0.attn.q_proj"]
    assert q.lora_A.shape == (4, 64) and q.lora_B.shape == (64, 4) and q.scaling == 2.0
    assert q.lora_A.abs().max() > 0 and q.lora_B.abs().max() == 0
    # Base weights sit in the wrapped layer (PEFT's base_layer; base_names maps them back);
    # adapters add lora_A / lora_B beside them.
    assert "layers.0.attn.q_proj.base_layer.weight" in model.state_dict()
    assert set(base_names(model.state_dict())) == base_keys | {f"{n}.lora_{w}" for n in layers for w in "AB"}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(lora_state_dict(model)) == {f"{n}.lora_{w}" for n in layers for w in "AB"}
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model, LoRAConfig())


def test_lora_training_reduces_loss_and_held_out_perplexity():
    # A "language" of 6 fixed phrases: after a phrase's first token the rest is predictable.
    rng = random.Random(0)
    eos, vocab = 47, 48
    phrases = [[rng.randrange(eos) for _ in range(6)] for _ in range(6)]
    docs = [[t for _ in range(8) for t in rng.choice(phrases)] for _ in range(60)]
    train_docs, val_docs = split_documents(docs, val_fraction=0.15, seed=0)
    train = TokenBlocks.from_blocks(pack_documents(train_docs, 32, eos))
    val = TokenBlocks.from_blocks(pack_documents(val_docs, 32, eos))

    size = dict(vocab=vocab, dim=96, n_layers=3, n_heads=4, n_kv_heads=2, intermediate_size=192)
    model = tiny_llama(**size)
    assert 250_000 < sum(p.numel() for p in model.parameters()) < 300_000
    config = TrainConfig(method="lora", lr=1e-2, warmup_steps=5, max_steps=60, batch_size=8, eval_every=30,
                         block_size=32, lora=LoRAConfig(r=8, alpha=16, target_modules=ALL_TARGETS))
    events = []
    result = Trainer(model, config, train, val, progress=events.append).fit()

    first, last = result.losses[1], sum(result.losses[s] for s in range(56, 61)) / 5
    before, after = result.evals[0]["val_ppl"], result.evals[-1]["val_ppl"]
    print(f"train loss {first:.3f} -> {last:.3f}; held-out ppl {before:.2f} -> {after:.2f}")
    assert last < 0.6 * first
    assert after < 0.5 * before
    assert [e["step"] for e in result.evals] == [0, 30, 60]
    assert evaluate(model, val)[1] == pytest.approx(after)
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 60 and "val_ppl" in steps[29] and "val_ppl" not in steps[0]
    # Only the adapters moved.
    for name, p in tiny_llama(**size).named_parameters():
        assert torch.equal(p, model.get_parameter(name))


def test_merge_and_disable():
    model = tiny_llama()
    x = tokens()
    with torch.no_grad():
        base = model(x)
        apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=ALL_TARGETS))
        randomize_lora(model)
        adapted = model(x)
        assert (adapted - base).abs().max() > 1e-2

        set_lora_enabled(model, False)
        assert torch.equal(model(x), base)
        set_lora_enabled(model, True)
        assert torch.equal(model(x), adapted)

        layer = model.layers[0].attn.q_proj
        layer.enabled = False
        without_q = model(x)
        layer.enabled = True
        layer.merge()
        assert layer.merged
        assert (model(x) - adapted).abs().max() <= 1e-5
        layer.enabled = False  # unmerges first, so "off" really is the base
        assert not layer.merged
        assert (model(x) - without_q).abs().max() <= 1e-5
        layer.enabled = True

        merge_lora(model)
        assert not list(lora_layers(model))
        assert all(type(m) is Linear for n, m in model.named_modules() if n.endswith("_proj"))
        assert set(model.state_dict()) == set(tiny_llama().state_dict())
        assert (model(x) - adapted).abs().max() <= 1e-5


def test_remove_lora_gives_back_the_base():
    model = tiny_llama()
    x = tokens()
    with torch.no_grad():
        base = model(x)
        apply_lora(model, LoRAConfig(target_modules=["q_proj", "down_proj"]))
        randomize_lora(model)
        model.layers[1].mlp.down_proj.merge()
        remove_lora(model)
        assert (model(x) - base).abs().max() <= 1e-5
    assert isinstance(model.layers[0].attn.q_proj, torch.nn.Linear)
    assert not isinstance(model.layers[0].attn.q_proj, LoRALinear)


def test_float32_adapter_over_bf16_weights():
    model = tiny_llama().to(torch.bfloat16)
    apply_lora(model, LoRAConfig(), dtype=torch.float32)
    randomize_lora(model)
    out = model(tokens())
    assert out.dtype == torch.bfloat16 and model.layers[0].attn.q_proj.lora_A.dtype == torch.float32


# -- PEFT format --------------------------------------------------------------------------

VOCAB = 61
HF_COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def peft():
    return pytest.importorskip("peft")


def _hf_config(transformers, family: str):
    if family == "qwen2":
        return transformers.Qwen2Config(**HF_COMMON)
    return transformers.LlamaConfig(**HF_COMMON, rms_norm_eps=1e-5)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def hf_folder(request, tmp_path_factory, transformers):
    """A tiny random Hugging Face model saved with save_pretrained; (family, folder)."""
    torch.manual_seed(11)
    ref = transformers.AutoModelForCausalLM.from_config(_hf_config(transformers, request.param),
                                                        attn_implementation="eager")
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)  # away from the near-zero init, so logits differ meaningfully
    folder = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(folder)
    return request.param, folder


def _reference(folder):
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()


def _ours(folder):
    return build_model(*load_hf_folder(folder))


def test_our_adapter_loads_in_peft_with_the_same_logits(hf_folder, tmp_path, peft):
    family, folder = hf_folder
    ours = _ours(folder)
    lora = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"])
    blocks = torch.randint(0, VOCAB, (8, 17), generator=torch.Generator().manual_seed(3))
    Trainer(ours, TrainConfig(lr=1e-2, warmup_steps=0, max_steps=3, batch_size=4, block_size=16, lora=lora),
            blocks).fit()
    assert min(layer.lora_B.abs().max() for _, layer in lora_layers(ours)) > 0
    adapter = save_adapter(ours, lora, tmp_path / "adapter", base_model_name=str(folder),
                           metadata={"data_fingerprint": "abc", "val_ppl": 12.5})

    peft_config = json.loads((adapter / "adapter_config.json").read_text())
    assert peft_config["peft_type"] == "LORA" and peft_config["task_type"] == "CAUSAL_LM"
    assert peft_config["target_modules"] == ["down_proj", "o_proj", "q_proj", "v_proj"]
    assert (peft_config["r"], peft_config["lora_alpha"], peft_config["bias"]) == (4, 8, "none")
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in f.keys()
        assert "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight" in f.keys()
        assert json.loads(f.metadata()["chatapp_metadata"]) == {"data_fingerprint": "abc", "val_ppl": 12.5}
    info = read_adapter_info(adapter)
    assert info.base_model_name == str(folder) and info.metadata["val_ppl"] == 12.5

    x = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(4))
    ref = peft.PeftModel.from_pretrained(_reference(folder), adapter).eval()
    with torch.no_grad():
        expected = ref(x).logits
        got = ours(x)
        base = _ours(folder)(x)
    assert (expected - base).abs().max() > 1e-3  # the adapter matters
    assert (got - expected).abs().max().item() <= 1e-4


def test_peft_adapter_loads_in_ours_with_the_same_logits(hf_folder, tmp_path, peft):
    family, folder = hf_folder
    torch.manual_seed(5)
    config = peft.LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1, task_type="CAUSAL_LM", use_rslora=True,
                             target_modules=["k_proj", "v_proj", "gate_proj", "up_proj"],
                             init_lora_weights=False)  # random B: not a no-op
    ref = peft.get_peft_model(_reference(folder), config).eval()
    ref.save_pretrained(tmp_path / "adapter")

    ours = _ours(folder)
    info = load_adapter(ours, tmp_path / "adapter")
    assert info.config.target_modules == ["gate_proj", "k_proj", "up_proj", "v_proj"]
    assert info.config.use_rslora and info.config.r == 4
    assert len(list(lora_layers(ours))) == 8
    x = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = ref(x).logits
        got = ours(x)
        base = _ours(folder)(x)
    assert (expected - base).abs().max() > 1e-3
    assert (got - expected).abs().max().item() <= 1e-4
    # Loading another adapter replaces this one rather than stacking on it.
    save_adapter(ours, info.config, tmp_path / "again", "x")
    load_adapter(ours, tmp_path / "again")
    with torch.no_grad():
        assert (ours(x) - expected).abs().max().item() <= 1e-4


# -- load errors --------------------------------------------------------------------------
@pytest.fixture
def saved_adapter(tmp_path):
    model = tiny_llama()
    lora = LoRAConfig(r=2, alpha=4)
    apply_lora(model, lora)
    randomize_lora(model)
    return save_adapter(model, lora, tmp_path / "adapter", "tiny", {"note": "test"})


def test_load_checks_the_folder(saved_adapter, tmp_path):
    model = tiny_llama()
    with pytest.raises(MissingFileError, match="is not a folder"):
        load_adapter(model, tmp_path / "nowhere")
    (saved_adapter / "adapter_model.safetensors").rename(saved_adapter / "adapter_model.bin")
    with pytest.raises(MissingFileError, match="pickle") as err:
        load_adapter(model, saved_adapter)
    assert err.value.path == saved_adapter
    (saved_adapter / "adapter_config.json").unlink()
    with pytest.raises(MissingFileError, match="no adapter_config.json"):
        load_adapter(model, saved_adapter)


@pytest.mark.parametrize("change, error, message", [
    ({"target_modules": ["q_proj", "lm_head"]}, UnsupportedArchitectureError, "unknown target modules"),
    ({"peft_type": "IA3"}, UnsupportedArchitectureError, "IA3"),
    ({"use_dora": True}, UnsupportedArchitectureError, "use_dora"),
    ({"target_modules": ".*proj"}, UnsupportedArchitectureError, "pattern"),
    ({"r": 0}, ModelLoadError, "rank"),
])
def test_load_refuses_what_it_cannot_honour(saved_adapter, change, error, message):
    path = saved_adapter / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(error, match=message) as err:
        load_adapter(tiny_llama(), saved_adapter)
    assert str(saved_adapter) in str(err.value)


def test_load_refuses_another_base_and_leaves_the_model_alone(saved_adapter):
    x = tokens()
    for other in (tiny_llama(dim=32, n_heads=2, n_kv_heads=1), tiny_llama(n_layers=3)):
        with torch.no_grad():
            before = other(x)
        with pytest.raises(ShapeMismatchError) as err:
            load_adapter(other, saved_adapter)
        assert "adapter_model.safetensors" in str(err.value) and "tiny" in str(err.value)
        assert not list(lora_layers(other))
        with torch.no_grad():
            assert torch.equal(other(x), before)
    gpt2 = Transformer(ModelConfig(arch="gpt2", vocab_size=48, dim=32, n_layers=1, n_heads=2, intermediate_size=64,
                                   max_seq_len=32, norm="layernorm", mlp="gelu", positions="learned"))
    with pytest.raises(UnsupportedArchitectureError, match="gpt2"):
        load_adapter(gpt2, saved_adapter)
