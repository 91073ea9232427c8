"""Chatting with a LoRA adapter on a compact (int8 / int4) base: the base products stay compact,
the adapter's delta is added in float32 (y = base(x) + scale * B(A(x))), and the result is what
the same adapter computes on a float32 base holding the same (dequantized) weights.

The bundled model is Q4_1 (embedding Q8_0): loaded as int4 in Q4_1's form (CHATAPP_INT4_PACK=0,
set here) it is repacked bit for bit, so its float32 load holds exactly the dequantized weights;
in torch's int4 kernel layout (the CPU default, model/int4_rows.py) its scales round to bfloat16,
so that form is checked against a float32 model holding its numbers. int8 re-quantizes it, so int8 is checked on a
tiny model against a float32 model built from its dequantized weights. Products are eager here
(CHATAPP_QUANT_COMPILE=0: no minute of compiling per test); compiled and eager agree elsewhere
(tests/model/test_quant_products.py).
"""

from __future__ import annotations

import json

import pytest
import torch

from chatapp.engine.generate import Engine
from chatapp.engine.sampling import SamplingSettings
from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, LoRALinear, apply_lora, lora_layers, merge_lora
from chatapp.model.quant import QuantLinear, quantize_state, tensor_bytes
from chatapp.weights.build import build_model
from chatapp.weights.peft_adapter import adapter_parameter_count, load_adapter, save_adapter

TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(autouse=True)
def eager_products(monkeypatch):
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")
    monkeypatch.setenv("CHATAPP_INT4_PACK", "0")  # int4 is the file's own numbers unless a test says
    from chatapp.model.quant import set_products
    set_products("eager")
    yield
    set_products("eager")


def tiny_config() -> ModelConfig:
    return ModelConfig(arch="llama", vocab_size=256, dim=128, n_layers=2, n_heads=4, n_kv_heads=2,
                       intermediate_size=256, max_seq_len=64, tie_embeddings=True)


def tiny_float_state() -> dict:
    torch.manual_seed(0)
    return {k: v for k, v in Transformer(tiny_config()).state_dict().items() if k != "lm_head.weight"}


def dequantized(compact) -> Transformer:
    """A float32 model holding exactly `compact`'s weights, dequantized."""
    state = dict(tiny_float_state())
    for name, module in compact.named_modules():
        if isinstance(module, QuantLinear) and name != "lm_head":
            state[name + ".weight"] = module.dequantize()
    state["tok_embeddings.weight"] = compact.tok_embeddings.quantized.dequantize()
    return build_model(tiny_config(), state)


def random_adapter(model, folder, seed: int = 1, targets=TARGETS, r: int = 4) -> str:
    """An adapter of `model`'s shape with a non-zero B (a fresh one would change nothing), saved."""
    config = LoRAConfig(r=r, alpha=2 * r, target_modules=list(targets))
    apply_lora(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.2)
    folder = save_adapter(model, config, folder, "tiny")
    from chatapp.model.lora import remove_lora
    remove_lora(model)
    return str(folder)


def greedy(model, prompt: list[int], n: int) -> list[int]:
    """n greedy tokens, each from a full forward pass (no cache: nothing but the weights differ)."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(n):
            logits = model(torch.tensor([ids]), torch.arange(len(ids)))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_adapter_on_a_compact_base_computes_what_it_does_on_the_dequantized_float_base(kind, tmp_path):
    compact = build_model(tiny_config(), quantize_state(tiny_float_state(), kind))
    plain = dequantized(compact)
    folder = random_adapter(plain, tmp_path / "adapter")
    held = tensor_bytes(compact)
    load_adapter(compact, folder)
    load_adapter(plain, folder)
    layers = dict(lora_layers(compact))
    assert len(layers) == 6 and all(layer.compact and layer.base_layer.kind for layer in layers.values())
    assert all(layer.lora_A.dtype == torch.float32 for layer in layers.values())
    # the base stays compact: the adapter's float32 numbers are all the model gained
    # (and each layer's lora_gate, a float32 scalar the compiled decode step reads)
    assert tensor_bytes(compact) == held + 4 * adapter_parameter_count(folder) + 4 * len(layers)
    tokens = torch.randint(0, 256, (2, 19), generator=torch.Generator().manual_seed(5))
    pos = torch.arange(tokens.shape[1])
    with torch.inference_mode():
        got, want = compact(tokens, pos), plain(tokens, pos)
        one_row = compact(tokens[:1, :1], pos[:1])  # the decode path: one row through the compact product
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    torch.testing.assert_close(one_row, want[:1, :1], rtol=0, atol=1e-4)
    assert (got - compact_without_adapter(compact, tokens, pos)).abs().max() > 1e-2  # the adapter does act
    assert greedy(compact, [3, 1, 4, 1, 5], 12) == greedy(plain, [3, 1, 4, 1, 5], 12)


def compact_without_adapter(model, tokens, pos) -> torch.Tensor:
    from chatapp.model.lora import set_lora_enabled

    set_lora_enabled(model, False)
    try:
        with torch.inference_mode():
            return model(tokens, pos)
    finally:
        set_lora_enabled(model, True)


def test_an_adapter_for_another_shape_is_refused_on_a_compact_base_before_it_is_touched(tmp_path):
    from chatapp.errors import ShapeMismatchError

    compact = build_model(tiny_config(), quantize_state(tiny_float_state(), "int4"))
    other = ModelConfig(arch="llama", vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2,
                        intermediate_size=128, max_seq_len=64, tie_embeddings=True)
    folder = random_adapter(Transformer(other), tmp_path / "other")
    with pytest.raises(ShapeMismatchError, match="do not fit a"):
        load_adapter(compact, folder)
    assert not any(isinstance(m, LoRALinear) for m in compact.modules())


def test_merging_an_adapter_into_a_compact_base_stays_refused(tmp_path):
    compact = build_model(tiny_config(), quantize_state(tiny_float_state(), "int8"))
    load_adapter(compact, random_adapter(dequantized(compact), tmp_path / "a"))
    with pytest.raises(ValueError, match="cannot merge a LoRA adapter into int8 weights: save the adapter and merge "
                                         "it into the model loaded in float32"):
        merge_lora(compact)


# The bundled model: int4 is its own Q4_1 bytes, so the float32 load holds the same weights.

@pytest.fixture(scope="module")
def bundled_adapter(default_gguf_path, tmp_path_factory):
    from chatapp.engine.loader import load_model

    loaded = load_model(default_gguf_path, device="cpu", weights="float32", context_len=256)
    return random_adapter(loaded.model, tmp_path_factory.mktemp("bundled") / "adapter", seed=7,
                          targets=("q_proj", "v_proj", "up_proj"), r=8)


def test_bundled_model_int4_with_an_adapter_matches_float32_with_it(default_gguf_path, bundled_adapter):
    from chatapp.engine.loader import load_model

    compact = load_model(default_gguf_path, device="cpu", weights="int4", context_len=256, adapter=bundled_adapter)
    plain = load_model(default_gguf_path, device="cpu", weights="float32", context_len=256,
                       adapter=bundled_adapter)
    assert compact.weights == "int4" and compact.adapter is not None
    assert all(layer.compact for _, layer in lora_layers(compact.model))
    prompt = compact.tokenizer.encode("The capital of France is")
    with torch.inference_mode():
        got = compact.model(torch.tensor([prompt]))
        want = plain.model(torch.tensor([prompt]))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    replies = []
    for loaded in (compact, plain):  # the engine's cached decode, one row at a time
        engine = Engine(loaded.model, loaded.tokenizer, context_len=256, eos_ids=set())
        replies.append(list(engine.generate_ids(prompt, SamplingSettings(temperature=0.0, max_new_tokens=16))))
    assert replies[0] == replies[1] and len(replies[0]) == 16


def test_bundled_model_int4_packed_with_an_adapter_matches_float32_holding_its_numbers(
        default_gguf_path, bundled_adapter, monkeypatch):
    """The int4 kernel's form (bfloat16 scales and zeros, the vocabulary per row) wearing an adapter:
    a prefill (float32 blocks) gives a float32 model holding the same numbers' logits within 5e-4,
    and a decode step (bfloat16 rows in the kernels) within 5% with the same best token."""
    from chatapp.engine.loader import load_model
    from chatapp.model import int4_rows, int8_rows

    monkeypatch.setenv("CHATAPP_INT4_PACK", "1")
    if not int4_rows.in_use():
        pytest.skip("torch's int4 kernel does not run here: int4 keeps Q4_1")
    compact = load_model(default_gguf_path, device="cpu", weights="int4", context_len=256, adapter=bundled_adapter)
    plain = load_model(default_gguf_path, device="cpu", weights="float32", context_len=256,
                       adapter=bundled_adapter)
    assert all(layer.compact and layer.base_layer.packed4 for _, layer in lora_layers(compact.model))
    with torch.no_grad():  # the float32 model takes the packed form's numbers
        for name, module in compact.model.named_modules():
            if isinstance(module, QuantLinear) and name != "lm_head":
                plain.model.get_submodule(name).weight.copy_(module.dequantize())
        emb = compact.model.tok_embeddings
        vocab = int8_rows.dequantize(emb.qweight, emb.scales) if emb.rowwise else emb.quantized.dequantize()
        plain.model.tok_embeddings.weight.copy_(vocab)
        if plain.model.lm_head.weight.data_ptr() != plain.model.tok_embeddings.weight.data_ptr():
            plain.model.lm_head.weight.copy_(vocab)
    prompt = compact.tokenizer.encode("The capital of France is")
    with torch.inference_mode():
        got = compact.model(torch.tensor([prompt]))
        want = plain.model(torch.tensor([prompt]))
        # float32 either way, summed in another order (blocks of rows on oneDNN): measured 0.7-1.7e-4
        torch.testing.assert_close(got, want, rtol=0, atol=5e-4)
        for m in (compact.model, plain.model):
            m.setup_cache(1, 16)
            m(torch.tensor([prompt[:-1]]), torch.arange(len(prompt) - 1))
        step = compact.model(torch.tensor([prompt[-1:]]), torch.tensor([len(prompt) - 1]))[0, -1]
        ref = plain.model(torch.tensor([prompt[-1:]]), torch.tensor([len(prompt) - 1]))[0, -1]
    # bfloat16 rows and outputs in 211 products a step, through 30 layers: measured 2.6%
    assert ((step - ref).norm() / ref.norm()).item() < 0.05
    assert int(step.argmax()) == int(ref.argmax())


def test_the_estimate_counts_the_adapter(default_gguf_path, bundled_adapter):
    from chatapp.engine.loader import estimate_model

    params = adapter_parameter_count(bundled_adapter)
    # 30 layers, r=8: q (576 in, 576 out), v (576, 192), up (576, 1536)
    assert params == 30 * 8 * ((576 + 576) + (576 + 192) + (576 + 1536))
    for option, size in (("int4", 4), ("int8", 4), ("float32", 4), ("bf16", 2)):
        bare = estimate_model(default_gguf_path, device="cpu", context_len=256, weights=option)
        worn = estimate_model(default_gguf_path, device="cpu", context_len=256, weights=option,
                              adapter=bundled_adapter)
        assert worn["memory_bytes"] - bare["memory_bytes"] == size * params, option
        assert worn["options"][option]["bytes"] == worn["memory_bytes"]
    missing = estimate_model(default_gguf_path, device="cpu", context_len=256, weights="int4",
                             adapter=bundled_adapter + "-gone")  # an estimate still comes; the load will say why
    assert missing["memory_bytes"] == bare_bytes(default_gguf_path, "int4")


def bare_bytes(path, option) -> int:
    from chatapp.engine.loader import estimate_model

    return estimate_model(path, device="cpu", context_len=256, weights=option)["memory_bytes"]


def test_backend_loads_wears_and_switches_adapters_over_int4(default_gguf_path, bundled_adapter, tmp_path):
    """The window's and the server's paths: load with an adapter, switch it off, wear another by id."""
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.loader import load_model

    base = load_model(default_gguf_path, device="cpu", weights="float32", context_len=256)
    other = random_adapter(base.model, tmp_path / "other", seed=9, targets=("k_proj", "o_proj"), r=4)
    del base
    backend = ChatBackend()
    info = backend.load(str(default_gguf_path), LoadOptions(device="cpu", context_len=256, threads=1,
                                                            adapter=bundled_adapter, weights="int4"))
    assert info.weights == "int4" and info.adapter == bundled_adapter and backend.has_adapter
    assert info.memory_parts["weights"] - bare_weights(default_gguf_path) == 4 * adapter_parameter_count(
        bundled_adapter)
    ids = torch.tensor([[1, 50, 300, 7000, 12]])

    def logits():
        with torch.inference_mode():
            return backend.loaded.model(ids)[0, -1]

    worn = logits()
    backend.set_adapter_enabled(False)
    bare = logits()
    backend.set_adapter_enabled(True)
    assert (worn - bare).abs().max() > 1e-2
    torch.testing.assert_close(logits(), worn)
    backend.wear_adapter(other)  # the server's adapter by id: rebuilt over the same compact layers
    assert all(isinstance(layer.base_layer, QuantLinear) for _, layer in lora_layers(backend.loaded.model))
    theirs = logits()
    reference = load_model(default_gguf_path, device="cpu", weights="float32", context_len=256, adapter=other)
    with torch.inference_mode():
        torch.testing.assert_close(theirs, reference.model(ids)[0, -1], rtol=0, atol=1e-4)
    backend.wear_adapter(bundled_adapter)  # held: copied back in place
    torch.testing.assert_close(logits(), worn, rtol=0, atol=1e-6)
    backend.wear_adapter("")
    torch.testing.assert_close(logits(), bare, rtol=0, atol=1e-6)


def bare_weights(path) -> int:
    from chatapp.engine.loader import estimate_model

    return estimate_model(path, device="cpu", context_len=256, weights="int4")["memory_parts"]["weights"]


def test_generate_and_chat_commands_take_an_adapter_with_compact_weights(default_gguf_path, bundled_adapter,
                                                                           capsys):
    from chatapp.cli import main

    common = ["--model", str(default_gguf_path), "--adapter", bundled_adapter, "--temperature", "0",
              "--max-new-tokens", "8", "--threads", "1", "--context", "256"]
    outs = {}
    for weights in ("int4", "float32"):
        code = main(["generate", *common, "--weights", weights, "--prompt", "The capital of France is", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        outs[weights] = json.loads(out)
    assert outs["int4"]["token_ids"] == outs["float32"]["token_ids"] and len(outs["int4"]["token_ids"]) == 8
    import io

    from chatapp.cli import build_parser
    from chatapp.commands.generate import cmd_chat

    texts = {}
    for weights in ("int4", "float32"):
        args = build_parser().parse_args(["chat", *common, "--weights", weights])
        feed, out = iter(["What is the capital of France?", "/exit"]), io.StringIO()
        assert cmd_chat(args, input_fn=lambda prompt: next(feed), out=out) == 0
        texts[weights] = out.getvalue().splitlines()[1]
    assert texts["int4"] == texts["float32"] and texts["int4"].strip()
