"""ChatBackend.wear_adapter: another adapter of the loaded model put on and taken off without a
reload, each swap computing what a model loaded with that adapter computes (held adapters
copied in place, or the LoRA layers rebuilt for another shape; a changed file read again)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")  # the tiny model is written with save_pretrained

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.model.lora import LoRAConfig, apply_lora, has_lora, lora_layers  # noqa: E402
from chatapp.weights.peft_adapter import save_adapter  # noqa: E402


def adapter(model_folder, out, seed: int, r: int = 4, targets=("q_proj", "v_proj")):
    from chatapp.engine.loader import load_model

    model = load_model(model_folder, device="cpu").model
    config = LoRAConfig(r=r, alpha=2 * r, target_modules=list(targets))
    apply_lora(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.5)
    return str(save_adapter(model, config, out, str(model_folder)))


def logits(backend) -> torch.Tensor:
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        return backend.loaded.model(ids)[0, -1]


def loaded_with(model_folder, folder) -> torch.Tensor:
    backend = ChatBackend()
    backend.load(str(model_folder), LoadOptions(context_len=64, threads=1, adapter=folder or None))
    return logits(backend)


def test_wearing_adapters_in_turn_computes_as_loading_with_each(tmp_path):
    model = tiny_llama_folder(tmp_path / "model", max_len=64)
    a = adapter(model, tmp_path / "a", seed=1)
    b = adapter(model, tmp_path / "b", seed=2)  # shaped like a: copied into a's layers
    c = adapter(model, tmp_path / "c", seed=3, r=2, targets=("k_proj", "up_proj"))  # layers rebuilt
    expected = {f: loaded_with(model, f) for f in ("", a, b, c)}
    assert not torch.allclose(expected[a], expected[b]) and not torch.allclose(expected[""], expected[c])
    backend = ChatBackend()
    info = backend.load(str(model), LoadOptions(context_len=64, threads=1, adapter=a))
    for folder in (b, a, c, b, "", a, c, a):  # each read once, then held
        backend.wear_adapter(folder)
        assert backend.worn_adapter == folder and has_lora(backend.loaded.model) == bool(folder)
        torch.testing.assert_close(logits(backend), expected[folder], atol=1e-5, rtol=1e-5)
    assert info.adapter == a and backend.info.adapter == a  # the model's own adapter is still named
    changed = adapter(model, tmp_path / "b", seed=4)  # b's file rewritten: read again, not the held copy
    assert changed == b
    backend.wear_adapter(b)
    torch.testing.assert_close(logits(backend), loaded_with(model, b), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits(backend), expected[b])
    import shutil
    shutil.rmtree(a)  # the model's own adapter deleted while another is worn: its held copy goes back on
    backend.wear_adapter(a)
    torch.testing.assert_close(logits(backend), expected[a], atol=1e-5, rtol=1e-5)


def test_an_adapter_for_another_model_leaves_the_worn_one_on(tmp_path):
    from chatapp.errors import ModelLoadError

    model = tiny_llama_folder(tmp_path / "model", max_len=64)
    other = tiny_llama_folder(tmp_path / "other", max_len=64, dim=48)
    a = adapter(model, tmp_path / "a", seed=1)
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(context_len=64, threads=1, adapter=a))
    before = logits(backend)
    with pytest.raises((ModelLoadError, OSError)):
        backend.wear_adapter(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError):
        backend.wear_adapter(adapter(other, tmp_path / "x", seed=2))
    assert backend.worn_adapter == a
    torch.testing.assert_close(logits(backend), before)
