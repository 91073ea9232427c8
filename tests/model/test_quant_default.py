"""The bundled model (Q4_1 matrices, Q8_0 embedding) in each compact option, against float32:
bytes held, perplexity on a fixed text, greedy agreement on short prompts."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine.loader import load_model
from chatapp.engine.quality import agreement, greedy_ids, text_perplexity
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
        yield {option: load_model(default_gguf_path, device="cpu", weights=option, check_memory=False)
               for option in ("float32", "int8", "int4")}
    finally:
        torch.set_num_threads(threads)


def perplexity(loaded) -> float:
    return text_perplexity(loaded.model, loaded.tokenizer, TEXT)


def greedy(loaded, prompt: str, n: int = 8) -> list[int]:
    return greedy_ids(loaded.model, loaded.tokenizer, prompt, n)


def test_int4_holds_no_more_than_the_files_own_tensor_bytes(models, default_gguf_path):
    file_bytes = sum(int(t.n_bytes) for t in open_gguf(default_gguf_path).tensors)
    held = tensor_bytes(models["int4"].model)
    assert held <= 1.05 * file_bytes
    n_params = models["int4"].config.n_params
    assert held / n_params == pytest.approx(0.72, abs=0.01)  # Q4_1 matrices, Q8_0 embedding
    assert weights_kind(models["int4"].model) == "int4+int8"
    assert models["int4"].weights == "int4" and models["int8"].weights == "int8"
    int8 = models["int8"].model
    if int8.lm_head.rowwise:  # model/int8_rows.py: 1 byte a weight + a bfloat16 scale a row, the vocabulary once
        assert int8.tok_embeddings.qweight is int8.lm_head.qweight
        assert tensor_bytes(int8) / n_params == pytest.approx(1.0, abs=0.01)
    else:
        assert tensor_bytes(int8) / n_params == pytest.approx(34 / 32, abs=0.01)


def test_int4_of_a_q4_1_file_is_the_files_own_numbers(models):
    """Q4_1 repacked bit for bit: the same weights float32 dequantizes to."""
    q = models["int4"].model.layers[0].mlp.up_proj
    assert isinstance(q, QuantLinear) and q.kind == "int4"
    torch.testing.assert_close(q.dequantize(), models["float32"].model.layers[0].mlp.up_proj.weight,
                               rtol=0, atol=1e-6)


def test_perplexity_stays_within_bounds(models):
    base = perplexity(models["float32"])
    assert perplexity(models["int4"]) == pytest.approx(base, rel=1e-3)  # same numbers, other arithmetic
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
    """int4 (the file's own numbers) gives float32's tokens; int8 (re-quantized, and per row with
    bfloat16 rows in torch's int8 kernel, model/int8_rows.py) follows float32 until a token where
    float32's own two best are within NEAR_TIE logits of each other."""
    want = greedy(models["float32"], prompt)
    assert greedy(models["int4"], prompt) == want
    got = greedy(models["int8"], prompt)
    same = agreement(got, want)
    assert same >= 2, (got, want)
    if same < len(want):
        assert float32_gap(models["float32"], prompt, want, same) < NEAR_TIE, (same, got, want)


@pytest.mark.parametrize("option", ["int8", "int4"])
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
