"""The token view in the chat: each token coloured by its probability, the alternatives of a
token with the model's and the sampler's probability, live while a reply streams, kept with
the reply, and "continue from this alternative" as a new version of the reply."""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt

from fake_backend import FakeBackend
from chatapp.ui.token_view import PROBABILITY_BANDS, probability_colour


def _send(qtbot, window, text):
    window.composer.setPlainText(text)
    qtbot.keyClick(window.composer, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.streaming, timeout=60000)


def _anchors(view):
    return re.findall(r'<a href="#(\d+)"', view.text.toHtml())


def test_probability_bands():
    assert [probability_colour(p) for p in (1.0, 0.9, 0.6, 0.3, 0.1, 0.01)] == [
        PROBABILITY_BANDS[0][1], PROBABILITY_BANDS[0][1], PROBABILITY_BANDS[1][1], PROBABILITY_BANDS[2][1],
        PROBABILITY_BANDS[3][1], PROBABILITY_BANDS[4][1]]


def test_a_reply_shows_its_tokens_and_their_alternatives(qtbot, make_window):
    backend = FakeBackend(words=3)
    window = make_window(backend)
    _send(qtbot, window, "hi")
    assert backend.calls[-1]["logprobs"] == 5
    stored = window.store.messages(window.current_id)[-1].stats["tokens"]
    reply = window.chat.messages[1]
    assert len(stored) == 6 and reply.tokens == stored and reply.tokens_button.isVisibleTo(window)
    assert reply.token_view is None  # off until asked for
    qtbot.mouseClick(reply.tokens_button, Qt.LeftButton)
    view = reply.token_view
    assert view.isVisibleTo(window) and len(_anchors(view)) == 6
    html = view.text.toHtml().lower()
    for token in stored:  # each token on the colour of its probability band
        assert probability_colour(math.exp(token["logprob"])) in html
    view.select(2)
    marked = re.findall(r'<a href="#(\d+)"><span style="[^"]*underline', view.text.toHtml())
    assert marked == ["2"]  # the selected token is marked, the others are not
    token = stored[2]
    assert f"model {100 * math.exp(token['logprob']):.1f}%" in view.details.text()
    assert f"sampler {100 * token['sampled_prob']:.1f}%" in view.details.text()
    assert view.alternatives.rowCount() == 5
    shown = [float(view.alternatives.item(r, 1).text().rstrip("%")) for r in range(5)]
    assert shown == [round(100 * math.exp(a["logprob"]), 1) for a in token["top"]]
    assert view.alternatives.cellWidget(0, 2).text() == "chosen"
    assert "Probability the model gave each token" in view.legend.text()
    # reopened: the tokens come back from the database
    window.chat_controller.new_conversation()
    window.chat_controller.open(window.store.list_conversations()[-1].id)
    assert window.chat.messages[1].tokens == stored


def test_the_view_follows_a_streaming_reply(qtbot, make_window):
    window = make_window(FakeBackend(words=300, delay=0.01))
    window.composer.setPlainText("long")
    qtbot.keyClick(window.composer, Qt.Key_Return)
    qtbot.waitUntil(lambda: len(window.chat.messages) == 2 and bool(window.chat.messages[1].tokens), timeout=15000)
    reply = window.chat.messages[1]
    reply.tokens_button.setChecked(True)
    first = len(_anchors(reply.token_view))
    qtbot.waitUntil(lambda: len(_anchors(reply.token_view)) > first + 5, timeout=10000)
    assert window.streaming
    window.chat_controller.stop()
    qtbot.waitUntil(lambda: not window.streaming, timeout=60000)


def test_continue_from_an_alternative_is_a_new_version_starting_with_that_token(qtbot, make_window):
    backend = FakeBackend(words=3)
    window = make_window(backend)
    _send(qtbot, window, "hi")
    original = window.store.messages(window.current_id)[-1]
    reply = window.chat.messages[1]
    reply.tokens_button.setChecked(True)
    reply.token_view.select(2)
    button = reply.token_view.alternatives.cellWidget(3, 2)
    chosen = original.stats["tokens"][2]["top"][3]["id"]
    qtbot.mouseClick(button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.streaming, timeout=60000)
    first_two = tuple(t["id"] for t in original.stats["tokens"][:2])
    assert backend.calls[-1]["forced"] == first_two + (chosen,)
    assert backend.calls[-1]["messages"] == [{"role": "user", "content": "hi"}]  # the same question
    new = window.store.messages(window.current_id)[-1]
    assert [t["id"] for t in new.stats["tokens"][:3]] == list(first_two) + [chosen]
    assert new.stats["tokens"][2]["sampled_prob"] is None  # taken, not sampled
    assert window.chat.messages[1].version == (2, 2)
    assert [m.id for m in window.store.siblings(new.id)] == [original.id, new.id]  # the original is kept


def test_a_reply_grounded_in_documents_has_its_tokens_and_shows_the_exact_prompt(qtbot, make_window, tmp_path):
    """The real backend on a tiny model, a library chosen: the worker's documents path records the
    tokens' probabilities (shown coloured, with alternatives) and "What the model saw" is the prompt
    with the passages, as the model was fed it."""
    import pytest

    pytest.importorskip("transformers")
    from helpers.tiny_hf import tiny_llama_folder

    from chatapp.documents.library import LibraryStore
    from chatapp.engine.backend import ChatBackend

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guild.md").write_text("# Guild\n\nThe lantern guild was founded by Ada Morrow in 1852.\n")
    with LibraryStore(tmp_path / "library.sqlite3") as store:  # beside conversations.sqlite3
        store.add("guild", [docs])
        store.index("guild")
    model = tiny_llama_folder(tmp_path / "model", max_len=256)
    backend = ChatBackend()
    window = make_window(backend, load=False)
    window.settings.context_len, window.settings.max_new_tokens, window.settings.threads = 256, 6, 1
    assert window.model.load(str(model))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=60000)
    window.documents_selector.choose("guild")
    _send(qtbot, window, "Who founded the guild?")
    stored = window.store.messages(window.current_id)[-1]
    assert stored.state == "complete" and window.store.sources(stored.id)
    tokens = stored.stats["tokens"]
    assert len(tokens) == stored.stats["new_tokens"] == len(backend.reply.token_ids) > 0
    assert [t["id"] for t in tokens] == backend.reply.token_ids
    reply = window.chat.messages[-1]
    assert reply.tokens_button.isVisibleTo(window)
    reply.tokens_button.setChecked(True)
    assert len(_anchors(reply.token_view)) == len(tokens)
    reply.token_view.select(0)
    assert reply.token_view.alternatives.rowCount() == len(tokens[0]["top"]) > 1
    qtbot.mouseClick(reply.prompt_button, Qt.LeftButton)
    shown = window.chat.prompt_dialog.text.toPlainText()
    assert "Ada Morrow" in shown and "Question: Who founded the guild?" in shown
    fed = backend.engine._cached[:stored.stats["prompt_tokens"]]  # what the model was fed, prompt first
    assert shown == backend.engine.tokenizer.decode(fed, skip_special_tokens=False) == stored.stats["prompt"]


def test_lines_of_tokens_break_between_words_never_inside_one(qtbot):
    """Seen in the fine-tune diff screenshot: every space was a non-breaking one, so a long text
    broke lines at any token ("w" | "ork"). Spaces are kept as they are, and lines break at them."""
    from PySide6.QtGui import QTextDocument

    from chatapp.ui.token_view import tokens_html

    tokens = [{"token": "Start"}] + [{"token": t} for t in (" w", "ork", "ing", "  two", " spaces")] * 40
    document = QTextDocument()
    document.setHtml(tokens_html(tokens, lambda i, t: "#ffffff"))
    document.setTextWidth(230)
    text = document.toPlainText()
    assert text == "".join(t["token"] for t in tokens)  # every space kept, double ones too
    assert document.size().height() > 0  # laid out now
    layout = document.firstBlock().layout()
    assert layout.lineCount() > 5
    for n in range(1, layout.lineCount()):
        start = layout.lineAt(n).textStart()
        assert text[start - 1] == " " or text[start] == " ", repr(text[start - 8:start + 8])
