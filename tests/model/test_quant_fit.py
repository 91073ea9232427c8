"""The memory estimate of each weights option (engine/weights_option.py) against what a model
really holds, what auto picks, and fits / tight / does not fit."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine.weights_option import (WeightsOptionError, choose_weights, estimate_for_option, fit_table,
                                           fit_word)
from chatapp.model import ModelConfig, Transformer
from chatapp.model.quant import quantize_state, tensor_bytes
from chatapp.weights.build import build_model

GIB = 1024**3


def config() -> ModelConfig:
    return ModelConfig(arch="llama", vocab_size=256, dim=128, n_layers=2, n_heads=4, n_kv_heads=2,
                       intermediate_size=256, max_seq_len=64, tie_embeddings=True)


@pytest.mark.parametrize("option", ["float32", "int8", "int4"])
def test_weight_estimate_matches_the_bytes_a_built_model_holds(option):
    cfg = config()
    state = {k: v for k, v in Transformer(cfg).state_dict().items() if k != "lm_head.weight"}
    if option != "float32":
        state = quantize_state(state, option)
    held = tensor_bytes(build_model(cfg, state))
    estimate = estimate_for_option(cfg, 64, option)
    assert estimate.weights_bytes == pytest.approx(held, rel=0.05)
    assert estimate.total_bytes > estimate.weights_bytes + estimate.kv_cache_bytes  # working memory too


def test_fit_words():
    assert fit_word(50, 100) == "fits"
    assert fit_word(90, 100) == "tight"
    assert fit_word(101, 100) == "does not fit"
    assert fit_word(10**15, None) == "fits"  # unknown free memory: the loader tries


def test_compiled_products_add_the_compilers_memory_to_compact_options(monkeypatch):
    from chatapp.engine.weights_option import COMPILED_PRODUCTS_BYTES
    from chatapp.model import quant_products

    cfg = config()
    # the Q8_0 / Q4_1 forms run compiled products; torch's int8/int4 kernel forms none (below)
    monkeypatch.setenv("CHATAPP_INT8_PACK", "0")
    monkeypatch.setenv("CHATAPP_INT4_PACK", "0")
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")
    eager = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("float32", "int8", "int4")}
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "1")
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: "/usr/bin/" + name)
    compiled = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("float32", "int8", "int4")}
    assert compiled["float32"] == eager["float32"]
    assert compiled["int8"] - eager["int8"] == compiled["int4"] - eager["int4"] == COMPILED_PRODUCTS_BYTES
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: None)  # no compiler: eager
    assert estimate_for_option(cfg, 64, "int8").total_bytes == eager["int8"]


def test_torchs_kernel_forms_add_no_compiler_memory(monkeypatch):
    """int8 per row and int4 packed (with its vocabulary per row) compile no product, and the loader
    then probes no compiler (needs_products): the estimate adds nothing for it."""
    from chatapp.model import int4_rows, int8_rows, quant_products

    if not (int8_rows.in_use() and int4_rows.in_use()):
        pytest.skip("torch's int8/int4 kernels are not usable on this machine")
    cfg = config()
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")
    eager = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("int8", "int4")}
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "1")
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: "/usr/bin/" + name)
    assert {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("int8", "int4")} == eager


def test_a_model_all_in_kernel_forms_needs_no_products():
    from chatapp.model.quant import QuantLinear, needs_products

    model = torch.nn.Sequential(QuantLinear.__new__(QuantLinear), QuantLinear.__new__(QuantLinear))
    for m, (rowwise, packed4) in zip(model, ((True, False), (False, True))):
        torch.nn.Module.__init__(m)
        m.rowwise, m.packed4 = rowwise, packed4
    assert not needs_products(model)
    model[1].packed4 = False  # one layer left in the Q4_1 form
    assert needs_products(model)


def test_a_compiled_decode_step_adds_its_memory_to_every_option_on_the_cpu(monkeypatch):
    from chatapp.engine.weights_option import COMPILED_STEP_BYTES
    from chatapp.model import quant_products

    cfg = config()
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")  # products eager: the step's memory alone
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setenv("CHATAPP_DECODE_COMPILE", "0")
    eager = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("float32", "int8", "int4")}
    monkeypatch.delenv("CHATAPP_DECODE_COMPILE")  # the loader's default: compiled where a compiler is
    step = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("float32", "int8", "int4")}
    assert all(step[o] - eager[o] == COMPILED_STEP_BYTES for o in eager)
    assert estimate_for_option(cfg, 64, "float32", device_type="cuda").total_bytes == eager["float32"]
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: None)  # no compiler: eager step
    assert estimate_for_option(cfg, 64, "float32").total_bytes == eager["float32"]


def moe_config() -> ModelConfig:
    return ModelConfig(arch="qwen3_moe", vocab_size=256, dim=128, n_layers=2, n_heads=4, n_kv_heads=2,
                       intermediate_size=256, moe_intermediate_size=64, max_seq_len=64, n_experts=4,
                       n_experts_per_tok=2)


@pytest.mark.parametrize("forced", [None, "1"])
def test_models_the_loader_runs_eagerly_add_no_compiled_step(monkeypatch, forced):
    """A mixture of experts never compiles (even forced: the loader's DecodeStep refuses it): the
    estimate asks the loader's question. A load wearing an adapter compiles (LoRA is in the graph)."""
    from chatapp.engine.weights_option import COMPILED_STEP_BYTES
    from chatapp.model import decode_step, quant_products

    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")
    monkeypatch.setattr(quant_products.shutil, "which", lambda name: "/usr/bin/" + name)
    moe = moe_config()
    assert decode_step.unsupported_reason(moe) == decode_step.unsupported_reason(Transformer(moe))
    assert "mixture-of-experts" in decode_step.unsupported_reason(moe)
    assert decode_step.unsupported_reason(config()) is decode_step.unsupported_reason(Transformer(config())) is None
    monkeypatch.setenv("CHATAPP_DECODE_COMPILE", "0")
    eager = {name: estimate_for_option(cfg, 64, "int8").total_bytes for name, cfg in (("dense", config()),
                                                                                      ("moe", moe))}
    with_adapter = estimate_for_option(config(), 64, "int8", adapter_params=1000).total_bytes
    if forced is None:
        monkeypatch.delenv("CHATAPP_DECODE_COMPILE")
    else:
        monkeypatch.setenv("CHATAPP_DECODE_COMPILE", forced)
    assert estimate_for_option(config(), 64, "int8").total_bytes - eager["dense"] == COMPILED_STEP_BYTES
    assert estimate_for_option(moe, 64, "int8").total_bytes == eager["moe"]
    assert estimate_for_option(config(), 64, "int8", adapter_params=1000).total_bytes - with_adapter == (
        COMPILED_STEP_BYTES)


def test_training_loads_its_models_without_compiling_a_decode_step():
    """Training never decodes with its copy, and the knowledge recipe's ~40 answers cost less
    eager than a compile would: both ask the loader for the eager step."""
    import inspect

    from chatapp.training import knowledge, run

    for module in (run, knowledge):
        calls = [line for line in inspect.getsource(module).splitlines() if "load_model(" in line
                 and "import" not in line]
        assert calls and all('decode_step="eager"' in line for line in calls), (module.__name__, calls)


def test_auto_keeps_float32_when_it_fits_comfortably_else_the_most_precise_that_fits(monkeypatch):
    monkeypatch.setenv("CHATAPP_QUANT_COMPILE", "0")  # eager products: a tiny model's sizes, no compiler beside
    cfg, cpu = config(), torch.device("cpu")
    sizes = {o: estimate_for_option(cfg, 64, o).total_bytes for o in ("float32", "int8", "int4")}
    assert sizes["float32"] > sizes["int8"] > sizes["int4"]
    assert choose_weights("auto", cfg, 64, cpu, sizes["float32"] * 2).option == "float32"
    picked = choose_weights("auto", cfg, 64, cpu, int(sizes["int8"] / 0.69))
    assert picked.option == "int8" and "auto picked int8" in picked.reason and "float32 would not" in picked.reason
    assert choose_weights("auto", cfg, 64, cpu, sizes["int4"] + 1).option == "int4"
    assert choose_weights("int8", cfg, 64, cpu, 1).option == "int8"  # asked for: no second guess
    assert choose_weights("bf16", cfg, 64, cpu, None).dtype == torch.bfloat16
    with pytest.raises(WeightsOptionError, match="int3"):
        choose_weights("int3", cfg, 64, cpu, None)


def test_fit_table_has_every_option():
    table = fit_table(config(), 64, free_bytes=GIB)
    assert set(table) == {"float32", "bf16", "float16", "int8", "int4"}
    assert all(row["fit"] == "fits" for row in table.values())


def test_tensor_bytes_leaves_the_kv_cache_out():
    cfg = config()
    model = build_model(cfg, {k: v for k, v in Transformer(cfg).state_dict().items() if k != "lm_head.weight"})
    before = tensor_bytes(model)
    model.setup_cache(1, 64)
    assert tensor_bytes(model) == before


def test_a_folder_without_an_adapter_is_refused_before_the_weights_are_read(default_gguf_path, tmp_path,
                                                                          monkeypatch):
    """Adapters go on compact weights (tests/engine/test_adapter_compact.py); a folder that holds
    none is refused while the estimate counts it, before any weight is read."""
    from chatapp.engine import loader
    from chatapp.errors import MissingFileError

    monkeypatch.setattr(loader, "load_gguf_state_dict", lambda *a, **k: pytest.fail("weights were read"))
    with pytest.raises(MissingFileError, match="has no adapter_config.json"):
        loader.load_model(default_gguf_path, device="cpu", weights="int4", adapter=tmp_path)


def test_estimate_says_what_auto_would_pick_whatever_was_asked(default_gguf_path):
    from chatapp.engine.loader import estimate_model

    asked = estimate_model(default_gguf_path, device="cpu", context_len=512, weights="int4")
    auto = estimate_model(default_gguf_path, device="cpu", context_len=512)
    assert asked["weights"] == "int4" and asked["auto_weights"] == auto["weights"]
    assert auto["auto_weights"] == auto["weights"]
    assert set(asked["options"]) == {"float32", "bf16", "float16", "int8", "int4"}
