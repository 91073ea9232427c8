"""The blocked decode product of chatapp/model/linear.py gives F.linear's results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chatapp.model import ModelConfig, Transformer
from chatapp.model import linear as linear_module
from chatapp.model.linear import (Linear, can_split, configure_fast_paths, fast_linear, onednn_available,
                                  split_linear)
from chatapp.model.lora import LoRAConfig, LoRALinear, apply_lora


def column_major(weight: torch.Tensor) -> torch.Tensor:
    return weight.t().contiguous().t()  # same (out, in) values, stride (1, out)


@pytest.fixture
def count_bmm(monkeypatch):
    calls = []
    real = torch.bmm

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "bmm", counting)
    return calls


@pytest.fixture
def count_onednn(monkeypatch):
    calls = []
    real = linear_module.onednn_linear

    def counting(x, weight, bias):
        calls.append(x.shape)
        return real(x, weight, bias)

    monkeypatch.setattr(linear_module, "onednn_linear", counting)
    return calls


needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN linear op")


@pytest.mark.parametrize("split", [2, 3, 4])
def test_one_row_product_is_bit_identical_to_f_linear(split, count_bmm):
    torch.manual_seed(0)
    weight = column_major(torch.randn(96, 40))
    x = torch.randn(1, 1, 40)
    expected = F.linear(x, weight)
    got = split_linear(x, weight, None, split)
    assert len(count_bmm) == 1 and count_bmm[0] == (split, 40, 96 // split)  # the blocked path ran
    assert got.shape == (1, 1, 96)
    assert torch.equal(got, expected)


def test_bias_is_added():
    torch.manual_seed(1)
    weight, bias = column_major(torch.randn(64, 32)), torch.randn(64)
    x = torch.randn(1, 32)
    torch.testing.assert_close(split_linear(x, weight, bias, 2), F.linear(x, weight, bias), rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["row_major", "many_rows", "uneven", "split_1"])
def test_other_products_fall_back_to_f_linear(case, count_bmm):
    torch.manual_seed(2)
    weight, x, split = column_major(torch.randn(64, 32)), torch.randn(1, 1, 32), 2
    if case == "row_major":
        weight = weight.contiguous()
    elif case == "many_rows":
        x = torch.randn(1, 5, 32)
    elif case == "uneven":
        weight, split = column_major(torch.randn(63, 32)), 2
    else:
        split = 1
    assert torch.equal(split_linear(x, weight, None, split), F.linear(x, weight))
    assert count_bmm == []


def test_can_split_needs_column_major_cpu_weight_and_even_blocks():
    weight = column_major(torch.randn(64, 32))
    assert can_split(weight, 2) and can_split(weight, 4)
    assert not can_split(weight, 1)
    assert not can_split(weight.contiguous(), 2)
    assert not can_split(column_major(torch.randn(65, 32)), 2)


def test_gradients_flow_through_the_blocked_path():
    torch.manual_seed(3)
    weight = column_major(torch.randn(16, 8)).requires_grad_()
    x = torch.randn(1, 8, requires_grad=True)
    split_linear(x, weight, None, 2).sum().backward()
    ref_w = weight.detach().clone().requires_grad_()
    ref_x = x.detach().clone().requires_grad_()
    F.linear(ref_x, ref_w).sum().backward()
    torch.testing.assert_close(weight.grad, ref_w.grad)
    torch.testing.assert_close(x.grad, ref_x.grad)


def test_lora_layer_over_a_split_linear_matches_the_plain_sum():
    torch.manual_seed(4)
    base = Linear(32, 64, bias=False)
    base.weight.data = column_major(base.weight.data)
    configure_fast_paths(base, decode_split=2, onednn=True)
    lora = LoRALinear(base, r=4, alpha=8)
    torch.nn.init.normal_(lora.lora_B)
    x = torch.randn(1, 1, 32)
    expected = F.linear(x, base.weight) + (x @ lora.lora_A.t() @ lora.lora_B.t()) * lora.scaling
    assert lora.base_layer is base  # wrapped: the base product runs with the base layer's settings
    torch.testing.assert_close(lora(x), expected, rtol=0, atol=1e-5)
    rows = torch.randn(1, 6, 32)  # a prefill: the base product may run on oneDNN
    with torch.no_grad():
        expected = F.linear(rows, base.weight) + (rows @ lora.lora_A.t() @ lora.lora_B.t()) * lora.scaling
        torch.testing.assert_close(lora(rows), expected, rtol=1e-5, atol=1e-5)
    plain = lora.to_linear()
    assert plain is base and plain.decode_split == 2 and plain.onednn


def tiny_model() -> Transformer:
    torch.manual_seed(5)
    config = ModelConfig(arch="llama", vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                         intermediate_size=48, max_seq_len=32, tie_embeddings=True)
    return Transformer(config).eval()


def decode_logits(model: Transformer, tokens: list[int]) -> torch.Tensor:
    model.setup_cache(batch_size=1, max_seq_len=32)
    steps = []
    with torch.no_grad():
        for pos, token in enumerate(tokens):
            steps.append(model(torch.tensor([[token]]), torch.tensor([pos])))
    return torch.cat(steps, dim=1)


def test_model_decode_with_blocks_equals_decode_without(count_bmm):
    tokens = [3, 17, 42, 5, 9, 60]
    model = tiny_model()
    configure_fast_paths(model, decode_split=1, onednn=False, column_major=True)
    unsplit = decode_logits(model, tokens)
    assert count_bmm == []
    configure_fast_paths(model, decode_split=2, onednn=False, column_major=True)
    split = decode_logits(model, tokens)
    assert len(count_bmm) > 0  # the projections took the blocked path
    assert torch.equal(split, unsplit)


def test_lora_model_decode_with_blocks_equals_decode_without():
    tokens = [1, 2, 3, 4]
    model = tiny_model()
    apply_lora(model, LoRAConfig(r=2, alpha=4))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    configure_fast_paths(model, decode_split=1, onednn=False, column_major=True)
    unsplit = decode_logits(model, tokens)
    configure_fast_paths(model, decode_split=2, onednn=False, column_major=True)
    assert all(m.base_layer.decode_split == 2 for m in model.modules() if isinstance(m, LoRALinear))
    torch.testing.assert_close(decode_logits(model, tokens), unsplit, rtol=0, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("layout", ["row_major", "column_major"])
@pytest.mark.parametrize("bias", [False, True])
def test_many_row_products_run_on_onednn_and_match_f_linear(layout, bias, count_onednn):
    torch.manual_seed(6)
    weight = torch.randn(96, 40)
    if layout == "column_major":
        weight = column_major(weight)
    b = torch.randn(96) if bias else None
    x = torch.randn(2, 7, 40)
    with torch.inference_mode():
        got = fast_linear(x, weight, b, split=2, onednn=True)
    assert count_onednn == [(2, 7, 40)]
    assert got.shape == (2, 7, 96)
    torch.testing.assert_close(got, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_onednn_is_not_used_outside_float32_under_autocast_or_when_off(count_onednn):
    torch.manual_seed(7)
    weight, x = column_major(torch.randn(32, 16)), torch.randn(5, 16)
    fast_linear(x.double(), weight.double(), None, onednn=True)  # not float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast_linear(x, weight, None, onednn=True).dtype == torch.bfloat16  # autocast decides
    with torch.no_grad():
        fast_linear(x, weight, None, onednn=False)  # switched off
    assert count_onednn == []
    with torch.no_grad():
        fast_linear(x, weight, None, onednn=True)
    assert len(count_onednn) == 1


@needs_onednn
@pytest.mark.parametrize("trained", ["input", "weight", "all"])
def test_backward_products_run_on_onednn_and_match_f_linear(trained, count_onednn):
    torch.manual_seed(8)
    weight, bias = torch.randn(48, 24), torch.randn(48)
    x = torch.randn(3, 6, 24)
    grad = torch.randn(6, 3, 48).transpose(0, 1)  # a non-contiguous incoming gradient
    wants = {"input": (True, False, False), "weight": (False, True, False), "all": (True, True, True)}[trained]
    ours = [t.clone().requires_grad_(w) for t, w in zip((x, weight, bias), wants)]
    ref = [t.clone().requires_grad_(w) for t, w in zip((x, weight, bias), wants)]
    out = fast_linear(*ours, onednn=True)
    out.backward(grad)
    assert len(count_onednn) == 1 + sum(wants[:2])  # forward, then one product per input/weight gradient
    expected = F.linear(*ref)
    expected.backward(grad)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for mine, theirs, wanted in zip(ours, ref, wants):
        if wanted:
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-4)
        else:
            assert mine.grad is None


def test_without_onednn_the_product_falls_back_to_f_linear(monkeypatch, count_onednn):
    monkeypatch.setattr(linear_module, "onednn_available", lambda: False)
    weight, x = torch.randn(32, 16), torch.randn(5, 16)
    with torch.no_grad():
        assert torch.equal(fast_linear(x, weight, None, onednn=True), F.linear(x, weight))
    assert count_onednn == []


@needs_onednn
def test_model_prefill_on_onednn_matches_f_linear(count_onednn):
    tokens = torch.tensor([[3, 17, 42, 5, 9, 60, 2, 8]])
    model = tiny_model()
    with torch.no_grad():
        expected = model(tokens)
        configure_fast_paths(model, decode_split=2, onednn=True, column_major=True)
        got = model(tokens)
    assert len(count_onednn) >= 7 * 2  # every projection of both layers
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_onednn_sees_a_bounded_set_of_row_counts_and_stays_exact(monkeypatch):
    seen = set()
    real = linear_module._inner_product

    def recording(rows, weight, bias):
        seen.add(rows.shape[0])
        return real(rows, weight, bias)

    monkeypatch.setattr(linear_module, "_inner_product", recording)
    torch.manual_seed(9)
    weight, bias = torch.randn(48, 24), torch.randn(48)
    for m in (2, 5, 31, 32, 33, 200, 511, 512, 513, 1100):
        x = torch.randn(m, 24)
        with torch.no_grad():
            got = fast_linear(x, weight, bias, onednn=True)
        assert got.shape == (m, 48)
        torch.testing.assert_close(got, F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)
    chunk, pad = linear_module.CHUNK_ROWS, linear_module.PAD_ROWS
    assert seen <= set(range(pad, chunk + 1, pad))  # whatever the prompt length, at most chunk / pad shapes


def test_fast_paths_are_configured_by_type_not_by_name_or_attribute():
    """Every Linear, whatever its name (LoRA's base layers included), and nothing else: a
    plain nn.Linear or a module that merely has a `decode_split` attribute is left alone."""

    class Impostor(torch.nn.Module):
        decode_split = 1
        onednn = False

    model = torch.nn.Module()
    model.oddly_named = Linear(8, 16)
    model.wrapped = LoRALinear(Linear(8, 16), r=2, alpha=4)
    model.plain = torch.nn.Linear(8, 16)
    model.impostor = Impostor()
    assert configure_fast_paths(model, decode_split=4, onednn=True, column_major=True) == 2
    for layer in (model.oddly_named, model.wrapped.base_layer):
        assert (layer.decode_split, layer.onednn) == (4, True)
        assert layer.weight.stride() == (1, 16)  # column-major
    assert model.plain.weight.is_contiguous() and not hasattr(model.plain, "decode_split")
    assert (model.impostor.decode_split, model.impostor.onednn) == (1, False)
    configure_fast_paths(model, onednn=False)  # None leaves the split as it was
    assert (model.oddly_named.decode_split, model.oddly_named.onednn) == (4, False)


def test_the_model_class_knows_nothing_of_the_fast_paths():
    import inspect

    from chatapp.model import transformer

    source = inspect.getsource(transformer)
    for word in ("decode_split", "onednn", "prepare_for_inference", "column"):
        assert word not in source
