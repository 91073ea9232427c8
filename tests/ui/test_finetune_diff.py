"""What the fine-tune changed, in the window: a text scored in the generation worker with the
adapter off and on (a real tiny model with a LoRA adapter), coloured by the difference, with
progress, cancel and both perplexities."""

from __future__ import annotations

import math
import re

import pytest
import torch

from helpers.tiny_hf import tiny_llama_folder

from chatapp.engine.backend import ChatBackend, LoadOptions
from chatapp.engine.token_scores import TokenScore
from chatapp.ui.finetune_diff import CHANGE_BANDS, FineTuneDiffController, FineTuneDiffView, change_colour

pytest.importorskip("transformers")

TEXT = "the cat sat on the mat and the dog ran far away " * 4


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A tiny model and a LoRA adapter whose B matrices are not zero (it changes the model)."""
    from chatapp.engine.loader import load_model
    from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
    from chatapp.weights.peft_adapter import save_adapter

    root = tmp_path_factory.mktemp("diff")
    model = tiny_llama_folder(root / "model")
    loaded = load_model(model, device="cpu", check_memory=False)
    config = LoRAConfig(r=4, target_modules=["q_proj", "v_proj"])
    apply_lora(loaded.model, config)
    torch.manual_seed(1)
    for _, layer in lora_layers(loaded.model):
        torch.nn.init.normal_(layer.lora_B, std=0.5)
    return model, save_adapter(loaded.model, config, root / "adapter", base_model_name=str(model))


@pytest.fixture
def scoring(qtbot, tuned):
    from chatapp.ui.worker import WorkerThread

    model, adapter = tuned
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(device="cpu", context_len=128, threads=1, adapter=str(adapter)))
    worker = WorkerThread(backend)
    view = FineTuneDiffView()
    qtbot.addWidget(view)
    controller = FineTuneDiffController(view, worker)
    yield view, controller, backend
    worker.shutdown()


def test_the_colours_and_numbers_are_the_two_models_log_probabilities(qtbot, scoring):
    view, _controller, backend = scoring
    view.set_text(TEXT)
    progress = []
    view.progress.valueChanged.connect(progress.append)
    view.score_button.click()
    assert view.running and not view.score_button.isEnabled() and view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not view.running, timeout=30000)
    scores = view.scores
    ids = backend.loaded.tokenizer.encode(TEXT)
    assert [s.id for s in scores] == ids[1:]
    # checked against plain forward passes with the adapter off and on
    from chatapp.model.lora import set_lora_enabled
    model = backend.loaded.model
    expected = {}
    for on in (False, True):
        set_lora_enabled(model, on)
        model.setup_cache(1, 128)
        with torch.no_grad():
            logits = model(torch.tensor([ids]), torch.arange(len(ids)))[0]
        rows = torch.log_softmax(logits.float(), dim=-1)
        expected[on] = [float(rows[i, t]) for i, t in enumerate(ids[1:])]
    assert [s.logprob_base for s in scores] == pytest.approx(expected[False], abs=1e-4)
    assert [s.difference for s in scores] == pytest.approx(
        [b - a for a, b in zip(expected[False], expected[True])], abs=1e-4)
    base_ppl = math.exp(-sum(expected[False]) / len(scores))
    tuned_ppl = math.exp(-sum(expected[True]) / len(scores))
    assert f"base model {base_ppl:.2f}, with the adapter {tuned_ppl:.2f}" in view.summary.text()
    html = view.text.toHtml().lower()
    assert len(re.findall(r'<a href="#\d+"', html)) == len(scores)
    for s in scores:
        assert change_colour(s.difference) in html
    assert progress and max(progress) == 2 * len(scores)
    view._show_token(3)
    assert f"change {scores[3].difference:+.3f}" in view.details.text()
    # the chat's engine works after scoring: its cache is back and its prefix forgotten
    assert backend.engine.cached_tokens == 0 and model.cache_len == 128


def test_scoring_can_be_cancelled(qtbot, scoring):
    view, controller, backend = scoring
    view.set_text(TEXT * 6)  # windows of the 128-token context, chunk after chunk
    controller.worker_thread.worker.score_progress.connect(controller.cancel)  # cancel at the first chunk
    view.score_button.click()
    qtbot.waitUntil(lambda: not view.running, timeout=30000)
    assert view.summary.text() == "Scoring was cancelled." and view.scores == []
    assert view.score_button.isEnabled()


def test_change_bands_and_surprise_mode(qtbot):
    assert [change_colour(d) for d in (2.0, 0.5, 0.0, -0.5, -3.0)] == [c for _, c in CHANGE_BANDS]
    view = FineTuneDiffView()
    qtbot.addWidget(view)
    view.show_scores([TokenScore(0, 5, "a", math.log(0.5), math.log(0.95)), TokenScore(1, 6, "b", math.log(0.01), math.log(0.02))])
    assert "log p(adapter) − log p(base)" in view.legend.text()
    view.mode.setCurrentIndex(2)  # surprise with the adapter: its probability's band
    assert "#b7e4c7" in view.text.toHtml().lower()
