"""The bundled model's decode step compiled as one graph (model/decode_step.py), float32 and
int4 (Q4_1 products inside the graph): the same greedy tokens as the eager step and logits
within 1e-4, one compile at load for every position."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine.generate import Engine
from chatapp.engine.loader import load_model
from chatapp.engine.sampling import SamplingSettings
from chatapp.model import decode_step as ds

PROMPT = "The capital of France is"


@pytest.mark.parametrize("option", ["float32", "int4"])
def test_the_compiled_step_of_the_bundled_model_equals_the_eager_step(default_gguf_path, monkeypatch, option):
    if not ds.compiler_available():
        pytest.skip("no working C++ compiler for torch.compile on this machine")
    import torch._dynamo

    torch._dynamo.reset()
    monkeypatch.setenv("CHATAPP_DECODE_COMPILE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = load_model(default_gguf_path, device="cpu", weights=option, context_len=512, check_memory=False)
        step = loaded.model.decode_step
        assert step.compiled
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        engine = Engine(loaded.model, loaded.tokenizer, context_len=512)
        ids = loaded.tokenizer.encode(PROMPT)
        settings = SamplingSettings(temperature=0.0, max_new_tokens=16)
        compiled = list(engine.generate_ids(ids, settings))
        assert step.compiled  # no fallback
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # compiled at load, once
        with torch.inference_mode():  # one more step each way from the same cache position
            position = len(ids) + len(compiled) - 1
            token, pos = torch.tensor([[compiled[-1]]]), torch.tensor([position])
            got = step(token, pos, position)
            want = loaded.model(token, pos)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        loaded.model.decode_step = None  # the engine's eager step
        assert list(engine.generate_ids(ids, settings)) == compiled
        assert engine.reply.stats.prefilled_tokens == 1  # the cache the compiled step wrote was reused
    finally:
        torch.set_num_threads(threads)
