"""The same checks on every device this machine has: the CPU always, CUDA and Apple MPS where present.

Each test runs once per device in DEVICES (nothing is skipped: a device that is absent is simply
not in the list), in the dtype the app picks for it (float32 on the CPU, bf16 on CUDA GPUs that
have it). On a CPU-only machine they check the CPU path and the tests themselves; on a GPU
machine the same file checks the GPU path:

    .venv/bin/python -m pytest tests/test_devices.py -v
"""

from __future__ import annotations

import pytest
import torch

from helpers.tiny_hf import tiny_llama_folder, write_corpus

from chatapp.engine.device import default_dtype  # noqa: E402
from chatapp.engine.generate import Engine  # noqa: E402
from chatapp.engine.loader import load_model  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.model.linear import configure_fast_paths  # noqa: E402
from chatapp.model.lora import LoRAConfig, lora_state_dict  # noqa: E402
from chatapp.training.prepare import prepare_blocks, read_sources  # noqa: E402
from chatapp.training.trainer import TrainConfig, Trainer  # noqa: E402

pytest.importorskip("transformers")

DEVICES = ["cpu"]
if torch.cuda.is_available():
    DEVICES.append("cuda")
if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    DEVICES.append("mps")

# Logit tolerance against the float32 CPU reference, by compute dtype.
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 0.15, torch.float16: 0.05}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_llama_folder(tmp_path_factory.mktemp("devices") / "model", dim=64, layers=2)


@pytest.fixture(scope="module")
def reference(folder):
    """Float32 CPU logits of a fixed prompt: what every device is compared with."""
    loaded = load_model(folder, device="cpu", dtype=torch.float32)
    tokens = torch.arange(3, 40).remainder(loaded.config.vocab_size)[None]  # (1, 37)
    with torch.inference_mode():
        return tokens, loaded.model(tokens).float()


@pytest.mark.parametrize("device", DEVICES)
def test_model_loads_in_the_devices_dtype_and_matches_the_cpu(device, folder, reference):
    loaded = load_model(folder, device=device)
    dtype = default_dtype(torch.device(device))
    assert loaded.dtype == dtype and next(loaded.model.parameters()).dtype == dtype
    assert next(loaded.model.parameters()).device.type == device
    tokens, expected = reference
    with torch.inference_mode():
        logits = loaded.model(tokens.to(device)).float().cpu()
    assert (logits - expected).abs().max() <= TOLERANCE[dtype]


@pytest.mark.parametrize("device", DEVICES)
def test_cached_decode_equals_one_full_pass(device, folder, reference):
    loaded = load_model(folder, device=device)
    model, dtype = loaded.model, loaded.dtype
    tokens, _ = reference
    tokens = tokens.to(device)
    configure_fast_paths(model, decode_split=torch.get_num_threads(), onednn=True, column_major=True)
    model.setup_cache(batch_size=1, max_seq_len=64)
    with torch.inference_mode():
        full = model(tokens).float()
        model.setup_cache(batch_size=1, max_seq_len=64)
        prefix = model(tokens[:, :30], torch.arange(30, device=device)).float()
        steps = [model(tokens[:, i:i + 1], torch.arange(i, i + 1, device=device)).float()
                 for i in range(30, tokens.shape[1])]
    stepped = torch.cat([prefix] + steps, dim=1)
    assert (stepped - full).abs().max().item() <= TOLERANCE[dtype]


@pytest.mark.parametrize("device", DEVICES)
def test_engine_streams_a_greedy_reply(device, folder):
    loaded = load_model(folder, device=device)
    engine = Engine(loaded.model, loaded.tokenizer, context_len=96)
    engine.eos_ids = set()  # a random model: run to the token limit
    prompt = loaded.tokenizer.encode("the cat sat on the mat")
    settings = SamplingSettings(temperature=0.0, max_new_tokens=12)
    first = list(engine.generate_ids(prompt, settings))
    engine.reset()
    again = list(engine.generate_ids(prompt, settings))
    assert len(first) == 12 and first == again  # greedy: the same reply twice
    assert all(0 <= t < loaded.config.vocab_size for t in first)
    stats = engine.reply.stats
    assert stats.new_tokens == 12 and stats.decode_tok_s > 0
    if loaded.dtype == torch.float32:  # the same tokens as on the CPU
        cpu = load_model(folder, device="cpu", dtype=torch.float32)
        cpu_engine = Engine(cpu.model, cpu.tokenizer, context_len=96)
        cpu_engine.eos_ids = set()
        assert list(cpu_engine.generate_ids(prompt, settings)) == first


@pytest.mark.parametrize("device", DEVICES)
def test_lora_training_lowers_the_loss_and_keeps_checkpoints_on_the_cpu(device, folder, tmp_path):
    loaded = load_model(folder, device=device, dtype=torch.float32)  # float32 master weights, as `train`
    docs = write_corpus(tmp_path / "docs", n_docs=8, sentences_per_doc=20)
    data = prepare_blocks(read_sources([str(docs)]), loaded.tokenizer, block_size=32, val_fraction=0.25, seed=0)
    config = TrainConfig(lr=1e-2, warmup_steps=0, max_steps=12, batch_size=4, eval_every=0, block_size=32,
                         lora=LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    result = Trainer(loaded.model, config, data.train, data.val, tmp_path / "ckpt").fit()
    assert result.reason == "completed" and result.step == 12
    assert result.evals[-1]["val_loss"] < result.evals[0]["val_loss"]
    assert all(t.device.type == device for t in lora_state_dict(loaded.model).values())
    from chatapp.training.checkpoint import load_checkpoint
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.trainable and all(t.device.type == "cpu" for t in ckpt.trainable.values())


# Compact (int8 / int4) weights on each device: the CPU here, CUDA where a GPU is (skipped only
# for lack of one). On CUDA the products dequantize on the fly on the device (engine.loader.products_mode:
# eager unless CHATAPP_QUANT_COMPILE=1), float32 compute; nothing may fall back to the CPU.
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
COMPACT_DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


@pytest.fixture
def eager_on_cpu(monkeypatch):
    """The CPU's default would compile each shape (a minute); eager is what CUDA runs by default."""
    from chatapp.model.quant import set_products

    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")
    yield
    set_products("eager")


def _compact_parts(model):
    from chatapp.model.quant import QuantEmbedding, QuantLinear

    return [t for m in model.modules() if isinstance(m, (QuantLinear, QuantEmbedding))
            for t in (m.qweight, m.scales, m.mins) if t is not None]


@pytest.mark.parametrize("kind", ["int8", "int4"])
@pytest.mark.parametrize("device", COMPACT_DEVICES)
def test_compact_weights_stay_compact_on_the_device_and_match_the_cpu(device, kind, folder, eager_on_cpu):
    from chatapp.model.quant import weights_kind

    cpu = load_model(folder, device="cpu", weights=kind)
    loaded = load_model(folder, device=device, weights=kind)
    parts = _compact_parts(loaded.model)
    assert loaded.weights == kind and weights_kind(loaded.model).startswith(kind)
    assert parts and all(t.device.type == device for t in parts)
    # codes and scales (bfloat16 a row for int8 on the CPU, model/int8_rows.py), no float32 copy
    assert {t.dtype for t in parts} <= {torch.int8, torch.uint8, torch.float16, torch.bfloat16}
    assert all(t.device.type == device for t in loaded.model.state_dict().values())
    tokens = torch.arange(3, 40).remainder(loaded.config.vocab_size)[None]  # (1, 37)
    loaded.model.setup_cache(batch_size=1, max_seq_len=64)
    with torch.inference_mode():
        expected = cpu.model(tokens).float()
        full = loaded.model(tokens.to(device)).float().cpu()
        prefix = loaded.model(tokens[:, :30].to(device), torch.arange(30, device=device)).float().cpu()
        steps = [loaded.model(tokens[:, i:i + 1].to(device), torch.arange(i, i + 1, device=device)).float().cpu()
                 for i in range(30, tokens.shape[1])]  # one row at a time: decode's compact product
    assert (full - expected).abs().max() <= 1e-3
    stepped = torch.cat([prefix] + steps, dim=1)
    if getattr(loaded.model.lm_head, "rowwise", False):
        # int8 on the CPU decodes through torch's int8 kernel, rows and outputs in bfloat16
        # (model/int8_rows.py; 0.3% a product): the steps' logits within 1% of the float32 blocks'
        assert (stepped[:, :30] - full[:, :30]).abs().max() <= 1e-3  # the prefix: float32 blocks
        assert ((stepped[:, 30:] - full[:, 30:]).norm() / full[:, 30:].norm()).item() < 0.01
    else:
        assert (stepped - full).abs().max() <= 1e-3


@pytest.mark.parametrize("device", COMPACT_DEVICES)
def test_compact_base_with_an_adapter_replies_as_on_the_cpu(device, folder, tmp_path, eager_on_cpu):
    from chatapp.model.lora import apply_lora, lora_layers
    from chatapp.weights.peft_adapter import save_adapter

    plain = load_model(folder, device="cpu", dtype=torch.float32)
    config = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    apply_lora(plain.model, config)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for _, layer in lora_layers(plain.model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.3)
    adapter = save_adapter(plain.model, config, tmp_path / "adapter", "tiny")
    replies = []
    for where in ("cpu", device):
        loaded = load_model(folder, device=where, weights="int4", adapter=adapter)
        assert all(t.device.type == where and t.dtype == torch.float32 for t in lora_state_dict(loaded.model).values())
        engine = Engine(loaded.model, loaded.tokenizer, context_len=96)
        engine.eos_ids = set()
        prompt = loaded.tokenizer.encode("the cat sat on the mat")
        replies.append(list(engine.generate_ids(prompt, SamplingSettings(temperature=0.0, max_new_tokens=12))))
    assert replies[0] == replies[1] and len(replies[0]) == 12


@pytest.mark.parametrize("device", COMPACT_DEVICES)
def test_lora_trains_over_a_compact_base_on_the_device(device, folder, tmp_path, eager_on_cpu):
    loaded = load_model(folder, device=device, weights="int8")
    held = [t.clone() for t in _compact_parts(loaded.model)]
    docs = write_corpus(tmp_path / "docs", n_docs=8, sentences_per_doc=20)
    data = prepare_blocks(read_sources([str(docs)]), loaded.tokenizer, block_size=32, val_fraction=0.25, seed=0)
    config = TrainConfig(lr=1e-2, warmup_steps=0, max_steps=12, batch_size=4, eval_every=0, block_size=32,
                         lora=LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    result = Trainer(loaded.model, config, data.train, data.val, tmp_path / "ckpt").fit()
    assert result.reason == "completed" and result.evals[-1]["val_loss"] < result.evals[0]["val_loss"]
    assert all(t.device.type == device for t in lora_state_dict(loaded.model).values())
    assert all(torch.equal(a, b) for a, b in zip(held, _compact_parts(loaded.model)))  # the base never moved


@CUDA
@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_compiled_products_asked_for_on_cuda_run_or_fall_back_on_the_device(kind, folder, monkeypatch):
    """CHATAPP_QUANT_COMPILE=1 on CUDA: the warm-up runs each shape with its input on the GPU, and a
    compiler that fails there (no triton) leaves eager products on the device, not a crash."""
    from chatapp.model.quant import set_products

    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "1")
    try:
        loaded = load_model(folder, device="cuda", weights=kind)
        tokens = torch.arange(3, 40).remainder(loaded.config.vocab_size)[None]
        loaded.model.setup_cache(batch_size=1, max_seq_len=64)
        with torch.inference_mode():
            full = loaded.model(tokens.cuda()).float().cpu()
            loaded.model(tokens[:, :36].cuda(), torch.arange(36, device="cuda"))
            last = loaded.model(tokens[:, 36:].cuda(), torch.arange(36, 37, device="cuda")).float().cpu()
        assert (last[0, -1] - full[0, -1]).abs().max() <= 1e-3
    finally:
        set_products("eager")
