"""Qwen3's thinking in the window: the setting reaches the backend only for a model whose
template has the switch; the reasoning is shown collapsed above the answer."""

from __future__ import annotations

from fake_backend import FakeBackend
from test_controllers import _load, controllers  # noqa: F401 (the fixture)

from chatapp.ui.chat_view import MessageWidget

REPLY = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello **there**."


def _reply(qtbot, chat, backend, text="hi"):
    before = len(backend.calls)
    assert chat.send(text)
    qtbot.waitUntil(lambda: not chat.streaming and len(backend.calls) > before, timeout=10000)
    return backend.calls[-1]


def test_the_setting_reaches_a_model_with_the_switch(qtbot, controllers):  # noqa: F811
    chat, model, view, backend = controllers(FakeBackend(thinking_switch=True))
    _load(qtbot, model)
    assert chat.settings.enable_thinking is True  # Qwen3's own default: reason first
    assert _reply(qtbot, chat, backend)["enable_thinking"] is True
    stored = chat.store.messages(chat.current_id)[-1].content
    assert stored.startswith("<think>\nweighing it\n</think>")  # kept whole: the template drops it later
    chat.settings.enable_thinking = False
    assert _reply(qtbot, chat, backend, "again")["enable_thinking"] is False


def test_a_model_without_the_switch_is_not_asked(qtbot, controllers):  # noqa: F811
    chat, model, view, backend = controllers()
    _load(qtbot, model)
    assert _reply(qtbot, chat, backend)["enable_thinking"] is None


def test_reasoning_is_collapsed_above_the_answer(qtbot):
    widget = MessageWidget(1, "assistant", REPLY)
    qtbot.addWidget(widget)
    box = widget.thinking
    assert not box.isHidden() and not box.expanded and box.text.isHidden()
    assert box.toggle.text() == "Reasoning (7 words)"
    assert box.text.text() == "The user greets me. I greet back."
    shown = " ".join(w.text() for w in widget._segment_widgets)
    assert "Hello **there**." in shown and "greets" not in shown and "think>" not in shown
    box.toggle.click()
    assert box.expanded and not box.text.isHidden()
    widget.copy()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == "Hello **there**."  # the answer, not the reasoning


def test_streaming_reasoning_says_thinking_and_keeps_the_users_choice(qtbot):
    widget = MessageWidget(1, "assistant", "")
    qtbot.addWidget(widget)
    assert widget.thinking.isHidden()
    widget.set_text("<think>\nFirst I")
    assert widget.thinking.toggle.text() == "Thinking…" and not widget.thinking.isHidden()
    assert all(not w.text() for w in widget._segment_widgets)
    widget.thinking.toggle.click()  # opened while it streams
    widget.set_text(REPLY)
    assert widget.thinking.expanded and widget.thinking.toggle.text() == "Reasoning (7 words)"


def test_a_reply_without_reasoning_has_no_box(qtbot):
    widget = MessageWidget(1, "assistant", "Just an answer.")
    qtbot.addWidget(widget)
    assert widget.thinking.isHidden()
