"""What walking the first hour again (issue 19, under Xvfb with a window manager) still hit.

One test per finding, through the widgets a user touches; each failed on the window before
its fix.
"""

from __future__ import annotations

from PySide6.QtGui import QTextCursor

from chatapp.ui.compare_view import CompareView

REPLY = "The guild was founded by **Orla Membrane**, in the year of the *Grey Tide*.\n\n- one\n- two"


def _bold_at(view, word: str) -> bool:
    document = view.document()
    found = document.find(word)
    assert not found.isNull(), f"{word!r} not shown"
    cursor = QTextCursor(found)
    return cursor.charFormat().fontWeight() > 500


def test_compare_renders_markdown_as_the_chat_does_streamed_or_whole(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    view.set_adapter("/adapters/a", "a")
    for start in range(0, len(REPLY), 5):  # streamed a few characters at a time
        view.append_tuned(REPLY[start:start + 5])
    view.show_base(REPLY)
    for pane in (view.base_text, view.tuned_text):
        text = pane.toPlainText()
        assert "**" not in text and "*Grey" not in text and "- one" not in text
        assert "Orla Membrane" in text and _bold_at(pane, "Orla Membrane")
    view.set_adapter("/adapters/b", "b")  # another adapter: empty panes, nothing kept underneath
    view.append_base("plain")
    assert view.base_text.toPlainText() == "plain" and view.tuned_text.toPlainText() == ""
