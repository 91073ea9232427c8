"""int4 weights in torch's int4 kernel layout (chatapp/model/int4_rows.py): the codes kept bit for
bit, the bfloat16 scale and zero the only change, per-layer error against the Q4_1 float product,
bytes held, the conversion in place, gradients, a tied vocabulary, the compiled step calling the
kernel, and the switch back to Q4_1."""

from __future__ import annotations

import pytest
import torch

from chatapp.model import int4_rows
from chatapp.model.quant import (QuantEmbedding, QuantizedTensor, QuantLinear, compact_products,
                                 tensor_bytes, use_int4_rows)
from tests.helpers.compact import (activations, assert_compiled_matches_eager, assert_gradients_match_float,
                                  rel_err, tiny_compact)

pytestmark = pytest.mark.skipif(not int4_rows.available(), reason="torch's int4 kernel does not run here")


def layer(out_f: int = 176, in_f: int = 256, seed: int = 0) -> QuantLinear:
    """An int4 (Q4_1) layer; 176 outputs: two full blocks of the kernel's 64 rows and a tail of 48."""
    g = torch.Generator().manual_seed(seed)
    return QuantLinear(QuantizedTensor.from_float(torch.randn(out_f, in_f, generator=g) * 0.02 + 0.003, "int4"),
                       torch.randn(out_f, generator=g) * 0.1)


def test_the_codes_stay_bit_for_bit_and_only_the_scale_and_zero_round_to_bfloat16():
    lin = layer()
    q41 = lin.quantized
    codes = int4_rows.q4_1_codes(q41.qweight)  # (out, in) 0..15
    d, m = q41.scales.float(), q41.mins.float()  # (out, G)
    want = q41.dequantize()  # (out, in) the file's numbers, d q + m
    lin.to_packed4()
    assert lin.packed4 and lin.mins is None and lin.qweight.dtype == torch.uint8 and lin.qweight.shape == (176, 128)
    assert lin.scales.dtype == torch.bfloat16 and lin.scales.shape == (256 // 32, 176, 2)
    assert torch.equal(int4_rows.unpack(lin.qweight, 0, 176).to(torch.int32), codes)
    scale, zero = lin.scales[..., 0].float().t(), lin.scales[..., 1].float().t()  # (out, G)
    torch.testing.assert_close(scale, d.to(torch.bfloat16).float(), rtol=0, atol=0)  # the nearest bfloat16
    torch.testing.assert_close(zero, (m + 8 * d).to(torch.bfloat16).float(), rtol=0, atol=0)
    # each weight moves by at most the rounding of its scale (times |q - 8|) and of its zero
    bound = ((codes.float() - 8).abs().view(176, -1, 32) * (d * 2 ** -8)[..., None]
             + ((m + 8 * d).abs() * 2 ** -8)[..., None]).view(176, 256)
    assert ((lin.dequantize() - want).abs() <= bound + 1e-9).all()
    assert (lin.dequantize() != want).any()  # a real rounding, measured here rather than assumed away
    # any row range and any rows by index read the same numbers
    whole = lin.dequantize()
    for start, stop in [(0, 10), (60, 70), (100, 176), (150, 176), (0, 176)]:
        assert torch.equal(lin.row_dequantizer()(start, stop), whole[start:stop])
    index = torch.tensor([0, 5, 63, 64, 127, 128, 175, 33])
    assert torch.equal(int4_rows.dequantize_at(lin.qweight, lin.scales, index), whole[index])


@pytest.mark.parametrize("rows", [1, 2, int4_rows.ROWS_KERNEL, 37])
def test_a_packed_layer_stays_within_half_a_percent_of_the_q4_1_float_product(rows):
    lin = layer()
    x = activations(rows)
    want = torch.nn.functional.linear(x, lin.dequantize(), lin.bias)  # the Q4_1 weight in float32
    lin.to_packed4()
    own = torch.nn.functional.linear(x, lin.dequantize(), lin.bias)  # the packed weight in float32
    got = lin(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    # bfloat16 rows and outputs in the kernel (8-bit mantissa); float32 blocks past ROWS_KERNEL rows
    assert rel_err(got, own) < (5e-3 if rows <= int4_rows.ROWS_KERNEL else 1e-6)
    assert rel_err(got, want) < 6e-3  # the scale/zero rounding adds ~0.1-0.2% on top


def test_the_kernel_is_what_a_few_rows_run(monkeypatch):
    lin = layer()
    lin.to_packed4()
    calls = []
    real = torch._weight_int4pack_mm_for_cpu
    monkeypatch.setattr(torch, "_weight_int4pack_mm_for_cpu", lambda *a: calls.append(a[0].shape) or real(*a))
    lin(activations(1))
    lin(activations(int4_rows.ROWS_KERNEL))
    lin(activations(int4_rows.ROWS_KERNEL + 1))
    assert calls == [(1, 256), (int4_rows.ROWS_KERNEL, 256)]


def test_packing_holds_q4_1s_bytes_in_place_and_refuses_twice():
    lin = layer(96, 128)
    q41_bytes = tensor_bytes(lin)  # 20 bytes a 32 weights + float bias
    address = lin.qweight.data_ptr()
    lin.to_packed4()
    assert lin.qweight.data_ptr() == address  # the codes rewritten where the Q4_1 codes were
    assert tensor_bytes(lin) == 96 * 128 // 2 + 96 * (128 // 32) * 2 * 2 + 96 * 4  # codes, scale+zero, bias
    assert tensor_bytes(lin) == q41_bytes
    with pytest.raises(ValueError, match="Q4_1"):
        lin.to_packed4()
    with pytest.raises(ValueError, match="no GGUF form"):
        lin.quantized


def test_gradients_flow_through_a_packed_layer_as_through_its_float_weight():
    lin = layer()
    lin.to_packed4()
    assert_gradients_match_float(lin)


def tiny(tie: bool):
    return tiny_compact("int4", tie, compact_vocabulary=True)  # a 4-bit vocabulary, as some files hold


@pytest.mark.parametrize("tie", [True, False])
def test_a_model_converts_whole_and_holds_a_tied_vocabulary_once(tie, monkeypatch):
    reference, model = tiny(tie)
    tokens = torch.tensor([[1, 5, 9, 2, 70, 95]])
    with torch.no_grad():
        before = model(tokens)
    monkeypatch.setenv("CHATAPP_INT4_PACK", "0")
    assert use_int4_rows(model) == 0
    assert not any(getattr(m, "packed4", False) for m in model.modules())
    monkeypatch.delenv("CHATAPP_INT4_PACK")
    q41_bytes = tensor_bytes(model)
    # 7 matrices a layer and the lm_head; an untied embedding keeps Q4_1 (no product reads it)
    assert use_int4_rows(model) == 2 * 7 + 1
    assert all(m.packed4 for m in model.modules() if isinstance(m, QuantLinear))
    assert model.tok_embeddings.packed4 == tie
    if tie:
        assert model.lm_head.qweight is model.tok_embeddings.qweight
    assert tensor_bytes(model) == q41_bytes
    with torch.no_grad():
        after = model(tokens)  # six rows: float32 blocks of the packed numbers
        want = reference(tokens)
    assert rel_err(after, before) < 0.01  # the bfloat16 scales and zeros, nothing else
    assert rel_err(after, want) < 0.5 and rel_err(before, want) < 0.5  # a random tiny model in 4 bits
    # decode: one row at a time through the kernel, with a KV cache
    model.setup_cache(1, 8)
    with torch.no_grad():
        model(tokens[:, :5], torch.arange(5))
        step = model(tokens[:, 5:], torch.tensor([5]))
    assert rel_err(step[0, -1], after[0, -1]) < 0.01


def test_a_layer_the_kernel_cannot_pack_keeps_q4_1():
    _, model = tiny(tie=False)
    odd = QuantLinear(QuantizedTensor.from_float(torch.randn(40, 64) * 0.02, "int4"))  # 40 outputs: not 16k
    model.layers[0].attn.q_proj = odd
    use_int4_rows(model)
    assert not odd.packed4 and odd.mins is not None
    assert model.layers[0].attn.k_proj.packed4


def test_bench_reports_the_int4_kernel():
    _, model = tiny(tie=True)
    use_int4_rows(model)
    assert compact_products(model) == "int4-kernel"


def test_the_compiled_step_calls_the_kernel():
    lin = layer()
    lin.to_packed4()
    assert_compiled_matches_eager(lin)


def test_the_traced_step_keeps_the_kernel_an_external_call():
    """dynamo's graph (its eager backend: no compiler needed) holds the kernel itself, one node,
    and the embedding's packed lookup traces too."""
    import torch._dynamo

    _, model = tiny(tie=True)
    use_int4_rows(model)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    fn = torch.compile(lambda t: model.lm_head(model.tok_embeddings(t)), backend=backend, fullgraph=True)
    with torch.inference_mode():
        got = fn(torch.tensor([[3]]))
        want = model.lm_head(model.tok_embeddings(torch.tensor([[3]])))
    torch.testing.assert_close(got, want)
    targets = [str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"]
    assert sum("_weight_int4pack_mm_for_cpu" in t for t in targets) == 1


def test_lora_on_a_packed_base_trains_and_matches_its_float_weights():
    """An adapter on packed int4 layers: the base stays packed, gradients reach A and B only, and
    the outputs and gradients are a float32 base's holding the packed numbers."""
    from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
    from chatapp.model.transformer import Transformer
    from chatapp.weights.build import build_model

    _, model = tiny(tie=True)
    use_int4_rows(model)
    float_model = build_model(model.config, {k: v.clone() for k, v in Transformer(model.config).state_dict().items()})
    with torch.no_grad():  # the float twin holds the packed weights' numbers
        for name, module in model.named_modules():
            if isinstance(module, QuantLinear):
                float_model.get_submodule(name).weight.copy_(module.dequantize())
            elif isinstance(module, QuantEmbedding):
                float_model.get_submodule(name).weight.copy_(
                    int4_rows.dequantize(module.qweight, module.scales) if module.packed4
                    else module.quantized.dequantize())
        for name, p in model.named_parameters():
            float_model.get_parameter(name).copy_(p)
    config = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"])
    for m in (model, float_model):
        torch.manual_seed(3)
        apply_lora(m, config)
        for _, lora in lora_layers(m):
            torch.nn.init.normal_(lora.lora_B, std=0.02)
    assert all(layer.base_layer.packed4 for _, layer in lora_layers(model))
    tokens = torch.tensor([[1, 5, 9, 2, 70, 95, 4, 8]])
    losses = []
    for m in (model, float_model):
        m.train()
        loss = m(tokens)[0, :-1].log_softmax(-1).gather(-1, tokens[0, 1:, None]).mean().neg()
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-5)
    for (name, a), (_, b) in zip(lora_layers(model), lora_layers(float_model)):
        torch.testing.assert_close(a.lora_A.grad, b.lora_A.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(a.lora_B.grad, b.lora_B.grad, rtol=1e-4, atol=1e-6)
    assert all(not b.requires_grad for n, b in model.named_buffers())
