"""GGUF loading: tiny files written with gguf.GGUFWriter (see gguf_writing.py), then the real
default model against transformers' own GGUF loader."""

from __future__ import annotations

import logging
import time

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

from chatapp.errors import (CorruptFileError, MissingFileError, ShapeMismatchError,
                            UnsupportedArchitectureError, UnsupportedQuantizationError)
from chatapp.model import Transformer
from chatapp.model.layers import rope_inv_freq
from chatapp.weights.build import build_model
from chatapp.weights.hf_names import our_name as hf_our_name
from chatapp.weights.gguf_loader import (gguf_config, load_gguf, load_gguf_state_dict, open_gguf,
                                         undo_rope_permutation)
from gguf_writing import (SUPPORTED, TINY, dequantized, hf_model, hf_to_gguf, in_file_order, llama3_divisors,
                          llama_cpp_permute, llama_metadata, our, tiny_llama_tensors, write_gguf)

log = logging.getLogger(__name__)

# -- metadata and values ----------------------------------------------------------------------

def test_config_comes_from_metadata_and_tensor_table(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_llama_tensors(np.random.default_rng(0), tied=True),
                      llama_metadata(**{"llama.rope.freq_base": 500000.0}))
    config = gguf_config(open_gguf(path), path)
    assert (config.arch, config.vocab_size, config.dim, config.n_layers) == ("llama", 32, 256, 2)
    assert (config.n_heads, config.n_kv_heads, config.head_dim, config.intermediate_size) == (4, 2, 64, 256)
    assert (config.max_seq_len, config.rope_theta, config.norm_eps) == (64, 500000.0, pytest.approx(1e-5))
    assert config.tie_embeddings and not config.qkv_bias and config.rope_scaling is None
    assert config.name == "tiny test model"


@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda q: q.name)
def test_every_supported_type_loads_as_an_independent_dequantization(tmp_path, qtype):
    rng = np.random.default_rng(1)
    tensors = tiny_llama_tensors(rng, qtype)
    path = write_gguf(tmp_path / f"tiny.{qtype.name}.gguf", tensors, llama_metadata())
    progress = []
    config, state = load_gguf(path, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(tensors), len(tensors))
    for gname, (array, stored_type) in tensors.items():
        got, want = state[our(gname)], dequantized(array, stored_type)
        assert got.dtype == torch.float32 and got.shape == want.shape, gname
        assert np.array_equal(in_file_order(gname, got.numpy()), want), gname
    Transformer(config).load_state_dict(state, strict=True)


@pytest.mark.parametrize("qtype, tolerance", [(Q.F32, 0.0), (Q.F16, 1e-3), (Q.BF16, 4e-3), (Q.Q8_0, 5e-3),
                                              (Q.Q4_1, 0.07), (Q.Q4_0, 0.13)], ids=lambda x: getattr(x, "name", ""))
def test_quantized_round_trip_stays_close_to_the_original(tmp_path, qtype, tolerance):
    """Values in [-1, 1]: the error stays within about half a quantization step (a step for Q4_0)."""
    original = np.random.default_rng(2).uniform(-1, 1, size=(TINY["ffn"], TINY["dim"])).astype(np.float32)
    tensors = tiny_llama_tensors(np.random.default_rng(3))
    tensors["blk.0.ffn_up.weight"] = (gguf.quants.quantize(original, qtype), qtype)
    _, state = load_gguf(write_gguf(tmp_path / "rt.gguf", tensors, llama_metadata()))
    error = (state["layers.0.mlp.up_proj.weight"] - torch.from_numpy(original)).abs().max().item()
    assert error <= tolerance
    if qtype != Q.F32:
        assert error > 0  # the tensor really went through the quantizer


def test_dtype_is_applied_per_tensor(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_llama_tensors(np.random.default_rng(4)), llama_metadata())
    reader = open_gguf(path)
    config = gguf_config(reader, path)
    full = load_gguf_state_dict(reader, config, path)
    half = load_gguf_state_dict(reader, config, path, dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in half.values())
    assert torch.equal(half["layers.1.attn.k_proj.weight"], full["layers.1.attn.k_proj.weight"].bfloat16())


# -- llama.cpp's q/k permutation ---------------------------------------------------------------

def test_permuted_q_and_k_come_back_in_hugging_face_order(tmp_path):
    rng = np.random.default_rng(5)
    tensors = tiny_llama_tensors(rng)
    kv = TINY["kv_heads"] * TINY["dim"] // TINY["heads"]
    hf_q = np.arange(TINY["dim"] * TINY["dim"], dtype=np.float32).reshape(TINY["dim"], TINY["dim"])
    hf_k = rng.standard_normal((kv, TINY["dim"])).astype(np.float32)
    tensors["blk.1.attn_q.weight"] = (llama_cpp_permute(hf_q, TINY["heads"]), Q.F32)
    tensors["blk.1.attn_k.weight"] = (llama_cpp_permute(hf_k, TINY["kv_heads"]), Q.F32)
    _, state = load_gguf(write_gguf(tmp_path / "perm.gguf", tensors, llama_metadata()))
    assert torch.equal(state["layers.1.attn.q_proj.weight"], torch.from_numpy(hf_q))
    assert torch.equal(state["layers.1.attn.k_proj.weight"], torch.from_numpy(hf_k))
    assert not np.array_equal(llama_cpp_permute(hf_q, TINY["heads"]), hf_q)  # the test means something


def test_undo_rope_permutation_inverts_biases_too():
    bias = np.arange(24, dtype=np.float32)  # 3 heads of 8
    assert torch.equal(undo_rope_permutation(torch.from_numpy(llama_cpp_permute(bias, 3)), 3),
                       torch.from_numpy(bias))


def test_qwen2_is_not_permuted_and_has_qkv_bias(tmp_path):
    tensors = tiny_llama_tensors(np.random.default_rng(6), biases=True)
    path = write_gguf(tmp_path / "qwen.gguf", tensors, llama_metadata("qwen2"), arch="qwen2")
    config, state = load_gguf(path)
    assert config.arch == "qwen2" and config.qkv_bias and not config.o_bias
    stored_q, _ = tensors["blk.0.attn_q.weight"]
    assert torch.equal(state["layers.0.attn.q_proj.weight"], torch.from_numpy(stored_q))  # taken as is
    assert torch.equal(state["layers.0.attn.k_proj.bias"], torch.from_numpy(tensors["blk.0.attn_k.bias"][0]))


def test_mistral_uses_the_llama_layout_and_its_sliding_window(tmp_path):
    tensors = tiny_llama_tensors(np.random.default_rng(18))
    meta = llama_metadata("mistral", **{"mistral.attention.sliding_window": 16})
    config, state = load_gguf(write_gguf(tmp_path / "mistral.gguf", tensors, meta, arch="mistral"))
    assert (config.arch, config.sliding_window) == ("mistral", 16)
    stored_q, _ = tensors["blk.0.attn_q.weight"]
    assert np.array_equal(llama_cpp_permute(state["layers.0.attn.q_proj.weight"].numpy(), TINY["heads"]), stored_q)


@pytest.mark.parametrize("scaling, expected", [
    ({"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": 4.0}, ("linear", 4.0)),
    ({"llama.rope.scale_linear": 2.0}, ("linear", 2.0)),
    ({"llama.rope.scaling.type": "none", "llama.rope.scaling.factor": 4.0}, None),
    ({"llama.rope.scaling.type": "yarn", "llama.rope.scaling.factor": 4.0}, UnsupportedArchitectureError),
], ids=["linear", "legacy-linear", "none", "yarn"])
def test_rope_scaling_metadata(tmp_path, scaling, expected):
    path = write_gguf(tmp_path / "rope.gguf", tiny_llama_tensors(np.random.default_rng(19)), llama_metadata(**scaling))
    if expected is UnsupportedArchitectureError:
        with pytest.raises(UnsupportedArchitectureError, match="yarn") as info:
            gguf_config(open_gguf(path), path)
        assert "rope.gguf" in str(info.value)
        return
    scaling = gguf_config(open_gguf(path), path).rope_scaling
    assert (scaling and (scaling.kind, scaling.factor)) == expected


# -- tiny Hugging Face models written the way llama.cpp converts them ---------------------------

@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_tiny_converted_model_matches_transformers(tmp_path, family):
    reference = hf_model(family)
    config, state = load_gguf(hf_to_gguf(reference, family, tmp_path / f"{family}.gguf"))
    assert config.arch == family
    ours = build_model(config, state)
    ids = torch.randint(0, 40, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(ids).logits
        got = ours(ids)
    assert (got - want).abs().max().item() < 1e-4


# -- Llama-3 RoPE scaling baked into rope_freqs.weight ----------------------------------------

def _with_rope_freqs(tmp_path, divisors):
    tensors = tiny_llama_tensors(np.random.default_rng(7))
    tensors["rope_freqs.weight"] = (divisors, Q.F32)
    return write_gguf(tmp_path / "llama3.gguf", tensors, llama_metadata(**{"llama.rope.freq_base": 500000.0}))


@pytest.mark.parametrize("params", [(8.0, 1.0, 4.0, 8192), (16.0, 2.0, 6.0, 4096)], ids=["llama3.1", "unusual"])
def test_llama3_rope_scaling_is_recovered_from_rope_freqs(tmp_path, params):
    divisors = llama3_divisors(64, 500000.0, *params)
    path = _with_rope_freqs(tmp_path, divisors)
    config, state = load_gguf(path)
    assert config.rope_scaling.kind == "llama3" and config.rope_scaling.factor == params[0]
    if params[1:] == (1.0, 4.0, 8192):
        assert (config.rope_scaling.low_freq_factor, config.rope_scaling.high_freq_factor) == (1.0, 4.0)
    base = rope_inv_freq(64, 500000.0, None)
    ours = rope_inv_freq(64, 500000.0, config.rope_scaling)
    torch.testing.assert_close(ours, base / torch.from_numpy(divisors), rtol=1e-5, atol=0)
    assert not any("rope" in name for name in state)


def test_rope_freqs_that_are_not_llama3_are_refused(tmp_path):
    divisors = np.random.default_rng(8).uniform(1.0, 3.0, size=32).astype(np.float32)
    path = _with_rope_freqs(tmp_path, divisors)
    with pytest.raises(UnsupportedArchitectureError, match="rope_freqs") as info:
        gguf_config(open_gguf(path), path)
    assert path.name in str(info.value)


# -- errors: each names the file ----------------------------------------------------------------

@pytest.fixture
def valid_gguf(tmp_path):
    tensors = tiny_llama_tensors(np.random.default_rng(9), Q.Q8_0)
    return write_gguf(tmp_path / "valid.gguf", tensors, llama_metadata())


def _load(path):
    reader = open_gguf(path)
    return load_gguf_state_dict(reader, gguf_config(reader, path), path)


@pytest.mark.parametrize("where", ["half", "near-the-end", "tensor-table", "metadata"])
def test_truncated_file_is_corrupt(valid_gguf, where):
    data = valid_gguf.read_bytes()
    header_end = open_gguf(valid_gguf).data_offset
    keep = {"half": len(data) // 2, "near-the-end": len(data) - 1000, "tensor-table": header_end - 100,
            "metadata": 100}[where]
    cut = valid_gguf.with_name("cut.gguf")
    cut.write_bytes(data[:keep])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        _load(cut)
    assert "cut.gguf" in str(info.value)


@pytest.mark.parametrize("content", [np.random.default_rng(10).bytes(4096), b"GGML" + bytes(100), b"GG"],
                         ids=["random", "wrong-magic", "tiny"])
def test_not_a_gguf_file_is_corrupt(tmp_path, content):
    path = tmp_path / "noise.gguf"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match="GGUF") as info:
        open_gguf(path)
    assert "noise.gguf" in str(info.value)


def test_corrupt_array_length_fails_fast_instead_of_looping(tmp_path):
    """gguf's reader would loop 2**40 times on empty reads past the end of the file."""
    tensors = tiny_llama_tensors(np.random.default_rng(11))
    path = write_gguf(tmp_path / "patched.gguf", tensors, llama_metadata(**{"llama.rope.freq_base": 10000.0}))
    data = bytearray(path.read_bytes())
    key = b"general.name"
    at = data.index(key) + len(key)  # then: value type u32 (STRING), length u64
    data[at:at + 4] = int(gguf.GGUFValueType.ARRAY).to_bytes(4, "little")
    data[at + 4:at + 8] = int(gguf.GGUFValueType.INT32).to_bytes(4, "little")
    data[at + 8:at + 16] = (2 ** 40).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(CorruptFileError, match="array") as info:
        open_gguf(path)
    assert time.perf_counter() - start < 5
    assert "patched.gguf" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError) as info:
        open_gguf(tmp_path / "absent.gguf")
    assert "absent.gguf" in str(info.value)


def test_unsupported_architecture_is_named(tmp_path):
    path = write_gguf(tmp_path / "bert.gguf", tiny_llama_tensors(np.random.default_rng(12)),
                      llama_metadata("bert"), arch="bert")
    with pytest.raises(UnsupportedArchitectureError) as info:
        gguf_config(open_gguf(path), path)
    message = str(info.value)
    assert "bert.gguf" in message and "'bert'" in message and "llama" in message and "qwen2" in message


@pytest.mark.parametrize("qtype", [Q.Q2_K, Q.IQ4_NL], ids=lambda q: q.name)
def test_unsupported_quantization_names_tensor_and_type(tmp_path, qtype):
    tensors = tiny_llama_tensors(np.random.default_rng(13))
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = np.random.default_rng(14).integers(0, 256, size=(TINY["ffn"], TINY["dim"] // block * size), dtype=np.uint8)
    tensors["blk.1.ffn_up.weight"] = (raw, qtype)
    path = write_gguf(tmp_path / "exotic.gguf", tensors, llama_metadata())
    with pytest.raises(UnsupportedQuantizationError) as info:
        _load(path)
    message = str(info.value)
    assert "exotic.gguf" in message and "blk.1.ffn_up.weight" in message and qtype.name in message


def test_tensor_shape_disagreeing_with_config(tmp_path):
    tensors = tiny_llama_tensors(np.random.default_rng(15))
    tensors["blk.0.ffn_down.weight"] = (np.zeros((TINY["dim"], 128), np.float32), Q.F32)
    path = write_gguf(tmp_path / "misshapen.gguf", tensors, llama_metadata())
    with pytest.raises(ShapeMismatchError) as info:
        _load(path)
    message = str(info.value)
    assert "misshapen.gguf" in message and "blk.0.ffn_down.weight" in message
    assert "[256, 128]" in message and "[256, 256]" in message


def test_missing_tensor_is_named_by_its_gguf_name(tmp_path):
    tensors = tiny_llama_tensors(np.random.default_rng(16))
    del tensors["blk.1.attn_v.weight"]
    path = write_gguf(tmp_path / "incomplete.gguf", tensors, llama_metadata())
    with pytest.raises(ShapeMismatchError, match="blk.1.attn_v.weight") as info:
        _load(path)
    assert "incomplete.gguf" in str(info.value)


def test_missing_metadata_key_is_named(tmp_path):
    meta = llama_metadata()
    del meta["llama.block_count"]
    path = write_gguf(tmp_path / "nometa.gguf", tiny_llama_tensors(np.random.default_rng(17)), meta)
    with pytest.raises(CorruptFileError, match="llama.block_count") as info:
        gguf_config(open_gguf(path), path)
    assert "nometa.gguf" in str(info.value)


# -- the real default model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_gguf(default_gguf_path):
    return default_gguf_path  # tests/conftest.py: one lookup for the whole session


@pytest.fixture(scope="module")
def default_loaded(default_gguf):
    start = time.perf_counter()
    reader = open_gguf(default_gguf)
    config = gguf_config(reader, default_gguf)
    state = load_gguf_state_dict(reader, config, default_gguf)
    elapsed = time.perf_counter() - start
    log.info("our load of %s: %.2f s", default_gguf.name, elapsed)
    return config, state


@pytest.fixture(scope="module")
def default_reference(hf_default_model):
    return hf_default_model  # tests/conftest.py loads transformers' reference once per session


@pytest.mark.slow
def test_default_model_config(default_loaded):
    config, _ = default_loaded
    assert (config.arch, config.n_layers, config.dim, config.n_heads, config.n_kv_heads) == ("llama", 30, 576, 9, 3)
    assert (config.vocab_size, config.head_dim, config.intermediate_size) == (49152, 64, 1536)
    assert config.tie_embeddings and config.rope_theta == 100000.0 and config.max_seq_len == 8192


@pytest.mark.slow
def test_default_model_fits_the_transformer_strictly(default_loaded):
    config, state = default_loaded
    assert "lm_head.weight" not in state  # tied: the model shares tok_embeddings.weight
    model = Transformer(config)
    model.load_state_dict({**state, "lm_head.weight": state["tok_embeddings.weight"]}, strict=True)
    assert model.lm_head.weight is model.tok_embeddings.weight


@pytest.mark.slow
def test_default_model_weights_and_logits_match_transformers(default_loaded, default_reference):
    config, state = default_loaded
    compared = 0
    for hf_name, reference in default_reference.state_dict().items():
        name = hf_our_name(hf_name, "llama")
        if name and name in state:  # every weight, q/k un-permuted exactly as transformers does
            assert torch.equal(state[name], reference), name
            compared += 1
    assert compared == len(state) == 272
    ours = build_model(config, dict(state))
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.tensor([[1, 9690, 198, 2683, 314]]),
               torch.randint(0, config.vocab_size, (1, 48), generator=generator),
               torch.randint(0, config.vocab_size, (2, 16), generator=generator)]
    with torch.no_grad():
        for ids in prompts:
            diff = (ours(ids) - default_reference(ids).logits).abs().max().item()
            assert diff <= 1e-4, (ids.shape, diff)
        mine = theirs = prompts[0]
        for _ in range(8):  # greedy continuations, token for token
            mine = torch.cat([mine, ours(mine)[:, -1:].argmax(-1)], dim=1)
            theirs = torch.cat([theirs, default_reference(theirs).logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(mine, theirs)
