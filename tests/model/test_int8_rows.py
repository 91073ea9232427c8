"""int8 weights with a scale per row for torch's int8 kernel (chatapp/model/int8_rows.py): error
against float32 per layer, the requantization, the tied vocabulary held once, bytes held,
gradients, the compiled step calling the kernel, and the switch back to Q8_0."""

from __future__ import annotations

import pytest
import torch

from chatapp.model import int8_rows
from chatapp.model.quant import QuantEmbedding, QuantizedTensor, QuantLinear, tensor_bytes, use_int8_rows
from tests.helpers.compact import (activations, assert_compiled_matches_eager, assert_gradients_match_float,
                                  rel_err, tiny_compact)

pytestmark = pytest.mark.skipif(not int8_rows.available(), reason="torch's int8 kernel does not run here")


def layer(out_f: int = 384, in_f: int = 256, seed: int = 0) -> QuantLinear:
    g = torch.Generator().manual_seed(seed)
    return QuantLinear(QuantizedTensor.from_float(torch.randn(out_f, in_f, generator=g) * 0.02, "int8"),
                       torch.randn(out_f, generator=g) * 0.1)


def test_requantized_rows_stay_within_half_a_step_and_use_their_whole_range():
    lin = layer()
    q8 = lin.dequantize()  # (out, in) the Q8_0 weight
    lin.to_rowwise()
    assert lin.qweight.dtype == torch.int8 and lin.qweight.shape == (384, 256)
    assert lin.scales.dtype == torch.bfloat16 and lin.scales.shape == (384,)
    step = lin.scales.float()[:, None]  # (out, 1)
    assert ((lin.dequantize() - q8).abs() <= step / 2 + 1e-7).all()
    # the scale is rounded up to a bfloat16, never down: no code clips, the largest is close to 127
    assert lin.qweight.abs().amax(1).min() >= 125 and lin.qweight.abs().max() <= 127


@pytest.mark.parametrize("rows", [1, 2, int8_rows.ROWS_KERNEL, 37])
def test_a_rowwise_layer_stays_within_half_a_percent_of_its_float_product(rows):
    lin = layer()
    lin.to_rowwise()
    x = activations(rows)
    want = torch.nn.functional.linear(x, lin.dequantize(), lin.bias)  # the same weight in float32
    got = lin(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    # bfloat16 rows (8-bit mantissa) in the kernel; float32 blocks past ROWS_KERNEL rows
    assert rel_err(got, want) < (5e-3 if rows <= int8_rows.ROWS_KERNEL else 1e-6)


def test_the_kernel_is_what_one_row_runs(monkeypatch):
    lin = layer()
    lin.to_rowwise()
    calls = []
    real = torch._weight_int8pack_mm
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda *a: calls.append(a[0].shape) or real(*a))
    lin(activations(1))
    lin(activations(int8_rows.ROWS_KERNEL + 1))
    assert calls == [(1, 256)]


def test_rowwise_holds_fewer_bytes_than_q8_0():
    lin = layer(96, 128)
    q8_bytes = tensor_bytes(lin)  # 34 bytes a 32 weights + float bias
    lin.to_rowwise()
    assert tensor_bytes(lin) == 96 * 128 + 2 * 96 + 96 * 4  # codes, a bfloat16 scale a row, float bias
    assert tensor_bytes(lin) < q8_bytes
    with pytest.raises(ValueError, match="Q8_0"):
        lin.to_rowwise()
    with pytest.raises(ValueError, match="no Q8_0 form"):
        lin.quantized


def test_gradients_flow_through_a_rowwise_layer_as_through_its_float_weight():
    lin = layer()
    lin.to_rowwise()
    assert_gradients_match_float(lin)


def tiny(tie: bool):
    return tiny_compact("int8", tie)


@pytest.mark.parametrize("tie", [True, False])
def test_a_model_goes_rowwise_whole_and_holds_a_tied_vocabulary_once(tie, monkeypatch):
    reference, model = tiny(tie)
    tokens = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        before = model(tokens)
    monkeypatch.setenv("CHATAPP_INT8_PACK", "0")
    assert use_int8_rows(model) == 0
    monkeypatch.delenv("CHATAPP_INT8_PACK")
    q8_bytes = tensor_bytes(model)
    assert use_int8_rows(model) == 2 * 7 + (1 if tie else 2)  # 7 matrices a layer, the vocabulary
    assert all(m.rowwise for m in model.modules() if isinstance(m, (QuantLinear, QuantEmbedding)))
    assert isinstance(model.tok_embeddings, QuantEmbedding)
    if tie:
        assert model.lm_head.qweight is model.tok_embeddings.qweight
    assert tensor_bytes(model) < q8_bytes
    with torch.no_grad():
        after = model(tokens)
        want = reference(tokens)
    assert rel_err(after, want) < 0.02 and rel_err(before, want) < 0.02
    # decode: one row at a time through the kernel, with a KV cache
    model.setup_cache(1, 8)
    with torch.no_grad():
        model(tokens[:, :3], torch.arange(3))
        step = model(tokens[:, 3:], torch.tensor([3]))
    assert rel_err(step[0, -1], want[0, -1]) < 0.02


def test_the_compiled_step_calls_the_kernel():
    lin = layer()
    lin.to_rowwise()
    assert_compiled_matches_eager(lin)


def test_the_load_rewrites_the_q8_0_codes_in_place():
    """No second copy of a weight while converting: each layer's codes land where its Q8_0 codes were."""
    _, model = tiny(tie=True)
    before = {name: m.qweight.data_ptr() for name, m in model.named_modules() if isinstance(m, QuantLinear)}
    use_int8_rows(model)
    after = {name: m.qweight.data_ptr() for name, m in model.named_modules() if isinstance(m, QuantLinear)}
    assert after == before


def test_bench_reports_the_products_a_model_really_runs():
    """`chatapp bench --json`'s compact_products: the int8 kernel once the layers are rowwise, the
    Q8_0 products before (eager or compiled, whichever quant_products has in use), None for floats."""
    from chatapp.model.quant import compact_products, products_in_use

    reference, model = tiny(tie=False)
    assert compact_products(reference) is None
    assert compact_products(model) == products_in_use()
    use_int8_rows(model)
    assert compact_products(model) == "int8-kernel"
    model.layers[0].attn.q_proj.rowwise = False  # a mixed model says both
    assert set(compact_products(model).split("+")) == {"int8-kernel", products_in_use()}
