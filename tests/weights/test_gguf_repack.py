"""GGUF tensors kept compact (chatapp/weights/gguf_repack.py, load_gguf(..., compact=...))."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

from chatapp.model.quant import QuantizedTensor, QuantLinear, tensor_bytes
from chatapp.weights.build import build_model
from chatapp.weights.gguf_loader import load_gguf
from chatapp.weights.gguf_repack import target_kind
from gguf_writing import TINY, dequantized, in_file_order, llama_metadata, our, tiny_llama_tensors, write_gguf


@pytest.mark.parametrize("qtype, kind", [(Q.Q8_0, "int8"), (Q.Q4_0, "int4"), (Q.Q4_1, "int4")],
                         ids=lambda x: getattr(x, "name", x))
def test_matching_types_are_repacked_bit_for_bit(tmp_path, qtype, kind):
    tensors = tiny_llama_tensors(np.random.default_rng(1), qtype)
    path = write_gguf(tmp_path / "t.gguf", tensors, llama_metadata())
    _config, state = load_gguf(path, compact=kind)
    for gname, (array, stored) in tensors.items():
        got = state[our(gname)]
        if array.ndim == 1 or stored == Q.F32:
            continue
        assert isinstance(got, QuantizedTensor) and got.kind == kind, gname
        # the file's own bytes; Q4_0 has no min of its own (18 bytes per 32 weights, ours 20)
        assert got.nbytes == array.nbytes * (20 / 18 if qtype == Q.Q4_0 else 1)
        want = dequantized(array, stored)
        assert np.array_equal(in_file_order(gname, got.dequantize().numpy()), want), gname


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.F16], ids=lambda q: q.name)
@pytest.mark.parametrize("option", ["int8", "int4"])
def test_other_types_are_requantized_tensor_by_tensor(tmp_path, qtype, option):
    tensors = tiny_llama_tensors(np.random.default_rng(2), qtype)
    path = write_gguf(tmp_path / "t.gguf", tensors, llama_metadata())
    _config, state = load_gguf(path, compact=option)
    gname = "blk.1.ffn_down.weight"
    got = state[our(gname)]
    assert got.kind == target_kind(qtype, option, our(gname))
    want = dequantized(*tensors[gname])
    groups = want.reshape(want.shape[0], -1, 32)
    absmax = np.abs(groups).max(-1)  # (rows, G)
    step = absmax / 127 if got.kind == "int8" else (groups.max(-1) - groups.min(-1)) / 15
    error = np.abs(got.dequantize().numpy() - want).reshape(groups.shape).max(-1)
    assert (error <= step * 0.5 + absmax * 2e-3 + 1e-7).all()  # half a step + float16 scales


def test_target_kinds():
    assert target_kind(Q.Q8_0, "int4", "layers.0.mlp.up_proj.weight") == "int8"  # keeps its 8 bits
    assert target_kind(Q.Q6_K, "int4", "layers.0.mlp.up_proj.weight") == "int8"
    assert target_kind(Q.Q4_K, "int8", "layers.0.mlp.up_proj.weight") == "int8"
    assert target_kind(Q.F16, "int4", "layers.0.mlp.up_proj.weight") == "int4"
    assert target_kind(Q.F16, "int4", "tok_embeddings.weight") == "int8"  # the vocabulary stays 8-bit
    assert target_kind(Q.Q4_1, "int4", "tok_embeddings.weight") == "int4"


@pytest.mark.parametrize("tied", [True, False])
def test_compact_model_from_gguf_matches_the_float_model(tmp_path, tied):
    """q/k permutation undone on every part; the tied projection shares the embedding."""
    tensors = tiny_llama_tensors(np.random.default_rng(3), Q.Q4_1, tied=tied)
    path = write_gguf(tmp_path / "t.gguf", tensors, llama_metadata())
    config, state = load_gguf(path)
    reference = build_model(config, state)
    config, compact = load_gguf(path, compact="int4")
    model = build_model(config, compact)
    assert isinstance(model.layers[0].attn.q_proj, QuantLinear)
    torch.testing.assert_close(model.layers[0].attn.q_proj.dequantize(), reference.layers[0].attn.q_proj.weight,
                               rtol=0, atol=0)
    tokens = torch.randint(0, TINY["vocab"], (1, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), reference(tokens), rtol=1e-4, atol=1e-4)
    assert tensor_bytes(model) < tensor_bytes(reference) / 4
