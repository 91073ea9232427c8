"""The weights choice in the window: per model in the picker, a default in the settings, each
option's memory and fit shown beside it, the choice saved and passed to the load, and what
auto picked in the status bar."""

from __future__ import annotations

import json

from fake_backend import FakeBackend
from PySide6.QtCore import Qt

MODELS = (("Default", "default"), ("Huge", "huge"))


def _texts(combo):
    return {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}


def _choose(combo, option):
    """As a user does: pick the item (activated is what a click emits)."""
    index = combo.findData(option)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _saved(tmp_path):
    return json.loads((tmp_path / "settings.json").read_text())


def test_picker_shows_each_options_memory_and_fit_from_the_worker(qtbot, make_window):
    backend = FakeBackend()
    window = make_window(backend, load=False, models=MODELS)
    combo = window.header.weights_combo
    qtbot.waitUntil(lambda: "GiB" in combo.itemText(1), timeout=5000)
    texts = _texts(combo)
    # the fake's float32 need is 600 MiB of 8 GiB free; int8 0.3 of it
    assert texts["float32"] == "float32 (exact) · 0.59 GiB · fits"
    assert texts["int8"] == "int8 (compact) · 0.18 GiB · fits"
    assert texts["auto"] == "Automatic: float32 · 0.59 GiB · fits"
    assert combo.option() == "auto"
    assert backend.thread_names == {"worker"}  # the estimate ran off the GUI thread

    window.header.model_combo.setCurrentIndex(1)  # 64 GiB in float32, 8 GiB free
    qtbot.waitUntil(lambda: "64.00 GiB" in combo.itemText(combo.findData("float32")), timeout=5000)
    texts = _texts(combo)
    assert texts["float32"] == "float32 (exact) · 64.00 GiB · does not fit"
    assert texts["int4"] == "int4 (smallest) · 12.80 GiB · does not fit"
    assert texts["auto"].startswith("Automatic: int4 · ")
    red = combo.itemData(combo.findData("float32"), Qt.ForegroundRole)
    assert red is not None and red.color().name() == "#dd3333"
    # the settings' default shows the same fit for the model chosen in the list
    assert _texts(window.settings_panel.weights)["float32"].endswith("does not fit")


def test_tight_is_shown_between_fits_and_does_not_fit(qtbot):
    from chatapp.ui.weights_picker import WeightsCombo

    combo = WeightsCombo()
    qtbot.addWidget(combo)
    gib = 1024**3
    combo.show_fit({"float32": {"bytes": 6 * gib, "fit": "tight"}, "int8": {"bytes": 2 * gib, "fit": "fits"}},
                   auto_pick="int8")
    assert combo.itemText(combo.findData("float32")) == "float32 (exact) · 6.00 GiB · tight"
    assert combo.itemText(combo.findData("auto")) == "Automatic: int8 · 2.00 GiB · fits"
    assert combo.itemData(combo.findData("float32"), Qt.ForegroundRole).color().name() == "#c77c00"
    assert combo.itemData(combo.findData("int8"), Qt.ForegroundRole) is None
    assert combo.itemText(combo.findData("bf16")) == "bf16"  # not estimated: the name alone
    combo.clear_fit()
    assert combo.itemText(combo.findData("float32")) == "float32 (exact)"


def test_choice_is_saved_per_model_and_passed_to_the_load(qtbot, make_window, tmp_path):
    backend = FakeBackend()
    window = make_window(backend, models=MODELS)
    assert backend.load_options[-1].weights == "auto"
    combo = window.header.weights_combo
    _choose(combo, "int8")
    assert _saved(tmp_path)["model_weights"] == {"default": "int8"}
    qtbot.waitUntil(lambda: backend.estimate_options[-1].weights == "int8", timeout=5000)  # estimated again
    window.model.load("default")
    qtbot.waitUntil(lambda: len(backend.load_options) == 2 and window.loading_spec is None, timeout=5000)
    assert backend.load_options[-1].weights == "int8"
    assert window.weights_label.text() == "Weights: int8"
    assert window.weights_label.toolTip() == "weights int8 as asked"

    window.header.model_combo.setCurrentIndex(1)  # another model keeps its own (none: auto)
    assert combo.option() == "auto"
    window.header.model_combo.setCurrentIndex(0)
    assert combo.option() == "int8"

    # a new window on the same settings file remembers it
    second = FakeBackend()
    again = make_window(second, models=MODELS)
    assert again.header.weights_combo.option() == "int8"
    assert second.load_options[-1].weights == "int8"


def test_settings_default_applies_to_models_without_their_own_choice(qtbot, make_window, tmp_path):
    backend = FakeBackend()
    window = make_window(backend, models=MODELS)
    _choose(window.header.weights_combo, "float16")  # "default" has its own choice
    _choose(window.settings_panel.weights, "int4")  # the default for the others
    assert _saved(tmp_path)["weights"] == "int4"
    assert window.settings_panel.weights.option() == "int4"
    window.model.load("huge")
    qtbot.waitUntil(lambda: backend.loads[-1] == "huge" and window.loading_spec is None, timeout=5000)
    assert backend.load_options[-1].weights == "int4"
    window.model.load("default")
    qtbot.waitUntil(lambda: backend.loads[-1] == "default" and window.loading_spec is None, timeout=5000)
    assert backend.load_options[-1].weights == "float16"


def test_status_bar_says_what_auto_picked_and_why(qtbot, make_window):
    window = make_window(FakeBackend())
    assert window.weights_label.text() == "Weights: float32 (automatic)"
    assert window.weights_label.toolTip() == "auto picked float32: 0.56 GiB fits comfortably"
    assert window.statusBar().currentMessage() == "Weights: auto picked float32: 0.56 GiB fits comfortably"


def test_train_tab_trains_lora_over_the_compact_weights_the_chat_loaded(qtbot, make_window, tmp_path):
    backend = FakeBackend()
    window = make_window(backend, models=MODELS)
    form = window.training_panel.form
    assert form.job("default", [tmp_path], tmp_path / "out").weights == "float"
    _choose(window.header.weights_combo, "int4")
    window.model.load("default")
    qtbot.waitUntil(lambda: len(backend.loads) == 2 and window.loading_spec is None, timeout=5000)
    job = form.job("default", [tmp_path], tmp_path / "out")
    argv = job.to_argv()
    assert job.weights == "int4" and argv[argv.index("--weights") + 1] == "int4"
    assert "int4: LoRA trains over the compact weights" in form.base_label.text()
    form.method.setCurrentIndex(form.method.findData("full"))  # full fine-tuning needs float weights
    assert form.job("default", [tmp_path], tmp_path / "out").weights == "float"


def test_the_estimate_of_the_loaded_model_counts_the_adapter_it_wears(qtbot, make_window, tmp_path):
    """Its next load keeps the adapter (a compact base wears one as a float one does), so the picker's
    memory for it includes the adapter; another model's estimate does not."""
    backend = FakeBackend()
    window = make_window(backend, models=MODELS)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    window.model.load("default", adapter=str(adapter))
    qtbot.waitUntil(lambda: len(backend.loads) == 2 and window.loading_spec is None, timeout=5000)
    _choose(window.header.weights_combo, "int4")
    qtbot.waitUntil(lambda: backend.estimate_options[-1].weights == "int4", timeout=5000)
    assert backend.estimate_options[-1].adapter == str(adapter)
    window.model.estimate("huge")
    qtbot.waitUntil(lambda: backend.estimate_options[-1].weights != "int4", timeout=5000)
    assert backend.estimate_options[-1].adapter is None
