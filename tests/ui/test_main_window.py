"""The window with a fake backend: send, stream, stop, regenerate, edit, switch, delete, settings."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from fake_backend import FakeBackend


def _send(qtbot, window, text):
    window.composer.setPlainText(text)
    qtbot.keyClick(window.composer, Qt.Key_Return)


def _wait_idle(qtbot, window, timeout=15000):  # the first reply imports torch in the worker
    qtbot.waitUntil(lambda: not window.streaming, timeout=timeout)


def test_enter_sends_and_reply_streams_into_view_and_database(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "hello there")
    assert window.streaming and window.composer.toPlainText() == ""
    _wait_idle(qtbot, window)
    expected = "Reply1 to 'hello there' w0 w1 w2 w3 w4 w5"
    stored = window.store.messages(window.current_id)
    assert [(m.role, m.content, m.state) for m in stored] == [
        ("user", "hello there", "complete"), ("assistant", expected, "complete")]
    assert [w.text for w in window.chat.messages] == ["hello there", expected]
    assert "42.0 tok/s" in window.speed_label.text()
    assert backend.calls[0]["messages"] == [{"role": "user", "content": "hello there"}]
    # model work ran in the worker thread, never the GUI thread
    assert backend.thread_names == {"worker"}


def test_shift_enter_is_a_newline(qtbot, make_window, backend):
    window = make_window(backend)
    window.composer.setPlainText("line one")
    window.composer.moveCursor(QTextCursor.End)
    qtbot.keyClick(window.composer, Qt.Key_Return, Qt.ShiftModifier)
    assert window.composer.toPlainText() == "line one\n" and not window.streaming


def test_text_appears_progressively(qtbot, make_window):
    window = make_window(FakeBackend(words=30, delay=0.03))
    _send(qtbot, window, "stream please")
    widget = window.chat.messages[-1]
    qtbot.waitUntil(lambda: "w3" in widget.text, timeout=5000)
    assert window.streaming and "w29" not in widget.text
    _wait_idle(qtbot, window)
    assert widget.text.endswith("w29")


def test_stop_keeps_partial_reply_marked_stopped(qtbot, make_window):
    window = make_window(FakeBackend(words=200, delay=0.02))
    _send(qtbot, window, "long one")
    widget = window.chat.messages[-1]
    qtbot.waitUntil(lambda: "w2" in widget.text, timeout=5000)
    qtbot.mouseClick(window.stop_button, Qt.LeftButton)
    _wait_idle(qtbot, window)
    reply = window.store.messages(window.current_id)[-1]
    assert reply.state == "cancelled" and "w2" in reply.content and "w199" not in reply.content
    assert "stopped" in widget.status_label.text()


def test_regenerate_replaces_last_reply(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "question")
    _wait_idle(qtbot, window)
    window.chat_controller.regenerate()
    _wait_idle(qtbot, window)
    stored = window.store.messages(window.current_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].content.startswith("Reply2 to 'question'")
    assert backend.calls[1]["messages"] == [{"role": "user", "content": "question"}]


def test_a_reply_cut_at_the_token_limit_can_be_continued(qtbot, make_window, backend):
    window = make_window(backend)
    window.settings_panel.max_new_tokens.setValue(3)
    _send(qtbot, window, "question")
    _wait_idle(qtbot, window)
    reply = window.chat.messages[-1]
    stored = window.store.messages(window.current_id)[-1]
    assert stored.content == "Reply1 to 'question'" and stored.finish_reason == "length"
    assert reply.continue_button.isVisibleTo(window) and reply.status_label.text().startswith("cut at the token")
    qtbot.mouseClick(reply.continue_button, Qt.LeftButton)
    assert window.streaming and not reply.continue_button.isVisibleTo(window)
    _wait_idle(qtbot, window)
    assert backend.calls[1]["continue_last"] is True
    assert backend.calls[1]["messages"] == [{"role": "user", "content": "question"},
                                            {"role": "assistant", "content": "Reply1 to 'question'"}]
    expected = "Reply1 to 'question' and more"
    stored = window.store.messages(window.current_id)
    assert [(m.role, m.content) for m in stored] == [("user", "question"), ("assistant", expected)]
    assert stored[-1].finish_reason == "eos" and len(window.chat.messages) == 2
    assert window.chat.messages[-1].text == expected and not window.chat.messages[-1].continue_button.isVisibleTo(window)
    window.chat_controller.open(window.current_id)  # reopened: whole, and finished
    assert window.chat.messages[-1].text == expected and not window.chat.messages[-1].can_continue


def test_a_finished_reply_offers_no_continue(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "question")
    _wait_idle(qtbot, window)
    assert not window.chat.messages[-1].continue_button.isVisibleTo(window)
    window.chat_controller.continue_reply()  # the menu action on a finished reply does nothing
    assert not window.streaming and len(backend.calls) == 1


def test_edit_and_resend_drops_everything_after(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "first")
    _wait_idle(qtbot, window)
    _send(qtbot, window, "second")
    _wait_idle(qtbot, window)
    first = window.chat.messages[0]
    first.start_edit()
    first._editor.setPlainText("first, edited")
    first._submit_edit()
    _wait_idle(qtbot, window)
    stored = window.store.messages(window.current_id)
    assert [(m.role, m.content[:14]) for m in stored] == [("user", "first, edited"), ("assistant", "Reply3 to 'fir")]
    assert backend.calls[-1]["messages"] == [{"role": "user", "content": "first, edited"}]


def test_switching_conversation_while_streaming(qtbot, make_window):
    window = make_window(FakeBackend(words=40, delay=0.02))
    _send(qtbot, window, "in A")
    conv_a = window.current_id
    qtbot.waitUntil(lambda: "w1" in window.chat_controller.stream_text, timeout=5000)
    window.new_conversation()
    conv_b = window.current_id
    assert conv_b != conv_a and window.chat.messages == []
    _wait_idle(qtbot, window)
    assert window.chat.messages == []  # nothing of A's reply leaked into B
    assert window.store.messages(conv_a)[-1].content.endswith("w39")
    window.chat_controller.open(conv_a)
    assert window.chat.messages[-1].text.endswith("w39")


def test_delete_and_undo(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "keep me")
    _wait_idle(qtbot, window)
    conv = window.current_id
    window.chat_controller.delete(conv)
    assert window.current_id is None and window.conversations.list.count() == 0
    assert window.undo_button.isVisibleTo(window)
    window.chat_controller.undo_delete()
    assert window.current_id == conv and window.conversations.list.count() == 1
    assert [m.content for m in window.store.messages(conv)][0] == "keep me"


def test_failed_model_load_keeps_previous_model(qtbot, make_window, backend):
    window = make_window(backend)
    before = window.model_info
    window.model.load("broken")
    qtbot.waitUntil(lambda: window.loading_spec is None, timeout=5000)
    assert window.model_info == before
    status = window.header.model_status.text()
    assert "Could not load broken" in status and "still loaded" in status
    _send(qtbot, window, "still works?")
    _wait_idle(qtbot, window)
    assert window.store.messages(window.current_id)[-1].state == "complete"


def test_search_filters_conversations(qtbot, make_window, backend):
    window = make_window(backend)
    _send(qtbot, window, "about penguins")
    _wait_idle(qtbot, window)
    window.new_conversation()
    _send(qtbot, window, "about volcanoes")
    _wait_idle(qtbot, window)
    window.conversations.search.setText("penguin")
    titles = [window.conversations.list.item(i).text() for i in range(window.conversations.list.count())]
    assert titles == ["about penguins"]


def test_export_import_round_trip(qtbot, make_window, backend, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    window = make_window(backend)
    _send(qtbot, window, "export me ```code```")
    _wait_idle(qtbot, window)
    target = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    original = window.current_id
    window.export_conversation(original, "json")
    assert json.loads(target.read_text())["messages"][0]["content"] == "export me ```code```"
    window.import_conversation()
    assert window.current_id != original
    assert ([(m.role, m.content) for m in window.store.messages(window.current_id)]
            == [(m.role, m.content) for m in window.store.messages(original)])


def test_settings_persist_across_windows(qtbot, make_window, backend):
    window = make_window(backend)
    window.settings_panel.temperature.setValue(0.25)
    window.header.system_prompt.setPlainText("Answer in French.")
    window.close()
    again = make_window(FakeBackend())
    assert again.settings_panel.temperature.value() == 0.25
    assert again.settings.system_prompt == "Answer in French."
    _send(qtbot, again, "bonjour")
    _wait_idle(qtbot, again)
    assert again.worker_thread.worker.backend.calls[0]["settings"].temperature == 0.25


def test_closing_while_generating_stops_the_worker(qtbot, make_window):
    window = make_window(FakeBackend(words=10_000, delay=0.01))
    _send(qtbot, window, "never ending")
    qtbot.waitUntil(lambda: "w1" in window.chat_controller.stream_text, timeout=5000)
    window.close()
    assert window.worker_thread.thread.isFinished()
    assert window.store.messages(window.current_id)[-1].state == "cancelled"


def test_a_model_load_can_be_cancelled_and_the_previous_model_stays(qtbot, make_window, backend):
    window = make_window(backend)
    panel = window.header
    assert window.model_info.name == "Fake-default" and not panel.cancel_load_button.isVisibleTo(window)
    window.model.load("slow")
    qtbot.waitUntil(lambda: panel.load_progress.value() > 5, timeout=5000)  # the load is under way
    assert panel.cancel_load_button.isVisibleTo(window) and not window.send_button.isEnabled()
    qtbot.mouseClick(panel.cancel_load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.loading_spec is None, timeout=5000)  # well before the 5 s the load takes
    assert window.model_info.name == "Fake-default" and backend.loaded_name == "Fake-default"
    assert panel.model_status.text() == ("Loading slow was cancelled. "
                                         "The previous model (Fake-default) is still loaded.")
    assert not panel.cancel_load_button.isVisibleTo(window) and window.send_button.isEnabled()
    _send(qtbot, window, "still there?")
    _wait_idle(qtbot, window)
    assert window.store.messages(window.current_id)[-1].content.startswith("Reply1 to 'still there?'")


def test_memory_estimate_is_shown_before_loading(qtbot, make_window, backend):
    window = make_window(FakeBackend(), load=False)
    panel = window.header
    qtbot.waitUntil(lambda: "Before loading: Fake-default" in panel.estimate_label.text(), timeout=5000)
    assert "0.59 GiB" in panel.estimate_label.text() and "will not fit" not in panel.estimate_label.text()
    panel.set_models([("Default", "default"), ("Huge", "huge"), ("Broken", "broken")], "default")
    panel.model_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "Fake-huge" in panel.estimate_label.text(), timeout=5000)
    assert "will not fit" in panel.estimate_label.text()
    panel.model_combo.setCurrentIndex(2)
    qtbot.waitUntil(lambda: "cannot be opened: broken" in panel.estimate_label.text(), timeout=5000)
    assert window.model_info is None  # estimating never loads anything


def test_application_quit_stops_the_worker_like_closing(qtbot, make_window):
    from PySide6.QtWidgets import QApplication

    window = make_window(FakeBackend(words=10_000, delay=0.01))
    _send(qtbot, window, "until quit")
    qtbot.waitUntil(lambda: "w1" in window.chat_controller.stream_text, timeout=5000)
    QApplication.instance().aboutToQuit.emit()
    assert window.worker_thread.thread.isFinished()
    assert window.store.messages(window.current_id)[-1].state == "cancelled"
    window.close()  # a second shutdown is a no-op


def test_the_drawer_names_the_models_recommendation_and_replies_follow_it(qtbot, make_window):
    backend = FakeBackend(recommended={"temperature": 0.2, "top_p": 0.9})
    window = make_window(backend)
    line = window.settings_panel.recommended
    assert not line.isHidden() and line.text() == "This model recommends: temperature 0.2, top-p 0.9"
    _send(qtbot, window, "hello")
    _wait_idle(qtbot, window)
    assert backend.calls[-1]["settings"].temperature == 0.2  # the user's temperature is the default
    window.settings_panel.temperature.setValue(0.9)  # the user's own choice wins
    _send(qtbot, window, "again")
    _wait_idle(qtbot, window)
    assert backend.calls[-1]["settings"].temperature == 0.9 and backend.calls[-1]["settings"].top_p == 0.9


def test_a_model_without_a_recommendation_shows_no_line_and_replies_with_the_defaults(qtbot, make_window, backend):
    from chatapp.sampling_settings import SamplingSettings

    window = make_window(backend)
    assert window.settings_panel.recommended.isHidden()
    _send(qtbot, window, "hello")
    _wait_idle(qtbot, window)
    used, defaults = backend.calls[-1]["settings"], SamplingSettings()
    assert (used.temperature, used.top_p, used.top_k, used.min_p) == \
        (defaults.temperature, defaults.top_p, defaults.top_k, defaults.min_p)
