"""What walking the first hour again (issue 19, under Xvfb with a window manager) still hit.

One test per finding, through the widgets a user touches; each failed on the window before
its fix.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from chatapp.ui.compare_view import CompareView
from fake_backend import FakeBackend

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
        view.append(1, REPLY[start:start + 5])
    view.show_text(0, REPLY)
    qtbot.waitUntil(lambda: "Orla" in view.right_text.toPlainText(), timeout=2000)  # rendered by the timer
    for pane in (view.left_text, view.right_text):
        text = pane.toPlainText()
        assert "**" not in text and "*Grey" not in text and "- one" not in text
        assert "Orla Membrane" in text and _bold_at(pane, "Orla Membrane")
    view.set_adapter("/adapters/b", "b")  # another adapter: empty panes, nothing kept underneath
    view.append(0, "plain")
    view.render()
    assert view.left_text.toPlainText() == "plain" and view.right_text.toPlainText() == ""


def _chat_action(window, text):
    found = [a for menu in window.menuBar().actions() for a in menu.menu().actions() if a.text() == text]
    assert found, f"no menu action {text!r}"
    return found[0]


def test_chat_menu_offers_stop_regenerate_continue_only_when_they_would_act(qtbot, make_window):
    window = make_window(FakeBackend(words=60, delay=0.03))
    stop, regenerate, cont = (_chat_action(window, t) for t in ("Stop reply", "Regenerate reply", "Continue reply"))
    assert not stop.isEnabled() and not regenerate.isEnabled() and not cont.isEnabled()  # nothing to act on
    window.composer.setPlainText("tell me more")
    qtbot.keyClick(window.composer, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.streaming and bool(window.chat_controller.stream.text), timeout=15000)
    assert stop.isEnabled() and not regenerate.isEnabled() and not cont.isEnabled()
    stop.trigger()  # the reply stops part way: it can be continued
    qtbot.waitUntil(lambda: not window.streaming, timeout=15000)
    assert not stop.isEnabled() and regenerate.isEnabled() and cont.isEnabled()
    window.new_action.trigger()
    assert not stop.isEnabled() and not regenerate.isEnabled() and not cont.isEnabled()


def test_the_adapter_in_use_has_a_line_of_its_own_under_the_model(qtbot, make_window, tmp_path):
    window = make_window(FakeBackend())
    adapter = tmp_path / "adapters" / "notes-lora"
    adapter.mkdir(parents=True)
    window.training_panel.use_adapter.emit(str(adapter))
    qtbot.waitUntil(lambda: window.adapter == str(adapter), timeout=15000)
    lines = window.header.model_status.text().splitlines()
    assert len(lines) == 2 and lines[1] == "Adapter in use: notes-lora." and "Memory" in lines[0]


def test_an_indexed_library_says_where_to_use_it_in_the_chat(qtbot, tmp_path):
    from chatapp.ui.documents_view import DocumentsView

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guild.md").write_text("# Guild\n\nThe guild was founded by Orla Membrane.", encoding="utf-8")
    view = DocumentsView(tmp_path / "library.sqlite3")
    qtbot.addWidget(view)
    try:
        view.add_to_library("guild notes", [docs])
        qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
        assert "1 indexed" in view.status.text()
        assert "choose “guild notes” beside the message box in the Chat tab" in view.status.text()
    finally:
        view.shutdown()


def test_the_status_bar_names_the_finished_run_in_words_it_can_translate(qtbot, make_window):
    window = make_window(FakeBackend())
    for status, said in (("completed", "Training completed: lantern-demo"),
                         ("cancelled", "Training cancelled: lantern-demo"),
                         ("failed", "Training failed: lantern-demo")):
        window.training_panel.training_finished.emit(status, "/home/me/.local/share/chatapp/adapters/lantern-demo")
        assert window.statusBar().currentMessage() == said  # not the whole path over the model's name
