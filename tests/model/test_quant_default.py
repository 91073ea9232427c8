"""The bundled model (Q4_1 matrices, Q8_0 embedding) in each compact option, against float32:
bytes held, perplexity on a fixed text, greedy agreement on short prompts.

int4 on the CPU holds the file's Q4_1 codes in torch's int4 kernel layout with bfloat16 scales
and zeros, its int8 vocabulary per row (model/int4_rows.py); "int4-q4_1" is the file's own
numbers (CHATAPP_INT4_PACK=0), kept exact."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine.loader import load_model
from chatapp.engine.quality import agreement, greedy_ids, text_perplexity
from chatapp.model import int4_rows
from chatapp.model.quant import QuantLinear, tensor_bytes, weights_kind
from chatapp.weights.gguf_loader import open_gguf

TEXT = ("The printing press, invented around 1440, let books be copied quickly and cheaply. "
        "Within a few decades printers worked in most large European cities, and the number "
        "of books grew from thousands to millions. Ideas travelled faster than ever before.")
PROMPTS = ["The capital of France is", "def add(a, b):\n    return", "Water boils at"]


@pytest.fixture(scope="module")
def models(default_gguf_path):
    # One thread: two collapse when another process holds a core (see DESIGN.md).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = {option: load_model(default_gguf_path, device="cpu", weights=option, check_memory=False)
                  for option in ("float32", "int8", "int4")}
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CHATAPP_INT4_PACK", "0")
            models["int4-q4_1"] = load_model(default_gguf_path, device="cpu", weights="int4", check_memory=False)
        yield models
    finally:
        torch.set_num_threads(threads)


def packed(loaded) -> bool:
    return loaded.model.layers[0].mlp.up_proj.packed4


def perplexity(loaded) -> float:
    return text_perplexity(loaded.model, loaded.tokenizer, TEXT)


def greedy(loaded, prompt: str, n: int = 8) -> list[int]:
    return greedy_ids(loaded.model, loaded.tokenizer, prompt, n)


def test_int4_holds_no_more_than_the_files_own_tensor_bytes(models, default_gguf_path):
    file_bytes = sum(int(t.n_bytes) for t in open_gguf(default_gguf_path).tensors)
    n_params = models["int4"].config.n_params
    assert tensor_bytes(models["int4-q4_1"].model) / n_params == pytest.approx(0.72, abs=0.01)  # Q4_1, Q8_0 vocab
    assert tensor_bytes(models["int4-q4_1"].model) <= 1.05 * file_bytes
    held = tensor_bytes(models["int4"].model)
    assert held <= 1.05 * file_bytes
    if packed(models["int4"]):  # Q4_1's 20 bytes a 32 weights, the vocabulary 1 byte a weight + 2 a row
        assert models["int4"].model.lm_head.rowwise and models["int4"].model.lm_head.qweight is \
            models["int4"].model.tok_embeddings.qweight
        assert held / n_params == pytest.approx(0.706, abs=0.003)
    assert weights_kind(models["int4"].model) == "int4+int8"
    assert models["int4"].weights == "int4" and models["int8"].weights == "int8"
    int8 = models["int8"].model
    if int8.lm_head.rowwise:  # model/int8_rows.py: 1 byte a weight + a bfloat16 scale a row, the vocabulary once
        assert int8.tok_embeddings.qweight is int8.lm_head.qweight
        assert tensor_bytes(int8) / n_params == pytest.approx(1.0, abs=0.01)
    else:
        assert tensor_bytes(int8) / n_params == pytest.approx(34 / 32, abs=0.01)


def test_int4_of_a_q4_1_file_is_the_files_own_numbers(models):
    """Q4_1 repacked bit for bit: the same weights float32 dequantizes to; in the int4 kernel's
    layout the same codes, each weight within the bfloat16 rounding of its scale and zero."""
    want = models["float32"].model.layers[0].mlp.up_proj.weight
    q = models["int4-q4_1"].model.layers[0].mlp.up_proj
    assert isinstance(q, QuantLinear) and q.kind == "int4" and not q.packed4
    torch.testing.assert_close(q.dequantize(), want, rtol=0, atol=1e-6)
    p = models["int4"].model.layers[0].mlp.up_proj
    if not int4_rows.in_use():
        pytest.skip("torch's int4 kernel does not run here: int4 keeps Q4_1")
    assert p.packed4
    assert torch.equal(int4_rows.unpack(p.qweight, 0, p.out_features).to(torch.int32),
                       int4_rows.q4_1_codes(q.qweight))
    step = q.scales.float().repeat_interleave(32, 1)  # (out, in) the Q4_1 step d of each weight
    assert ((p.dequantize() - want).abs() <= step / 32 + (want.abs() + step * 8) / 256).all()
    assert ((p.dequantize() - want).abs().mean() / step.mean()) < 1 / 200  # on average far inside the bound (1/32 of a step)


def test_perplexity_stays_within_bounds(models):
    base = perplexity(models["float32"])
    assert perplexity(models["int4-q4_1"]) == pytest.approx(base, rel=1e-3)  # same numbers, other arithmetic
    # bfloat16 scales and zeros, the vocabulary requantized per row (measured 26.95 against 27.19)
    assert perplexity(models["int4"]) == pytest.approx(base, rel=0.03)
    assert perplexity(models["int8"]) == pytest.approx(base, rel=0.03)  # Q4_1 re-quantized to 8 bits


NEAR_TIE = 0.5  # logits between float32's two best tokens


def float32_gap(loaded, prompt: str, continuation: list[int], index: int) -> float:
    """float32's margin between its best two tokens at `index` of its own greedy continuation."""
    ids = loaded.tokenizer.encode(prompt)
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids + continuation]))[0, len(ids) - 1 + index]  # (vocab,)
    top = logits.float().topk(2).values
    return (top[0] - top[1]).item()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_continuations_agree_with_float32_up_to_a_near_tie(models, prompt):
    """int4 in Q4_1's form (the file's own numbers) gives float32's tokens; int8 (re-quantized,
    and per row with bfloat16 rows in torch's int8 kernel, model/int8_rows.py) and int4 in torch's
    int4 kernel (bfloat16 rows, scales and zeros, model/int4_rows.py) follow float32 until a token
    where float32's own two best are within NEAR_TIE logits of each other."""
    want = greedy(models["float32"], prompt)
    assert greedy(models["int4-q4_1"], prompt) == want
    for option in ("int8", "int4"):
        got = greedy(models[option], prompt)
        same = agreement(got, want)
        assert same >= 2, (option, got, want)
        if same < len(want):
            assert float32_gap(models["float32"], prompt, want, same) < NEAR_TIE, (option, same, got, want)


@pytest.mark.parametrize("option", ["int8", "int4", "int4-q4_1"])
def test_compiled_and_eager_products_give_the_same_greedy_tokens(models, option):
    from chatapp.model import quant_products

    if not quant_products.compiler_available():
        pytest.skip("torch.compile has no working C++ compiler on this machine")
    try:
        quant_products.set_products("compiled")
        compiled = greedy(models[option], PROMPTS[0])
        assert quant_products.products_in_use() == "compiled"  # no fallback happened on the way
        quant_products.set_products("eager")
        assert greedy(models[option], PROMPTS[0]) == compiled
    finally:
        quant_products.set_products("auto")
