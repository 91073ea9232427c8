"""A failed comparison never touches the chat: chat replies and comparisons share no failure id."""

from __future__ import annotations

from chatapp.engine.side_by_side import PaneSource
from fake_backend import FakeBackend


class FailingCompareBackend(FakeBackend):
    """Replies normally, but a comparison fails part way."""

    def compare(self, sources, messages, system_prompt, settings, cancel=None):
        yield 0, "a first word"
        raise RuntimeError("the comparison broke (a test stand-in)")


def test_a_failed_comparison_does_not_mark_the_chat_reply_failed(qtbot, make_window, tmp_path):
    backend = FailingCompareBackend()
    window = make_window(backend)
    window.composer.setPlainText("hello")
    window.send()
    qtbot.waitUntil(lambda: not window.streaming, timeout=15000)
    reply = window.store.messages(window.current_id)[-1]
    assert reply.state == "complete"
    panel = window.training_panel
    panel.compare_view.show()
    adapter = str(tmp_path / "adapters" / "notes-lora")
    panel.compare_requested.emit("What is in my notes?", 7, (PaneSource(), PaneSource("adapter", adapter)))
    qtbot.waitUntil(lambda: "comparison broke" in panel.compare_view.status.text(), timeout=5000)
    qtbot.wait(100)  # any stray failure signal has been delivered by now
    after = window.store.messages(window.current_id)[-1]
    assert (after.id, after.state, after.content) == (reply.id, "complete", reply.content)
    assert "failed" not in window.chat.messages[-1].status_label.text()
