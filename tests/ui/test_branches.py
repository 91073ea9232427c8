"""Versions of a message in the window: regenerate and edit-and-resend keep every version as a
sibling, `< 2/3 >` switches, a version can be deleted, and the model reads the path shown."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from fake_backend import FakeBackend


def _send(qtbot, window, text):
    window.composer.setPlainText(text)
    qtbot.keyClick(window.composer, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.streaming, timeout=60000)


def _idle(qtbot, window):
    qtbot.waitUntil(lambda: not window.streaming, timeout=60000)


def _texts(window):
    return [w.text for w in window.chat.messages]


def test_regenerate_keeps_the_old_reply_and_the_arrows_switch(qtbot, make_window):
    backend = FakeBackend(words=2)
    window = make_window(backend)
    _send(qtbot, window, "hello")
    first = _texts(window)[1]
    window.chat_controller.regenerate()
    _idle(qtbot, window)
    window.chat_controller.regenerate()
    _idle(qtbot, window)
    reply = window.chat.messages[1]
    assert reply.version == (3, 3) and reply.version_label.text() == "3/3"
    assert reply.previous_button.isVisibleTo(window) and reply.previous_button.isEnabled()
    assert not reply.next_button.isEnabled() and not window.chat.messages[0].previous_button.isVisibleTo(window)
    third = reply.text
    qtbot.mouseClick(reply.previous_button, Qt.LeftButton)
    qtbot.mouseClick(window.chat.messages[1].previous_button, Qt.LeftButton)
    assert _texts(window) == ["hello", first] and window.chat.messages[1].version_label.text() == "1/3"
    qtbot.mouseClick(window.chat.messages[1].next_button, Qt.LeftButton)
    qtbot.mouseClick(window.chat.messages[1].next_button, Qt.LeftButton)
    assert _texts(window) == ["hello", third]
    assert len(window.store.tree(window.current_id)) == 4  # one question, three replies: nothing lost


def test_the_model_reads_the_path_shown(qtbot, make_window):
    backend = FakeBackend(words=1)
    window = make_window(backend)
    _send(qtbot, window, "q")
    old = _texts(window)[1]
    window.chat_controller.regenerate()
    _idle(qtbot, window)
    # the regenerated reply was written from the question alone, not after the old reply
    assert backend.calls[-1]["messages"] == [{"role": "user", "content": "q"}]
    window.chat_controller.switch_branch(1, -1)
    assert _texts(window) == ["q", old]
    _send(qtbot, window, "and?")
    assert backend.calls[-1]["messages"] == [{"role": "user", "content": "q"},
                                             {"role": "assistant", "content": old},
                                             {"role": "user", "content": "and?"}]
    window.chat_controller.switch_branch(1, 1)  # the other version has nothing after it
    assert len(window.chat.messages) == 2


def test_edit_and_resend_keeps_the_earlier_version_and_what_followed(qtbot, make_window):
    window = make_window(FakeBackend(words=1))
    for text in ("first", "second", "third"):
        _send(qtbot, window, text)
    before = [(m.role, m.content, m.stats) for m in window.store.messages(window.current_id)]
    window.chat_controller.edit_and_resend(2, "second, edited")
    _idle(qtbot, window)
    assert _texts(window)[:3] == ["first", _texts(window)[1], "second, edited"] and len(window.chat.messages) == 4
    assert window.chat.messages[2].version == (2, 2)
    qtbot.mouseClick(window.chat.messages[2].previous_button, Qt.LeftButton)
    assert [(m.role, m.content, m.stats) for m in window.store.messages(window.current_id)] == before
    assert len(window.store.tree(window.current_id)) == 8  # nothing lost: both versions and their replies


def test_a_version_is_deleted_after_asking(qtbot, make_window, monkeypatch):
    window = make_window(FakeBackend(words=1))
    _send(qtbot, window, "q")
    _send(qtbot, window, "more")
    window.chat_controller.regenerate()  # a second version of the last reply
    _idle(qtbot, window)
    shown = _texts(window)
    window.chat_controller.switch_branch(1, 1)  # the first reply has one version: nothing to switch to
    assert _texts(window) == shown and window.chat.messages[3].version == (2, 2)
    window.chat_controller.edit_and_resend(0, "q2")  # and a second version of the first message
    _idle(qtbot, window)
    assert window.chat.messages[0].delete_version_button.isVisibleTo(window)
    assert not window.chat.messages[1].delete_version_button.isVisibleTo(window)  # one version only
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    qtbot.mouseClick(window.chat.messages[0].delete_version_button, Qt.LeftButton)
    assert asked == ["Delete this version of the message and the message after it? The other versions stay."]
    assert _texts(window)[0] == "q2"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    with qtbot.waitSignal(window.chat_controller.status_message, timeout=5000) as said:
        qtbot.mouseClick(window.chat.messages[0].delete_version_button, Qt.LeftButton)
    assert said.args[0] == "Version deleted (2 messages)."  # q2 and its reply
    assert _texts(window)[0::2] == ["q", "more"] and window.chat.messages[0].version == (1, 1)
    assert not window.chat.messages[0].previous_button.isVisibleTo(window)
    assert window.chat.messages[3].version == (2, 2)  # the versions further down are still there
    assert len(window.store.tree(window.current_id)) == 5


def test_versions_are_not_switched_while_a_reply_streams(qtbot, make_window):
    window = make_window(FakeBackend(words=200, delay=0.01))
    window.composer.setPlainText("q")
    qtbot.keyClick(window.composer, Qt.Key_Return)
    _idle(qtbot, window)
    window.chat_controller.regenerate()
    qtbot.waitUntil(lambda: "w2" in window.chat_controller.stream_text, timeout=5000)
    reply = window.chat.messages[1]
    assert reply.version_label.text() == "2/2" and not reply.previous_button.isEnabled()
    assert not reply.delete_version_button.isVisibleTo(window)
    window.chat_controller.switch_branch(1, -1)  # ignored: the stream keeps its place
    assert window.chat.messages[1] is reply and window.streaming
    window.chat_controller.stop()
    _idle(qtbot, window)
    assert window.chat.messages[1].previous_button.isEnabled()


def _path(window):
    return [m.content for m in window.store.messages(window.current_id)]


def _long_conversation(qtbot, window, turns=25):
    for t in range(turns):
        _send(qtbot, window, f"question {t}")
    assert len(window.chat.messages) == 2 * turns
    return list(window.chat.messages)


def _laid_out(window):
    """The message widgets in the column's layout, in order (the hint and the stretch left out)."""
    column = window.chat.column
    items = (column.itemAt(i).widget() for i in range(column.count()))
    return [w for w in items if w is not None and w is not window.chat.empty_label]


def test_regenerate_replaces_only_the_last_reply_widget(qtbot, make_window):
    window = make_window(FakeBackend(words=2))
    before = _long_conversation(qtbot, window)
    window.chat_controller.regenerate()
    _idle(qtbot, window)
    after = window.chat.messages
    assert len(after) == 50
    assert all(a is b for a, b in zip(after[:49], before[:49]))  # not rebuilt
    assert after[49] is not before[49] and after[49].version == (2, 2)
    assert _texts(window) == _path(window) and _laid_out(window) == after
    assert [w.index for w in after] == list(range(50))
    window.chat_controller.switch_branch(49, -1)  # back to the first version: again one widget
    assert all(a is b for a, b in zip(window.chat.messages[:49], before[:49]))
    assert _texts(window) == _path(window) and window.chat.messages[49].version == (1, 2)


def test_edit_and_branch_switch_keep_the_messages_before_them(qtbot, make_window):
    window = make_window(FakeBackend(words=2))
    before = _long_conversation(qtbot, window)
    window.chat_controller.edit_and_resend(20, "question 10, edited")
    _idle(qtbot, window)
    after = window.chat.messages
    assert all(a is b for a, b in zip(after[:20], before[:20])) and len(after) == 22
    assert after[20].text == "question 10, edited" and after[20].version == (2, 2)
    assert _texts(window) == _path(window) and _laid_out(window) == after
    window.chat_controller.switch_branch(20, -1)  # the earlier version and its 28 later messages
    assert _texts(window) == _path(window) and len(window.chat.messages) == 50
    assert all(a is b for a, b in zip(window.chat.messages[:20], before[:20]))
    assert window.chat.messages[20].version == (1, 2) and _laid_out(window) == window.chat.messages
    window.chat_controller.undo_edit()  # the new version goes; the view follows the database
    assert _texts(window) == _path(window) and len(window.chat.messages) == 50
    assert all(a is b for a, b in zip(window.chat.messages[:20], before[:20]))
    assert window.chat.messages[20].version == (1, 1)


def test_a_conversation_with_versions_and_tokens_exports_and_imports_whole(qtbot, make_window, tmp_path):
    window = make_window(FakeBackend(words=3))
    _send(qtbot, window, "q")
    window.chat_controller.regenerate()
    _idle(qtbot, window)
    _send(qtbot, window, "more")
    stats = [m.stats for m in window.store.messages(window.current_id)]
    assert stats[1].get("tokens") and stats[3].get("tokens")  # the token view's data is in the file
    window.chat_controller.export_to(window.current_id, "json", tmp_path / "chat.json")
    window.chat_controller.import_from(tmp_path / "chat.json")  # the app's own export passes the checks
    assert _texts(window) == _path(window) and [m.stats for m in window.store.messages(window.current_id)] == stats
    assert window.chat.messages[1].version == (2, 2)
