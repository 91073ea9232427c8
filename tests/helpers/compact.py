"""Shared pieces of the compact-weight tests (int8 rows, int4 kernel layout): decoder-like
activations, relative error, a tiny quantized model beside its float32 reference, and the check
that gradients flow through a converted layer as through its float weight."""

from __future__ import annotations

import torch

from chatapp.model.config import ModelConfig
from chatapp.model.quant import QuantizedTensor, QuantLinear, quantize_state
from chatapp.model.transformer import Transformer
from chatapp.weights.build import build_model


def activations(rows: int, in_f: int = 256, seed: int = 1) -> torch.Tensor:
    """Rows like a decoder's: most entries small, two channels 60x larger (outliers)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, in_f, generator=g)
    x[:, 7] *= 60
    x[:, 100] *= -60
    return x


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm()).item()


def tiny_compact(kind: str, tie: bool, compact_vocabulary: bool = False) -> tuple[Transformer, torch.nn.Module]:
    """(float32 reference, the same model with its matrices quantized to `kind`); with
    `compact_vocabulary` the embedding / lm_head are quantized to `kind` too, as some files hold."""
    config = ModelConfig(arch="llama", vocab_size=96, dim=64, n_layers=2, n_heads=4, n_kv_heads=2,
                         intermediate_size=128, max_seq_len=64, tie_embeddings=tie)
    torch.manual_seed(0)
    reference = Transformer(config).eval()
    state = quantize_state({k: v.clone() for k, v in reference.state_dict().items()}, kind)
    if compact_vocabulary:
        for name in ("tok_embeddings.weight", "lm_head.weight"):
            if name in state:
                state[name] = QuantizedTensor.from_float(reference.state_dict()[name], kind)
    return reference, build_model(config, state)


def assert_gradients_match_float(lin: QuantLinear) -> None:
    """The input's gradient through the (converted) layer equals the one through its float weight."""
    x = activations(1, lin.in_features).requires_grad_(True)
    lin(x).square().sum().backward()
    x2 = activations(1, lin.in_features).requires_grad_(True)
    torch.nn.functional.linear(x2, lin.dequantize(), lin.bias).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)


def assert_compiled_matches_eager(lin: QuantLinear) -> None:
    """One row through the (converted) layer inside torch.compile equals the eager product (the
    compiled decode step calls the same kernel); skipped where torch.compile has no C++ compiler."""
    import pytest

    from chatapp.model.quant_products import compiler_available

    if not compiler_available():
        pytest.skip("no working C++ compiler for torch.compile")
    x = activations(1, lin.in_features)
    fn = torch.compile(lambda t: lin(t * 1.0), fullgraph=True, dynamic=False)
    with torch.inference_mode():
        torch.testing.assert_close(fn(x), lin(x), rtol=1e-2, atol=1e-3)
