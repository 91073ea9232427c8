"""Hugging Face folder loading: sharded files, and a specific error for each kind of bad input."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from chatapp.errors import (CorruptFileError, MissingFileError, ShapeMismatchError,
                            UnsupportedArchitectureError)
from chatapp.model import ModelConfig, Transformer
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder

HF_CONFIG = {
    "model_type": "llama", "vocab_size": 50, "hidden_size": 32, "intermediate_size": 48,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
}


def _hf_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in Hugging Face Llama names matching HF_CONFIG."""
    g = torch.Generator().manual_seed(seed)
    d, f, v, kv = 32, 48, 50, 2 * 8
    state = {"model.embed_tokens.weight": torch.randn(v, d, generator=g),
             "model.norm.weight": torch.randn(d, generator=g),
             "lm_head.weight": torch.randn(v, d, generator=g)}
    for i in range(2):
        p = f"model.layers.{i}."
        state.update({
            p + "input_layernorm.weight": torch.randn(d, generator=g),
            p + "post_attention_layernorm.weight": torch.randn(d, generator=g),
            p + "self_attn.q_proj.weight": torch.randn(d, d, generator=g),
            p + "self_attn.k_proj.weight": torch.randn(kv, d, generator=g),
            p + "self_attn.v_proj.weight": torch.randn(kv, d, generator=g),
            p + "self_attn.o_proj.weight": torch.randn(d, d, generator=g),
            p + "mlp.gate_proj.weight": torch.randn(f, d, generator=g),
            p + "mlp.up_proj.weight": torch.randn(f, d, generator=g),
            p + "mlp.down_proj.weight": torch.randn(d, f, generator=g),
        })
    return state


def _write_folder(folder, config=HF_CONFIG, state=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(state if state is not None else _hf_state(), str(folder / "model.safetensors"))
    return folder


def test_single_file_loads_all_weights(tmp_path):
    folder = _write_folder(tmp_path / "m")
    config, state = load_hf_folder(folder)
    assert (config.arch, config.dim, config.n_kv_heads, config.head_dim) == ("llama", 32, 2, 8)
    assert torch.equal(state["layers.1.attn.k_proj.weight"], _hf_state()["model.layers.1.self_attn.k_proj.weight"])
    model = build_model(config, state)
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 50)


def test_sharded_folder_equals_single_file(tmp_path):
    state = _hf_state()
    names = sorted(state)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(folder / shard))
    index = {"metadata": {}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    seen = []
    _, sharded = load_hf_folder(folder, progress=lambda done, total: seen.append((done, total)))
    _, single = load_hf_folder(_write_folder(tmp_path / "single"))
    assert sharded.keys() == single.keys()
    assert all(torch.equal(sharded[k], single[k]) for k in single)
    assert seen[-1] == (len(names), len(names))


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="empty.*config.json"):
        load_hf_folder(tmp_path / "empty")


def test_config_not_json(tmp_path):
    folder = _write_folder(tmp_path / "m")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match=r"config\.json.*not valid JSON"):
        load_hf_folder(folder)


def test_unsupported_architecture(tmp_path):
    folder = _write_folder(tmp_path / "m", config={**HF_CONFIG, "model_type": "bert"})
    with pytest.raises(UnsupportedArchitectureError, match=r"config\.json.*'bert'.*supported: llama"):
        load_hf_folder(folder)


def test_config_missing_field(tmp_path):
    config = {k: v for k, v in HF_CONFIG.items() if k != "hidden_size"}
    with pytest.raises(CorruptFileError, match="hidden_size"):
        load_hf_folder(_write_folder(tmp_path / "m", config=config))


def test_no_weights(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    (folder / "pytorch_model.bin").write_bytes(b"pickle data we never read")
    with pytest.raises(MissingFileError, match=r"m: has no \*\.safetensors"):
        load_hf_folder(folder)


def test_truncated_safetensors(tmp_path):
    folder = _write_folder(tmp_path / "m")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"model\.safetensors"):
        load_hf_folder(folder)


def test_index_names_missing_shard(tmp_path):
    folder = _write_folder(tmp_path / "m")
    index = {"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(MissingFileError, match="model-00002-of-00002.safetensors.*incomplete"):
        load_hf_folder(folder)


def test_shape_disagrees_with_config(tmp_path):
    state = _hf_state()
    state["model.layers.0.mlp.up_proj.weight"] = torch.zeros(40, 32)
    with pytest.raises(ShapeMismatchError, match=r"m: tensor layers\.0\.mlp\.up_proj\.weight has shape \[40, 32\]"):
        load_hf_folder(_write_folder(tmp_path / "m", state=state))


def test_missing_tensor(tmp_path):
    state = _hf_state()
    del state["model.layers.1.self_attn.v_proj.weight"]
    with pytest.raises(ShapeMismatchError, match=r"missing tensors: layers\.1\.attn\.v_proj\.weight"):
        load_hf_folder(_write_folder(tmp_path / "m", state=state))


def test_config_validates_itself():
    from chatapp.model import ConfigError
    with pytest.raises(ConfigError, match="not a multiple of n_kv_heads"):
        ModelConfig(arch="llama", vocab_size=10, dim=32, n_layers=1, n_heads=4, n_kv_heads=3,
                    intermediate_size=8, max_seq_len=8)
    with pytest.raises(ConfigError, match="unsupported architecture"):
        ModelConfig(arch="bert", vocab_size=10, dim=32, n_layers=1, n_heads=4,
                    intermediate_size=8, max_seq_len=8)


def test_position_past_context_is_refused():
    model = Transformer(ModelConfig(arch="llama", vocab_size=10, dim=16, n_layers=1, n_heads=2,
                                    intermediate_size=8, max_seq_len=8))
    with pytest.raises(ValueError, match="past the context length 8"):
        model(torch.zeros(1, 9, dtype=torch.long))
