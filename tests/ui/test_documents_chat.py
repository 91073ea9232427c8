"""Chat with documents in the window: the selector, sources under a reply, the passage dialog,
"What the model saw", all kept across reopening (fake backend searching a real library)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from fake_backend import FakeBackend

from chatapp.documents.library import LibraryStore
from chatapp.engine.retrieval import SEARCH_LIMIT

GUILD = """# The Guild

## Founding

The lantern guild was founded by Ada Morrow in 1852, in the harbour town of Kell.

## Trade

The guild traded lamp oil and glass along the northern coast.
"""


def _library(tmp_path, name="guild", extra=0):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "guild.md").write_text(GUILD, encoding="utf-8")
    for i in range(extra):  # more passages about the guild than a reply is given
        (docs / f"more{i}.md").write_text(f"# Note {i}\n\nThe guild was founded long ago, note {i}.\n")
    with LibraryStore(tmp_path / "library.sqlite3") as store:  # beside conversations.sqlite3
        store.add(name, [docs])
        store.index(name)
    return docs


def _send(qtbot, window, text):
    window.composer.setPlainText(text)
    qtbot.keyClick(window.composer, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.streaming, timeout=15000)


def _reopen(window, make_window, backend):
    window.close()
    window.store.close()
    return make_window(backend)


def test_the_selector_is_stored_per_conversation_and_restored(qtbot, make_window, backend, tmp_path):
    _library(tmp_path)
    window = make_window(backend)
    selector = window.documents_selector
    assert selector.current_library() == ""
    selector.choose("guild")  # before any conversation: the first one gets it
    _send(qtbot, window, "Who founded the guild?")
    first = window.current_id
    assert window.store.get_conversation(first).library == "guild"
    assert backend.calls[-1]["documents"].name == "guild"
    window.chat_controller.new_conversation()  # a new chat starts with the same documents...
    second = window.current_id
    assert selector.current_library() == "guild"
    selector.choose("")  # ...and the user switches them off for it
    _send(qtbot, window, "hello")
    assert backend.calls[-1]["documents"] is None
    assert window.store.get_conversation(second).library == ""
    window.chat_controller.open(first)
    assert selector.current_library() == "guild" and selector.currentText() == "Documents: guild"
    window.chat_controller.open(second)
    assert selector.current_library() == ""
    window.chat_controller.open(first)
    window = _reopen(window, make_window, backend)
    window.chat_controller.open(first)
    assert window.documents_selector.current_library() == "guild"
    window.chat_controller.open(second)
    assert window.documents_selector.current_library() == ""


def test_sources_are_saved_and_shown_again_after_reopening(qtbot, make_window, backend, tmp_path):
    docs = _library(tmp_path)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    assert backend.thread_names == {"worker"}  # the search ran in the worker thread
    conv = window.current_id
    reply = window.store.messages(conv)[-1]
    stored = window.store.sources(reply.id)
    assert stored and stored[0].number == 1 and stored[0].library == "guild"
    assert stored[0].path == str(docs / "guild.md") and stored[0].heading == "The Guild > Founding"
    assert "founded by Ada Morrow" in stored[0].text
    widget = window.chat.messages[-1]
    labels = [b.text() for b in widget.source_list.buttons]
    assert labels[0] == "[1] guild.md › The Guild > Founding"
    assert widget.source_list.isVisibleTo(window) and widget.prompt_button.isVisibleTo(window)
    assert not window.chat.messages[0].source_list.isVisibleTo(window)  # the user's message has none

    window = _reopen(window, make_window, backend)
    window.chat_controller.open(conv)
    widget = window.chat.messages[-1]
    assert [b.text() for b in widget.source_list.buttons] == labels
    assert widget.query == "Who founded the guild?"
    assert widget.prompt_button.isVisibleTo(window)


def test_clicking_a_source_opens_the_passage_with_the_matching_words_highlighted(qtbot, make_window, backend,
                                                                               tmp_path, monkeypatch):
    docs = _library(tmp_path)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    qtbot.mouseClick(window.chat.messages[-1].source_list.buttons[0], Qt.LeftButton)
    dialog = window.chat.source_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.file_label.text() == str(docs / "guild.md")
    assert dialog.heading_label.text() == "The Guild > Founding"
    assert "The lantern guild was founded by Ada Morrow in 1852" in dialog.text.toPlainText()
    # the question's words, where the passage holds them (the heading line "## Founding" is no match)
    assert [p.lower() for p in dialog.highlighted_text()] == ["guild", "founded"]
    assert "Ada" not in "".join(dialog.highlighted_text())
    opened = []
    from chatapp.ui import sources_view
    monkeypatch.setattr(sources_view.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    qtbot.mouseClick(dialog.open_button, Qt.LeftButton)
    assert opened == [str((docs / "guild.md").resolve())]


def test_what_the_model_saw_shows_the_prompt_with_the_passages(qtbot, make_window, backend, tmp_path):
    _library(tmp_path)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    qtbot.mouseClick(window.chat.messages[-1].prompt_button, Qt.LeftButton)
    prompt = window.chat.prompt_dialog.text.toPlainText()
    assert window.chat.prompt_dialog.isVisible()
    assert "<|im_start|>user\nQuestion: Who founded the guild?" in prompt and "Ada Morrow" in prompt  # the passage
    assert prompt.rstrip().endswith("Question: Who founded the guild?<|im_end|>\n<|im_start|>assistant")
    stored = window.store.messages(window.current_id)[-1].stats["prompt"]
    assert stored == prompt


def test_a_reply_says_when_passages_were_left_out(qtbot, make_window, tmp_path):
    _library(tmp_path, extra=3)
    backend = FakeBackend(passages_that_fit=1)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "When was the guild founded?")
    with LibraryStore(tmp_path / "library.sqlite3") as store:
        found = len(store.search("guild", "When was the guild founded?", limit=SEARCH_LIMIT))
    assert found == SEARCH_LIMIT >= 2  # the passages offered to the prompt
    widget = window.chat.messages[-1]
    assert len(widget.source_list.buttons) == 1
    notice = f"{found - 1} passages left out (context full)"
    assert notice in widget.status_label.text()
    window.chat_controller.open(window.current_id)  # said again on reopening
    assert notice in window.chat.messages[-1].status_label.text()


def test_a_library_removed_meanwhile_fails_the_reply_with_its_name(qtbot, make_window, backend, tmp_path):
    _library(tmp_path)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    with LibraryStore(tmp_path / "library.sqlite3") as store:
        store.remove("guild")
    _send(qtbot, window, "Who founded the guild?")
    reply = window.store.messages(window.current_id)[-1]
    assert reply.state == "failed"
    assert "no library named 'guild'" in window.chat.messages[-1].status_label.text()
    window.documents_selector.refresh()
    assert window.documents_selector.currentText() == "guild (missing)"


def test_undoing_an_edit_puts_the_sources_back(qtbot, make_window, backend, tmp_path):
    _library(tmp_path)
    window = make_window(backend)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    before = [b.text() for b in window.chat.messages[-1].source_list.buttons]
    assert before
    window.chat_controller.edit_and_resend(0, "What did the guild trade?")
    qtbot.waitUntil(lambda: not window.streaming, timeout=15000)
    window.chat_controller.undo_edit()
    reply = window.store.messages(window.current_id)[-1]
    assert [s.library for s in window.store.sources(reply.id)] == ["guild"] * len(before)
    assert [b.text() for b in window.chat.messages[-1].source_list.buttons] == before


def test_the_real_backend_in_the_window_fits_passages_into_the_context(qtbot, make_window, tmp_path):
    """End to end with ChatBackend on a tiny random model: retrieval in the worker, sources under
    the reply, the stored prompt within the context."""
    import pytest

    pytest.importorskip("transformers")
    from helpers.tiny_hf import tiny_llama_folder

    from chatapp.engine.backend import ChatBackend

    _library(tmp_path, extra=6)
    model = tiny_llama_folder(tmp_path / "model", max_len=256)
    window = make_window(ChatBackend(), load=False)
    window.settings.context_len = 256
    window.settings.max_new_tokens = 8
    window.settings.threads = 1
    assert window.model.load(str(model))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=60000)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    reply = window.store.messages(window.current_id)[-1]
    assert reply.state == "complete", window.chat.messages[-1].status_label.text()
    sources = window.store.sources(reply.id)
    assert sources and sources[0].library == "guild"
    assert reply.stats["prompt_tokens"] + min(8, 256 // 4) <= 256
    assert reply.stats.get("left_out", 0) >= 1  # seven documents about the guild do not fit 256 tokens
    assert "Question: Who founded the guild?" in reply.stats["prompt"]
    assert [b.text() for b in window.chat.messages[-1].source_list.buttons][0].startswith("[1] ")
