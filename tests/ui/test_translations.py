"""Simplified Chinese catalogue: complete, placeholders intact, and loaded by the window."""

from __future__ import annotations

import importlib.util
import string
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QCoreApplication, QTranslator
from PySide6.QtGui import QGuiApplication

from fake_backend import FakeBackend

I18N = Path(__file__).resolve().parents[2] / "resources" / "i18n"


def _load_tool():
    spec = importlib.util.spec_from_file_location("update_translations", I18N / "update_translations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


@pytest.fixture(scope="module")
def catalogue():
    found, errors = tool.extract()
    assert errors == []
    return found, tool.read_ts(tool.ts_path("zh_CN"))


def _fields(text: str) -> list[tuple[str, str]]:
    return sorted((name, spec or "") for _, name, spec, _ in string.Formatter().parse(text) if name is not None)


def _accelerators(text: str) -> tuple[int, int]:
    """(literal "&&" count, accelerator "&" count)."""
    return text.count("&&"), text.replace("&&", "").count("&")


def test_every_ui_string_has_a_finished_translation(catalogue):
    found, ts = catalogue
    assert {"MainWindow", "ChatView", "ConversationList", "SettingsPanel"} <= set(found)
    missing = [(context, source) for context, messages in found.items() for source in messages
               if source not in ts.get(context, {}) or ts[context][source].kind
               or not ts[context][source].translation.strip()]
    assert missing == [], "run resources/i18n/update_translations.py and translate these"


def test_translations_keep_placeholders_and_accelerators(catalogue):
    _, ts = catalogue
    for context, messages in ts.items():
        for source, message in messages.items():
            if message.kind == "obsolete":
                continue
            assert _fields(message.translation) == _fields(source), (context, source)
            assert _accelerators(message.translation) == _accelerators(source), (context, source)


def test_qm_matches_the_ts(qapp, catalogue):
    _, ts = catalogue
    translator = QTranslator()
    assert translator.load(str(I18N / "chatapp_zh_CN.qm"))
    stale = [(context, source) for context, messages in ts.items() for source, m in messages.items()
             if m.kind == "" and translator.translate(context, source) != m.translation]
    assert stale == [], "the .qm is older than the .ts: run update_translations.py"


def test_extractor_rejects_non_literal_calls_and_keeps_old_work(tmp_path):
    module = tmp_path / "panel.py"
    module.write_text('def _tr(text):\n    return QGuiApplication.translate("Panel", text)\n\n'
                      'a = _tr("Hello")\nb = _tr(f"Hi {name}")\nc = _tr("New " "one")\n')
    context, found, errors = tool.extract_file(module)
    assert context == "Panel"
    assert found == [("Hello", 4), ("New one", 6)]
    assert len(errors) == 1 and ":5:" in errors[0]

    old = {"Panel": {"Hello": tool.Message("Hello", "你好", ""), "Gone": tool.Message("Gone", "没了", "")}}
    new = {"Panel": {text: tool.Message(text) for text, _ in found}}
    merged = tool.merge(new, old)["Panel"]
    assert (merged["Hello"].translation, merged["Hello"].kind) == ("你好", "")
    assert (merged["New one"].translation, merged["New one"].kind) == ("", "unfinished")
    assert (merged["Gone"].translation, merged["Gone"].kind) == ("没了", "obsolete")
    written = tmp_path / "x.ts"
    written.write_text(tool.render_ts({"Panel": merged}, "zh_CN"), encoding="utf-8")
    assert {s: (m.translation, m.kind) for s, m in tool.read_ts(written)["Panel"].items()} == {
        "Hello": ("你好", ""), "New one": ("", "unfinished"), "Gone": ("没了", "obsolete")}


@pytest.fixture
def chinese(qapp):
    from chatapp.ui.i18n import install_translator
    translators = install_translator(qapp, "zh_CN")
    assert len(translators) == 2  # ours and Qt's own
    yield translators
    for translator in translators:
        QCoreApplication.removeTranslator(translator)
        translator.deleteLater()


def test_window_speaks_chinese_with_the_translator(chinese, make_window):
    assert QGuiApplication.translate("MainWindow", "Send") == "发送"
    window = make_window(FakeBackend())
    assert window.send_button.text() == "发送"
    assert window.conversations.new_button.text() == "新对话"
    assert window.menuBar().actions()[0].text() == "文件(&F)"
    # Qt's own strings too: the composer's right-click menu
    assert QGuiApplication.translate("QLineEdit", "Select All") == "全选"
    menu = window.composer.createStandardContextMenu()
    texts = [action.text() for action in menu.actions()]
    menu.deleteLater()
    assert any(text.startswith("全选") for text in texts), texts


def test_english_again_after_the_translator_is_removed(make_window):
    # runs after the test above: the catalogue must not leak into other tests
    assert QGuiApplication.translate("MainWindow", "Send") == "Send"
    assert QGuiApplication.translate("QLineEdit", "Select All") == "Select All"
    assert make_window(FakeBackend()).send_button.text() == "Send"


def _estimate_info():
    import torch

    from chatapp.engine.device import estimate_memory
    from chatapp.model import ModelConfig
    config = ModelConfig(arch="llama", vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3,
                         intermediate_size=1536, max_seq_len=8192, tie_embeddings=True)
    estimate = estimate_memory(config, context_len=4096, dtype=torch.float32)
    return SimpleNamespace(memory=estimate.describe(), memory_parts=estimate.parts())


def test_memory_text_is_worded_by_the_ui():
    from chatapp.ui.chat_header import memory_text
    info = _estimate_info()
    assert memory_text(info) == info.memory  # English: the engine's own wording
    assert memory_text(SimpleNamespace(memory="1 MB", memory_parts={})) == "1 MB"  # no parts


def test_memory_text_in_chinese(chinese):
    from chatapp.ui.chat_header import memory_text
    text = memory_text(_estimate_info())
    assert "权重 0.50" in text and "KV 缓存" in text and "weights" not in text
