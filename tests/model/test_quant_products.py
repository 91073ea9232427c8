"""One-row compact products (chatapp/model/quant_products.py): eager and compiled agree with the
dequantized product, the choice of products, and the fallbacks to eager."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from chatapp.model import quant_products as qp
from chatapp.model.quant import QuantizedTensor, QuantLinear, warm_up_products


@pytest.fixture(autouse=True)
def eager_afterwards():
    yield
    qp.set_products("eager")


def compact(kind, out_features=40, in_features=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return QuantizedTensor.from_float(torch.randn(out_features, in_features, generator=g) * 0.05, kind)


def product(kind, x, q):
    return qp.row_product(kind, x, q.qweight, q.scales, q.mins)


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_eager_row_products_match_the_dequantized_weight(kind):
    q = compact(kind)
    x = torch.randn(1, 96, generator=torch.Generator().manual_seed(1))
    qp.set_products("eager")
    torch.testing.assert_close(product(kind, x, q), F.linear(x, q.dequantize()), rtol=1e-5, atol=1e-5)


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="'fast'.*auto, eager, compiled"):
        qp.set_products("fast")


def test_eager_mode_holds_no_compiled_products():
    assert qp.set_products("eager") == "eager"
    assert qp.compiled_product("int8") is None and qp.products_in_use() == "eager"


def test_a_packaged_app_never_probes_for_a_compiler(monkeypatch):
    qp.compiler_available.cache_clear()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    try:
        assert qp.compiler_available() is False
        assert qp.set_products("auto") == "eager"
    finally:
        qp.compiler_available.cache_clear()


def test_a_failing_compiled_product_falls_back_to_eager_for_good(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("no compiler after all")

    monkeypatch.setitem(qp._compiled, "int8", broken)
    q = compact("int8")
    x = torch.randn(1, 96)
    out = product("int8", x, q)
    torch.testing.assert_close(out, F.linear(x, q.dequantize()), rtol=1e-5, atol=1e-5)
    assert qp.products_in_use() == "eager"
    assert "no compiler after all" in caplog.text


def test_quant_linear_takes_the_compiled_product_for_one_row_only(monkeypatch):
    calls = []

    def counting(*args):
        calls.append(args[0].shape)
        return qp.int8_row_product(*args)

    monkeypatch.setitem(qp._compiled, "int8", counting)
    layer = QuantLinear(compact("int8"), bias=torch.ones(40))
    x = torch.randn(3, 96)
    torch.testing.assert_close(layer(x[:1]), F.linear(x[:1], layer.dequantize(), layer.bias), rtol=1e-5, atol=1e-5)
    layer(x)  # a prefill's rows take the chunked dequantize-and-multiply path
    assert calls == [(1, 96)]
    assert warm_up_products(torch.nn.Sequential(layer, QuantLinear(compact("int8", 40, 96, seed=2)))) == 1
    assert calls[1:] == [(1, 96)]  # one shape, one warm-up product


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_compiled_row_products_match_eager(kind):
    if not qp.compiler_available():
        pytest.skip("torch.compile has no working C++ compiler on this machine")
    assert qp.set_products("compiled") == "compiled"
    q = compact(kind, 64, 128, seed=3)
    x = torch.randn(1, 128, generator=torch.Generator().manual_seed(4))
    got = product(kind, x, q)
    assert qp.products_in_use() == "compiled"  # it did not fall back
    torch.testing.assert_close(got, F.linear(x, q.dequantize()), rtol=1e-4, atol=1e-5)


def test_warm_up_compiles_what_the_engine_decodes_with():
    if not qp.compiler_available():
        pytest.skip("torch.compile has no working C++ compiler on this machine")
    from torch._dynamo.utils import counters

    qp.set_products("compiled")
    layer = QuantLinear(compact("int8", 24, 64, seed=5))
    assert warm_up_products(layer) == 1
    graphs = counters["stats"]["unique_graphs"]
    with torch.inference_mode():  # as Engine._forward decodes
        layer(torch.randn(1, 1, 64))
    assert counters["stats"]["unique_graphs"] == graphs  # nothing compiled in the first reply


def test_warm_up_reports_each_shape_as_the_loads_compile_stage(monkeypatch):
    """The window's load bar shows the "compile" stage with how many shapes are done."""
    monkeypatch.setitem(qp._compiled, "int8", qp.int8_row_product)
    model = torch.nn.Sequential(QuantLinear(compact("int8", 40, 96)), QuantLinear(compact("int8", 40, 96, seed=2)),
                                QuantLinear(compact("int8", 96, 64, seed=3)))
    seen = []
    assert warm_up_products(model, progress=lambda done, total: seen.append((done, total))) == 2
    assert seen == [(0, 2), (1, 2)]
