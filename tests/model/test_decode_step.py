"""The one-token decode step as one graph (Transformer.forward_static, model/decode_step.py):
equal to the eager forward for every kind of layer, compiled once for every position, every
context length and every LoRA adapter on the same layers (graphs counted by dynamo), and the
fallbacks to eager (mixture of experts, a failing compile, no compiler)."""

from __future__ import annotations

import functools
import logging

import pytest
import torch

from chatapp.engine.generate import Engine
from chatapp.engine.sampling import SamplingSettings
from chatapp.model import decode_step as ds
from chatapp.model.config import ModelConfig, RopeScaling
from chatapp.model.lora import LoRAConfig, apply_lora, lora_state_dict, remove_lora, set_lora_enabled
from chatapp.model.quant import QuantizedTensor, install_quantized, quantizable
from chatapp.model.transformer import Transformer
from chatapp.model.window_cache import WindowKVCache

GEMMA2 = dict(arch="gemma2", norm_unit_offset=True, post_norms=True, embed_scale=True, mlp="geglu",
              sliding_window=4, layer_types=("sliding_attention", "full_attention"), attn_softcap=5.0,
              final_softcap=5.0)
CONFIGS = {
    "llama-gqa": dict(arch="llama", n_kv_heads=2),
    "qwen3-qknorm": dict(arch="qwen3", n_kv_heads=2, qk_norm=True, head_dim=16),
    "gemma2-ring": GEMMA2,  # sliding layers hold a ring of window + 256 slots (< 300)
    "gemma3-local-rope": dict(GEMMA2, arch="gemma3", attn_softcap=None, final_softcap=None, qk_norm=True,
                              local_rope_theta=10.0),
    "mistral-window": dict(arch="mistral", sliding_window=6),  # every layer slides, full-length cache
    "gpt2-learned": dict(arch="gpt2", positions="learned", norm="layernorm", mlp="gelu", qkv_bias=True,
                         o_bias=True, mlp_bias=True),
    "phi3-partial-rope": dict(arch="phi3", partial_rotary_factor=0.5, tie_embeddings=True),
    # contexts past 200 positions take the long factors (the static step's cache of 300 does)
    "phi3-longrope": dict(arch="phi3", rope_scaling=RopeScaling(
        kind="longrope", factor=4.0, original_max_position_embeddings=200, short_factor=[1.0, 1.25, 1.5, 1.75],
        long_factor=[1.5, 3.0, 4.5, 6.0])),
}


def tiny(name: str, max_seq_len: int = 300, dim: int = 32, intermediate: int = 48, seed: int = 0) -> Transformer:
    config = ModelConfig(vocab_size=50, dim=dim, n_layers=2, n_heads=4, intermediate_size=intermediate,
                         max_seq_len=max_seq_len, **dict(dict(n_kv_heads=4), **CONFIGS[name]))
    torch.manual_seed(seed)
    model = Transformer(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def static_step(model, token: int, position: int, kv_len: int) -> torch.Tensor:
    """What DecodeStep does around the graph: the call, then the ring's bookkeeping."""
    logits = model.forward_static(torch.tensor([[token]]), torch.tensor([position]), torch.arange(kv_len))
    for block in model.layers:
        if isinstance(block.attn.kv_cache, WindowKVCache):
            block.attn.kv_cache.advance(position, 1)
    return logits


@pytest.mark.parametrize("name", sorted(CONFIGS))
@torch.inference_mode()
def test_the_static_step_equals_the_eager_step(name):
    eager, static = tiny(name), tiny(name)
    prompt = torch.arange(1, 12)[None]  # (1, 11)
    for model in (eager, static):
        model.setup_cache(1, 300)
        model(prompt, torch.arange(11))
    if name == "gemma2-ring":
        assert isinstance(static.layers[0].attn.kv_cache, WindowKVCache)
    token = 3
    for position in range(11, 40):
        want = eager(torch.tensor([[token]]), torch.tensor([position]))
        # attend over more positions than written (the rest masked), as a bucket does
        got = static_step(static, token, position, kv_len=64 if name != "gpt2-learned" else 300)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        token = int(want[0, -1].argmax())


def test_kv_length_rounds_up_to_a_bucket_within_the_cache():
    assert ds.kv_length(0, 4096) == ds.BUCKET
    assert ds.kv_length(ds.BUCKET - 1, 4096) == ds.BUCKET
    assert ds.kv_length(ds.BUCKET, 4096) == 2 * ds.BUCKET
    assert ds.kv_length(4095, 4096) == 4096
    assert ds.kv_length(5, 100) == 100


def test_a_full_cache_holds_one_spare_slot():
    model = tiny("gemma2-ring")
    model.setup_cache(1, 300)
    assert isinstance(model.layers[0].attn.kv_cache, WindowKVCache)
    assert model.layers[1].attn.kv_cache.k.shape[2] == 301  # attention.KVCache: kv_len never the full size
    held = sum(b.attn.kv_cache.k.nbytes + b.attn.kv_cache.v.nbytes for b in model.layers)
    assert model.config.kv_cache_bytes(300) == held


def test_a_mixture_of_experts_model_decodes_eagerly_and_says_why(caplog):
    config = ModelConfig(arch="qwen3_moe", vocab_size=50, dim=32, n_layers=1, n_heads=4, intermediate_size=48,
                         moe_intermediate_size=16, max_seq_len=64, n_experts=4, n_experts_per_tok=2)
    model = Transformer(config).eval()
    with caplog.at_level(logging.INFO, logger="chatapp.model.decode_step"):
        step = ds.DecodeStep(model, "compiled")
    assert not step.compiled and "mixture-of-experts" in step.reason
    assert "eager (mixture-of-experts" in caplog.text


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="'fast'.*auto, eager, compiled"):
        ds.DecodeStep(tiny("llama-gqa"), "fast")


def test_auto_stays_eager_without_a_compiler(monkeypatch):
    monkeypatch.setattr(ds, "compiler_available", lambda: False)
    step = ds.DecodeStep(tiny("llama-gqa"), "auto")
    assert not step.compiled and "compiler" in step.reason


@torch.inference_mode()
def test_a_failing_compiled_step_falls_back_to_eager_for_good(caplog):
    model = tiny("llama-gqa")
    model.setup_cache(1, 300)
    step = ds.DecodeStep(model, "eager")
    calls = []

    def broken(*args):
        calls.append(args)
        raise RuntimeError("no compiler today")

    step._fn = broken
    model(torch.arange(1, 6)[None], torch.arange(5))
    want = tiny("llama-gqa")
    want.setup_cache(1, 300)
    want(torch.arange(1, 6)[None], torch.arange(5))
    with caplog.at_level(logging.WARNING, logger="chatapp.model.decode_step"):
        got = step(torch.tensor([[7]]), torch.tensor([5]), 5)
    torch.testing.assert_close(got, want(torch.tensor([[7]]), torch.tensor([5])))
    assert len(calls) == 1 and not step.compiled and "no compiler today" in caplog.text
    step(torch.tensor([[8]]), torch.tensor([6]), 6)
    assert len(calls) == 1  # not tried again


# -- graphs counted by dynamo with its eager backend (no C++ compiler needed) ----------------------

@pytest.fixture
def graphs(monkeypatch):
    """Dynamo's graphs for the steps made in the test, counted (CompileCounter runs them eagerly)."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=counter))
    yield counter
    torch._dynamo.reset()


@torch.inference_mode()
def decode_like_eager(step: ds.DecodeStep, name: str, context: int, seed: int = 0, steps: int = 4) -> None:
    """Set up a cache of `context` positions, prefill, and check a few compiled steps against the
    eager forward of tiny(name, seed=seed), step's model's twin, on its own cache."""
    model = step.model
    reference = tiny(name, max_seq_len=model.config.max_seq_len, seed=seed)
    for m in (model, reference):
        m.setup_cache(1, context)
        m(torch.arange(1, 12)[None], torch.arange(11))
    token = 3
    for position in range(11, 11 + steps):
        want = reference(torch.tensor([[token]]), torch.tensor([position]))
        got = step(torch.tensor([[token]]), torch.tensor([position]), position)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        token = int(want[0, -1].argmax())


def counted_step(name: str, seed: int = 0, dynamic_context: bool = True) -> ds.DecodeStep:
    return ds.DecodeStep(tiny(name, max_seq_len=1000, seed=seed), "compiled", dynamic_context=dynamic_context)


@pytest.mark.parametrize("name", ["llama-gqa", "gemma2-ring", "gpt2-learned", "phi3-longrope"])
def test_one_graph_serves_every_context_length_and_a_second_model(graphs, name):
    step = counted_step(name)
    for context in (300, 700, 999, 450):  # gemma2-ring: past the ring's 260 slots, rings throughout
        decode_like_eager(step, name, context)
    # another model of the same shapes (new weights), as after a reload with another context
    decode_like_eager(counted_step(name, seed=1), name, 600, seed=1)
    assert step.compiled and graphs.frame_count == 1


def test_a_compile_per_context_length_without_dynamic_context(graphs):
    """What the counts above would be without the caches' length marked dynamic."""
    step = counted_step("llama-gqa", dynamic_context=False)
    for context in (300, 700, 300):
        decode_like_eager(step, "llama-gqa", context)
    assert graphs.frame_count == 2


def test_longrope_compiles_once_per_factor_list(graphs):
    step = counted_step("phi3-longrope")
    for context in (100, 150):  # within the original 200 positions: short factors
        decode_like_eager(step, "phi3-longrope", context)
    assert graphs.frame_count == 1
    for context in (300, 900):  # past it: long factors, a second graph and no more
        decode_like_eager(step, "phi3-longrope", context)
    assert graphs.frame_count == 2 and step.model.long_rope


def wear(model, r: int, alpha: float, seed: int, targets=("q_proj", "v_proj")) -> None:
    """Put a LoRA adapter (random A and B: a real change) on `model`, as apply_lora and a load do."""
    apply_lora(model, LoRAConfig(r=r, alpha=alpha, target_modules=list(targets)))
    copy_adapter(model, seed)
    model.eval()


def copy_adapter(model, seed: int) -> None:
    """Another adapter of the same shapes copied into the LoRA layers in place (Backend.wear_adapter)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(lora_state_dict(model).items()):
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


@torch.inference_mode()
def step_like_eager(step: ds.DecodeStep, reference) -> torch.Tensor:
    """One compiled step after a prefill, against `reference` (the same weights and adapter state)."""
    for m in (step.model, reference):
        m.setup_cache(1, 300)
        m(torch.arange(1, 12)[None], torch.arange(11))
    want = reference(torch.tensor([[3]]), torch.tensor([11]))
    got = step(torch.tensor([[3]]), torch.tensor([11]), 11)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    return got


def test_adapters_switched_swapped_and_of_other_ranks_take_one_graph(graphs):
    model, reference = tiny("llama-gqa"), tiny("llama-gqa")
    for m in (model, reference):
        wear(m, r=2, alpha=4, seed=1)
    step = ds.DecodeStep(model, "compiled")
    first = step_like_eager(step, reference)
    for m in (model, reference):  # another adapter copied in place: read afresh, not stale
        copy_adapter(m, seed=2)
    second = step_like_eager(step, reference)
    for m in (model, reference):  # switched off (the base model's replies), then on again
        set_lora_enabled(m, False)
    off = step_like_eager(step, reference)
    assert not torch.allclose(first, second, atol=1e-3) and not torch.allclose(second, off, atol=1e-3)
    for m in (model, reference):
        set_lora_enabled(m, True)
    step_like_eager(step, reference)
    for r, alpha in ((4, 8), (8, 32)):  # other ranks and scalings on the same layers
        for m in (model, reference):
            remove_lora(m)
            wear(m, r=r, alpha=alpha, seed=r)
        step_like_eager(step, reference)
    assert step.compiled and graphs.frame_count == 1
    for m in (model, reference):  # the adapter taken off: the base model's structure, a graph of its own
        remove_lora(m)
    step_like_eager(step, reference)
    assert graphs.frame_count == 2


def test_a_cache_set_up_under_inference_mode_takes_the_same_graph(graphs):
    """Scoring sets a cache up inside inference mode; the engine outside it: the same kind of tensor."""
    step = counted_step("llama-gqa")
    reference = tiny("llama-gqa", max_seq_len=1000)
    for context, inference in ((300, False), (400, True), (500, False)):
        for m in (step.model, reference):
            with torch.inference_mode(inference):
                m.setup_cache(1, context)
        assert not step.model.layers[0].attn.kv_cache.k.is_inference()
        with torch.inference_mode():
            for m in (step.model, reference):
                m(torch.arange(1, 12)[None], torch.arange(11))
            want = reference(torch.tensor([[3]]), torch.tensor([11]))
            got = step(torch.tensor([[3]]), torch.tensor([11]), 11)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert graphs.frame_count == 1


def test_a_short_context_drops_the_ring_and_takes_a_second_graph_only(graphs):
    step = counted_step("gemma2-ring")
    for context in (300, 200, 800, 100):  # rings at 300 and 800 (> 260 slots), full caches at 200 and 100
        decode_like_eager(step, "gemma2-ring", context)
    assert graphs.frame_count == 2


# -- compiled (a C++ compiler needed: tens of seconds each on a 2-core machine) -----------------

def needs_compiler():
    if not ds.compiler_available():
        pytest.skip("no working C++ compiler for torch.compile on this machine")


def compact_llama() -> Transformer:
    """A tiny GQA Llama whose matrices are int8 / int4 (the products run inside the graph)."""
    model = tiny("llama-gqa", max_seq_len=600, dim=64, intermediate=96, seed=1)
    state = {}
    for name, tensor in model.state_dict().items():
        if quantizable(name, tuple(tensor.shape)) and ".layers." in name:
            state[name] = QuantizedTensor.from_float(tensor, "int4" if "mlp" in name else "int8")
    install_quantized(model, state)
    return model


@pytest.mark.parametrize("make", [compact_llama, lambda: tiny("gemma2-ring")], ids=["compact-llama", "gemma2-ring"])
def test_the_compiled_step_equals_the_eager_step_across_buckets_in_one_graph(make):
    needs_compiler()
    import torch._dynamo

    torch._dynamo.reset()
    model, reference = make(), make()
    cache_len = model.config.max_seq_len
    engine = Engine(reference, tokenizer=None, context_len=cache_len, eos_ids=set())
    step = ds.DecodeStep(model, "compiled")
    model.decode_step = step
    model.setup_cache(1, cache_len)
    assert step.warm_up()
    compiled_engine = Engine(model, tokenizer=None, context_len=cache_len, eos_ids=set())
    before = dict(torch._dynamo.utils.counters["stats"])
    # a prompt that ends before a bucket boundary, decoded past it (and past the ring's size)
    prompt = [(i * 7) % 50 for i in range(ds.BUCKET - 6)]
    settings = SamplingSettings(temperature=0.0, max_new_tokens=12)
    want = list(engine.generate_ids(prompt, settings))
    got = list(compiled_engine.generate_ids(prompt, settings))
    assert got == want
    assert step.compiled  # no fallback on the way
    assert dict(torch._dynamo.utils.counters["stats"]).get("unique_graphs") == before.get("unique_graphs")
    with torch.inference_mode():  # logits of one more step, from the same caches
        position = len(prompt) + len(got) - 1
        a = reference(torch.tensor([[got[-1]]]), torch.tensor([position]))
        b = step(torch.tensor([[got[-1]]]), torch.tensor([position]), position)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_the_compiled_step_takes_other_context_lengths_and_a_second_model_without_compiling():
    needs_compiler()
    import torch._dynamo

    torch._dynamo.reset()
    model = compact_llama()
    model.decode_step = step = ds.DecodeStep(model, "compiled")
    model.setup_cache(1, 600)
    assert step.warm_up()  # the loader's compile, on a cache of 600 positions
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    second = compact_llama()  # the same model loaded again with another context, as the loader does
    second.decode_step = ds.DecodeStep(second, "compiled")
    second.setup_cache(1, 450)
    assert second.decode_step.warm_up()
    prompt = [(i * 7) % 50 for i in range(20)]
    settings = SamplingSettings(temperature=0.0, max_new_tokens=8)
    for compiled, context in ((model, 300), (model, 599), (second, 450)):
        reference = compact_llama()
        want = list(Engine(reference, tokenizer=None, context_len=context, eos_ids=set()).generate_ids(prompt, settings))
        got = list(Engine(compiled, tokenizer=None, context_len=context, eos_ids=set()).generate_ids(prompt, settings))
        assert got == want and compiled.decode_step.compiled
        with torch.inference_mode():  # logits of one more step, from the same caches
            position = len(prompt) + len(got) - 1
            a = reference(torch.tensor([[got[-1]]]), torch.tensor([position]))
            b = compiled.decode_step(torch.tensor([[got[-1]]]), torch.tensor([position]), position)
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


def test_the_compiled_step_wearing_lora_on_a_compact_base_follows_adapter_swaps():
    """Inductor's graph reads the adapter's tensors at every call: an adapter copied in place, or
    switched off, changes the next step's logits exactly as it changes the eager step's."""
    needs_compiler()
    import torch._dynamo

    torch._dynamo.reset()
    model, reference = compact_llama(), compact_llama()
    for m in (model, reference):
        wear(m, r=4, alpha=8, seed=1, targets=("q_proj", "v_proj", "up_proj"))  # up_proj: int4 base
    model.decode_step = step = ds.DecodeStep(model, "compiled")
    model.setup_cache(1, 600)
    assert step.warm_up()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    outputs = []
    for change in (None, lambda m: copy_adapter(m, seed=2), lambda m: set_lora_enabled(m, False)):
        for m in (model, reference):
            if change is not None:
                change(m)
        for m in (model, reference):
            m.setup_cache(1, 600)  # outside inference mode, as the engine's: dynamo guards on it
        with torch.inference_mode():
            for m in (model, reference):
                m(torch.arange(1, 12)[None], torch.arange(11))
            want = reference(torch.tensor([[3]]), torch.tensor([11]))
            got = step(torch.tensor([[3]]), torch.tensor([11]), 11)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        outputs.append(got)
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3) and not torch.allclose(outputs[1], outputs[2], atol=1e-3)
    assert step.compiled and torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
