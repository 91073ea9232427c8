"""Hostile model files (GGUF headers, config.json, safetensors indexes) end in our ModelLoadError
naming the file, within bounded time and memory: never a traceback, a hang or gigabytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatapp import limits
from chatapp.errors import CorruptFileError, ModelLoadError
from chatapp.weights.gguf_loader import load_gguf, open_gguf
from chatapp.weights.hf_loader import load_hf_folder, read_hf_config, safetensors_files
from safetensors.numpy import save_file
from tests.helpers.bounded import run_bounded
from tests.weights.gguf_writing import llama_metadata, tiny_llama_tensors, write_gguf

CHILD_MEMORY = 1 << 30  # the child's baseline (torch, numpy, gguf imported) is ~300 MB
GGUF_STRING, GGUF_ARRAY, GGUF_UINT32 = 8, 9, 4


def gguf_with_array(path, item_type: int, items: bytes, count: int, extra_kvs: int = 0) -> None:
    """A GGUF file holding one metadata array (items already encoded) and no tensors."""
    key = b"tokenizer.ggml.tokens"
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1 + extra_kvs)
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", GGUF_ARRAY, item_type, count) + items
    path.write_bytes(head + kv)


def open_in_child(path, memory: int = CHILD_MEMORY) -> dict:
    return run_bounded(f"""
        from chatapp.weights.gguf_loader import open_gguf
        from chatapp.errors import ModelLoadError
        try:
            open_gguf({str(path)!r})
            report(error=None)
        except ModelLoadError as exc:
            report(error=str(exc))
    """, memory=memory, timeout=120)


def test_two_million_item_array_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "bomb.gguf"
    gguf_with_array(path, GGUF_STRING, bytes(8 * 2_000_000), 2_000_000)  # 16 MB of empty strings
    result = open_in_child(path)
    assert str(path) in result["error"] and "more than 1,000,000 items" in result["error"]
    assert result["seconds"] < 10 and result["max_rss_mb"] < 600


def test_arrays_over_the_limit_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "GGUF_MAX_ARRAY_ITEMS", 1000)
    path = tmp_path / "many.gguf"
    one = struct.pack("<IIQ", GGUF_ARRAY, GGUF_UINT32, 600) + bytes(4 * 600)
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    kvs = b"".join(struct.pack("<Q", 5) + name + one for name in (b"key.a", b"key.b"))
    path.write_bytes(head + kvs)
    with pytest.raises(CorruptFileError, match="more than 1,000 items in all"):
        open_gguf(path)


def test_deeply_nested_arrays_are_refused(tmp_path):
    path = tmp_path / "nested.gguf"
    depth = 100_000  # each level is 12 bytes: a 1.2 MB file, far deeper than Python's recursion
    items = struct.pack("<IQ", GGUF_ARRAY, 1) * depth + struct.pack("<IQ", GGUF_UINT32, 0)
    gguf_with_array(path, GGUF_ARRAY, items, 1)
    with pytest.raises(CorruptFileError, match="nested more than 2 deep"):
        open_gguf(path)


@pytest.mark.parametrize("tensors, kvs, words", [(10**7, 0, "tensors"), (0, 10**7, "metadata keys")])
def test_absurd_counts_are_refused(tmp_path, tensors, kvs, words):
    path = tmp_path / "counts.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs) + bytes(64))
    with pytest.raises(CorruptFileError, match=words):
        open_gguf(path)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    tensors = tiny_llama_tensors(np.random.default_rng(0))
    write_gguf(path, tensors, llama_metadata())
    data = path.read_bytes()
    # The header (metadata and tensor table) ends where the first tensor's data begins.
    reader = open_gguf(path)
    header_len = min(t.data_offset for t in reader.tensors)
    return data, header_len


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.data())
def test_mutated_gguf_headers_end_in_our_error(tmp_path, tiny_gguf, data):
    original, header_len = tiny_gguf
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, header_len - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "mutated.gguf"
    path.write_bytes(bytes(raw))
    try:
        load_gguf(path)
    except ModelLoadError as exc:
        assert str(path) in str(exc)


# ---------------------------------------------------------------------- Hugging Face folders

LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100,
                "max_position_embeddings": 128, "rms_norm_eps": 1e-5}


def hf_folder(tmp_path, config) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "config.json").write_text(text)
    return folder


def test_plain_config_reads(tmp_path):
    _family, config = read_hf_config(hf_folder(tmp_path, LLAMA_CONFIG))
    assert config.dim == 64 and config.n_layers == 2


@pytest.mark.parametrize("change, words", [
    ({"hidden_size": "64"}, "field 'hidden_size' must be a whole number, got '64'"),
    ({"num_hidden_layers": 2.0}, "field 'num_hidden_layers' must be a whole number"),
    ({"vocab_size": 10**15}, "field 'vocab_size' must be between 0 and"),
    ({"rms_norm_eps": "small"}, "field 'rms_norm_eps' must be a number"),
    ({"tie_word_embeddings": "yes"}, "field 'tie_word_embeddings' must be true or false"),
    ({"rope_scaling": [1, 2]}, "field 'rope_scaling' must be an object"),
    ({"model_type": ["llama"]}, "field 'model_type' must be text"),
])
def test_wrong_types_in_config_json_name_the_field(tmp_path, change, words):
    folder = hf_folder(tmp_path, {**LLAMA_CONFIG, **change})
    with pytest.raises(CorruptFileError) as info:
        read_hf_config(folder)
    assert str(folder / "config.json") in str(info.value) and words in str(info.value)


def test_deeply_nested_config_json_is_our_error(tmp_path):
    folder = hf_folder(tmp_path, '{"model_type": "llama", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(CorruptFileError, match="JSON nested 200001 levels deep, more than the 64 allowed"):
        read_hf_config(folder)


config_values = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=10) \
    | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(LLAMA_CONFIG) + ["num_key_value_heads", "head_dim", "rope_theta",
                                                                 "rope_scaling", "sliding_window",
                                                                 "tie_word_embeddings", "n_embd"]),
                       config_values, max_size=6))
def test_any_config_json_ends_in_a_config_or_our_error(tmp_path, change):
    folder = hf_folder(tmp_path, {**LLAMA_CONFIG, **change})
    try:
        read_hf_config(folder)
    except ModelLoadError as exc:
        assert str(folder) in str(exc)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors"])
def test_shard_index_cannot_name_files_outside_the_folder(tmp_path, shard):
    folder = hf_folder(tmp_path, LLAMA_CONFIG)
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(tmp_path / "outside.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(CorruptFileError, match="outside the model folder"):
        safetensors_files(folder)


def test_shard_in_a_subfolder_is_allowed(tmp_path):
    folder = hf_folder(tmp_path, LLAMA_CONFIG)
    (folder / "sub").mkdir()
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(folder / "sub" / "a.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "sub/a.safetensors"}}))
    assert safetensors_files(folder) == [folder / "sub" / "a.safetensors"]


@pytest.mark.parametrize("index", ['{"weight_map": [1]}', '{"weight_map": {"w": 5}}', "[" * 10_000])
def test_malformed_shard_index_is_our_error(tmp_path, index):
    folder = hf_folder(tmp_path, LLAMA_CONFIG)
    (folder / "model.safetensors.index.json").write_text(index)
    with pytest.raises(CorruptFileError, match="model.safetensors.index.json"):
        safetensors_files(folder)


# ---------------------------------------------------------------------- safetensors headers

def llama_tensors() -> dict[str, np.ndarray]:
    d, f, v = LLAMA_CONFIG["hidden_size"], LLAMA_CONFIG["intermediate_size"], LLAMA_CONFIG["vocab_size"]
    rng = np.random.default_rng(0)
    shapes = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,), "lm_head.weight": (v, d)}
    for i in range(LLAMA_CONFIG["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                       p + "self_attn.q_proj.weight": (d, d), p + "self_attn.k_proj.weight": (d, d),
                       p + "self_attn.v_proj.weight": (d, d), p + "self_attn.o_proj.weight": (d, d),
                       p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                       p + "mlp.down_proj.weight": (d, f)})
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.fixture(scope="module")
def tiny_safetensors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    save_file(llama_tensors(), str(folder / "model.safetensors"))
    data = (folder / "model.safetensors").read_bytes()
    header_len = 8 + struct.unpack("<Q", data[:8])[0]
    return data, header_len


def test_tiny_safetensors_folder_loads(tmp_path, tiny_safetensors):
    folder = hf_folder(tmp_path, LLAMA_CONFIG)
    (folder / "model.safetensors").write_bytes(tiny_safetensors[0])
    config, state = load_hf_folder(folder)
    assert config.n_layers == 2 and state["tok_embeddings.weight"].shape == (100, 64)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_safetensors_headers_end_in_our_error(tmp_path, tiny_safetensors, data):
    original, header_len = tiny_safetensors
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, header_len - 1))
        raw[at] = data.draw(st.sampled_from(b'0123456789",:{}[]FIBU \x00\xff'))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    folder = hf_folder(tmp_path, LLAMA_CONFIG)
    (folder / "model.safetensors").write_bytes(bytes(raw))
    try:
        load_hf_folder(folder)
    except ModelLoadError as exc:
        assert str(folder) in str(exc)


# ---------------------------------------------------------------------- tokenizer side files

@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> bytes:
    from chatapp.training.scratch import save_tokenizer
    from tests.helpers.tiny_hf import tiny_tokenizer

    folder = save_tokenizer(tiny_tokenizer(), tmp_path_factory.mktemp("tok"))
    return (folder / "tokenizer.json").read_bytes()


side_values = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12) \
    | st.lists(st.integers(-5, 400) | st.text(max_size=5) | st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
               max_size=3) \
    | st.dictionaries(st.sampled_from(["content", "name", "template", "lstrip"]), st.text(max_size=8) | st.integers(),
                      max_size=3)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["bos_token", "eos_token", "add_bos_token", "add_eos_token", "chat_template"]),
                       side_values, max_size=5),
       st.dictionaries(st.sampled_from(["bos_token_id", "eos_token_id", "do_sample", "temperature", "top_k"]),
                       side_values, max_size=4))
def test_any_tokenizer_side_files_end_in_a_tokenizer_or_our_error(tmp_path, tokenizer_json, config, generation):
    from chatapp.text.tokenizer import Tokenizer

    folder = tmp_path / "tok"
    folder.mkdir(exist_ok=True)
    (folder / "tokenizer.json").write_bytes(tokenizer_json)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "generation_config.json").write_text(json.dumps(generation))
    try:
        tok = Tokenizer.from_hf_folder(folder)
    except ModelLoadError as exc:
        assert str(folder) in str(exc)
    else:
        assert tok.decode(tok.encode("hello there")) == "hello there"


def test_fifo_tokenizer_config_does_not_hang(tmp_path, tokenizer_json):
    import os
    if not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs are POSIX-only")
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(tokenizer_json)
    os.mkfifo(folder / "tokenizer_config.json")
    result = run_bounded(f"""
        from chatapp.errors import ModelLoadError
        from chatapp.text.tokenizer import Tokenizer
        try:
            Tokenizer.from_hf_folder({str(folder)!r})
            report(error=None)
        except ModelLoadError as exc:
            report(error=str(exc))
    """, timeout=60)
    assert result["error"] is None  # a side file that is not a regular file is passed over, never opened


def test_sizes_past_any_model_are_a_config_error_before_anything_is_built():
    """A header naming a 1.5e9-wide model once overflowed torch's storage size while its tensor
    shapes were checked (a raw RuntimeError): the config refuses such sizes itself."""
    from chatapp.model.config import ConfigError, ModelConfig

    with pytest.raises(ConfigError, match="more than any model this app can run"):
        ModelConfig(arch="llama", vocab_size=32, dim=1_526_726_912, n_layers=2, n_heads=4,
                    intermediate_size=256, max_seq_len=64)
    assert ModelConfig(arch="llama", vocab_size=32, dim=64, n_layers=2, n_heads=4, intermediate_size=256,
                       max_seq_len=64).n_params < 10**6
