"""The chat-first window: header (model picker with estimates, system prompt), settings drawer,
sampling presets with "Custom", the collapsible conversation list, and every shortcut kept."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from chatapp.sampling_settings import PRESETS, default
from fake_backend import FakeBackend


@pytest.fixture
def open_window(make_window):
    """make(models, backend) -> a shown window over the test's profile (a second call: a restart)."""

    def make(models=(("Default", "default"),), backend=None):
        window = make_window(backend or FakeBackend(), models=models)
        window.resize(1200, 780)
        window.show()
        return window

    return make


def _saved(tmp_path) -> dict:
    return json.loads((tmp_path / "settings.json").read_text(encoding="utf-8"))


def test_the_conversation_comes_first_and_the_drawer_opens_on_demand(qtbot, open_window, tmp_path):
    window = open_window()
    assert window.header.isVisible() and window.chat.isVisible()
    assert not window.drawer.isVisible() and window.splitter.sizes()[2] == 0  # no settings form at start
    assert window.settings_action.shortcut() == QKeySequence("Ctrl+,")
    qtbot.mouseClick(window.header.settings_button, Qt.LeftButton)  # the header's button
    assert window.drawer.isVisible() and window.settings_action.isChecked()
    assert window.splitter.sizes()[2] >= 200 and window.chat.width() >= 300
    window.settings_panel.context_len.setValue(2048)
    window.settings_panel.temperature.setValue(0.35)
    qtbot.mouseClick(window.drawer.close_button, Qt.LeftButton)
    assert not window.drawer.isVisible() and not window.header.settings_button.isChecked()
    window.settings_action.trigger()  # the menu item / Ctrl+,
    assert window.drawer.isVisible()
    saved = _saved(tmp_path)
    assert (saved["context_len"], saved["temperature"]) == (2048, 0.35)
    assert not any("drawer" in key for key in saved)  # its being open is not a setting
    window.close()

    again = open_window()
    assert not again.drawer.isVisible()  # opens closed, whatever it was at the last close
    assert (again.settings_panel.context_len.value(), again.settings_panel.temperature.value()) == (2048, 0.35)


def test_presets_set_the_fields_and_an_edit_shows_custom(qtbot, open_window, tmp_path):
    window = open_window()
    panel = window.settings_panel
    assert panel.preset_name() == "balanced"  # the defaults are the Balanced preset
    assert panel.preset.currentText() == "Balanced"
    assert not panel.advanced.isVisibleTo(panel)  # the fields are under Advanced
    panel.advanced_button.click()
    assert panel.advanced.isVisibleTo(panel)

    panel.preset.activated.emit(panel.preset.findData("precise"))  # as a user picking it
    panel.preset.setCurrentIndex(panel.preset.findData("precise"))
    assert {name: spin.value() for name, spin in panel.sampling_fields().items()} == pytest.approx(PRESETS["precise"])
    assert panel.preset.currentText() == "Precise"
    assert _saved(tmp_path)["temperature"] == PRESETS["precise"]["temperature"]  # saved like any edit

    panel.temperature.setValue(0.55)  # the user edits one field
    assert panel.preset_name() == "" and panel.preset.currentText() == "Custom"
    assert panel.top_k.value() == PRESETS["precise"]["top_k"]  # the other fields stay
    panel.preset.activated.emit(panel.preset.findData(""))  # choosing "Custom" changes nothing
    assert panel.temperature.value() == 0.55

    panel.preset.activated.emit(panel.preset.findData("creative"))
    assert panel.temperature.value() == PRESETS["creative"]["temperature"] and panel.preset_name() == "creative"
    window.close()
    again = open_window()
    assert again.settings_panel.preset_name() == "creative"  # read back from the values, not stored twice
    assert "preset" not in json.dumps(_saved(tmp_path))


def test_a_reply_uses_the_preset_values(qtbot, open_window):
    backend = FakeBackend()
    window = open_window(backend=backend)
    panel = window.settings_panel
    panel.preset.activated.emit(panel.preset.findData("precise"))
    window.composer.setPlainText("hello")
    window.send()
    qtbot.waitUntil(lambda: not window.streaming and bool(backend.calls), timeout=20000)  # the first reply imports torch
    sampling = backend.calls[-1]["settings"]
    assert (sampling.temperature, sampling.top_k) == (PRESETS["precise"]["temperature"], PRESETS["precise"]["top_k"])


def test_the_conversation_list_collapses_and_stays_so_after_a_restart(qtbot, open_window, tmp_path):
    window = open_window()
    assert window.conversations.isVisible() and window.list_action.isChecked()
    assert window.list_action.shortcut() == QKeySequence("Ctrl+B")
    qtbot.mouseClick(window.header.list_button, Qt.LeftButton)
    assert not window.conversations.isVisible() and not window.list_action.isChecked()
    assert _saved(tmp_path)["conversations_visible"] is False
    window.close()

    again = open_window()
    assert not again.conversations.isVisible() and not again.list_action.isChecked()
    again.list_action.trigger()  # Ctrl+B
    assert again.conversations.isVisible() and _saved(tmp_path)["conversations_visible"] is True


def test_the_header_picker_shows_estimates_and_loads_a_model(qtbot, open_window, tmp_path):
    backend = FakeBackend()
    window = open_window(models=(("Default", "default"), ("Other", "other"), ("Huge", "huge")), backend=backend)
    combo = window.header.model_combo
    qtbot.waitUntil(lambda: combo.itemText(0) == "Default · 0.59 GiB", timeout=5000)  # the current one at start
    assert combo.itemText(2) == "Huge"  # the others are estimated when the list opens
    combo.showPopup()
    # auto on a model that fits in no option: int4, the smallest (12.8 GiB of the 8 GiB free)
    qtbot.waitUntil(lambda: combo.itemText(2) == "Huge · 12.80 GiB, will not fit", timeout=5000)
    combo.hidePopup()
    assert combo.itemText(1) == "Other · 0.59 GiB"
    assert "weights" in combo.itemData(2, Qt.ToolTipRole) or "GiB" in combo.itemData(2, Qt.ToolTipRole)

    combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "Before loading: Fake-other" in window.header.estimate_label.text(), timeout=5000)
    assert window.header.estimate_label.isVisibleTo(window)
    qtbot.mouseClick(window.header.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.model_info is not None and window.model_info.name == "Fake-other", timeout=5000)
    assert backend.loads[-1] == "other" and _saved(tmp_path)["model"] == "other"
    assert "Fake-other" in window.header.model_status.text()
    assert not window.header.estimate_label.isVisibleTo(window)  # the estimate was for before loading
    assert window.model.display_name("other") == "Other"  # the estimate is not part of the model's name


def test_a_new_context_length_estimates_again(qtbot, open_window):
    backend = FakeBackend()
    asked = []
    estimate = backend.estimate
    backend.estimate = lambda spec, options: (asked.append((spec, options.context_len)), estimate(spec, options))[1]
    window = open_window(backend=backend)
    qtbot.waitUntil(lambda: asked == [("default", 4096)], timeout=5000)
    window.set_drawer_open(True)
    window.settings_panel.context_len.setValue(8192)
    qtbot.waitUntil(lambda: ("default", 8192) in asked, timeout=5000)


def test_the_header_edits_the_conversations_own_system_prompt(qtbot, open_window):
    window = open_window()
    header = window.header
    assert window.current_id is None  # a fresh profile: the prompt a new chat starts with
    assert header.prompt_button.text() == "System prompt: You are a helpful…"
    window.new_conversation()
    assert header.prompt_button.text() == "System prompt: You are a helpful…"  # shortened at a word
    assert not header.system_prompt.isVisibleTo(window)
    header.prompt_button.click()
    assert header.system_prompt.isVisibleTo(window)
    header.system_prompt.setPlainText("Answer in French, always and without exception.")
    assert header.prompt_button.text() == "System prompt: Answer in French…"
    assert header.prompt_button.toolTip() == "Answer in French, always and without exception."  # whole
    assert window.chat_controller.system_prompt() == "Answer in French, always and without exception."
    header.system_prompt.setPlainText("Q&A only")
    assert header.prompt_button.text() == "System prompt: Q&&A only"  # shown as "Q&A", not a mnemonic
    header.system_prompt.setPlainText("")
    assert header.prompt_button.text() == "System prompt: none"
    header.prompt_action.trigger()  # Ctrl+Shift+P closes the editor again
    assert not header.system_prompt.isVisibleTo(window)


def test_every_shortcut_is_kept(open_window):
    window = open_window()
    shortcuts = {action.shortcut().toString() for action in window.actions() if not action.shortcut().isEmpty()}
    assert {"Ctrl+N", "Ctrl+I", "Ctrl+E", "Ctrl+Shift+E", "Ctrl+Q", "Ctrl+L", "Esc", "Ctrl+R", "Ctrl+Shift+R",
            "F2", "Ctrl+Shift+Del", "Ctrl+B", "Ctrl+,", "Ctrl+Shift+P"} <= shortcuts
    assert len(shortcuts) == len([a for a in window.actions() if not a.shortcut().isEmpty()])  # no two share one
    assert window.header.prompt_action.shortcut() == QKeySequence("Ctrl+Shift+P")
    assert default("temperature") == PRESETS["balanced"]["temperature"]
