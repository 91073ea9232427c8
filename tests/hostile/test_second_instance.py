"""A second app instance on the same data: it is told (a lock in the data dir, a banner), both
windows stay usable, and nothing either writes is lost: messages go to the shared database,
settings are merged per key (last writer wins) instead of one window's stale copy replacing
the file. A crashed holder leaves no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from chatapp.storage.db import ConversationStore
from chatapp.storage.locks import InstanceLock
from chatapp.storage.settings import SettingsStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_lock_tells_a_second_instance_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = _child("""
        import sys, time
        from pathlib import Path
        from chatapp.storage.locks import InstanceLock
        lock = InstanceLock(Path(sys.argv[1]))
        print("held" if lock.acquire() else "refused", flush=True)
        time.sleep(60)
    """, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "held"
        second = InstanceLock(tmp_path)
        assert not second.acquire() and not second.held
        assert second.holder() == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
        holder.wait(10)
    assert second.acquire() and second.held  # nothing stale to remove by hand
    assert second.holder() == os.getpid()
    again = InstanceLock(tmp_path)
    assert not again.acquire()  # two windows in one process see each other too
    second.release()
    assert again.acquire()
    again.release()


WRITER = """
    import sys
    from pathlib import Path
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    folder, tag, key, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = ConversationStore(folder / "conversations.sqlite3")
    settings_store = SettingsStore(folder / "settings.json")
    settings = settings_store.load()
    conversation = store.create_conversation(f"from {tag}")
    for i in range(n):
        store.add_message(conversation.id, "user", f"{tag} message {i}")
        setattr(settings, key, {"temperature": round(0.01 * (i + 1), 2), "top_k": i + 1}[key])
        settings.extra[f"last_{tag}"] = i
        settings_store.save(settings)
    store.close()
    print("done", flush=True)
"""


def test_two_processes_writing_messages_and_settings_lose_nothing(tmp_path):
    n = 60
    SettingsStore(tmp_path / "settings.json").save(SettingsStore(tmp_path / "settings.json").load())
    writers = [_child(WRITER, str(tmp_path), "a", "temperature", str(n)),
               _child(WRITER, str(tmp_path), "b", "top_k", str(n))]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0 and out.strip() == "done", err[-2000:]
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    try:
        by_title = {c.title: [m.content for m in store.messages(c.id)] for c in store.list_conversations()}
    finally:
        store.close()
    assert by_title == {f"from {tag}": [f"{tag} message {i}" for i in range(n)] for tag in "ab"}
    on_disk = json.loads((tmp_path / "settings.json").read_text())
    # each process's last value of its own key survives the other's saves
    assert on_disk["temperature"] == pytest.approx(0.01 * n) and on_disk["top_k"] == n
    assert on_disk["last_a"] == n - 1 and on_disk["last_b"] == n - 1
    loaded = SettingsStore(tmp_path / "settings.json").load()
    assert loaded.temperature == pytest.approx(0.01 * n) and loaded.top_k == n


def test_a_stale_copy_does_not_undo_the_other_windows_change(tmp_path):
    path = tmp_path / "settings.json"
    first, second = SettingsStore(path), SettingsStore(path)
    one, two = first.load(), second.load()
    one.temperature = 1.5
    first.save(one)
    two.system_prompt = "Be brief."
    second.save(two)  # two still holds the old temperature: it must not write it back
    two.top_k = 5
    second.save(two)
    loaded = SettingsStore(path).load()
    assert (loaded.temperature, loaded.system_prompt, loaded.top_k) == (1.5, "Be brief.", 5)
    one.temperature = 0.2  # the same key changed again: the last writer wins
    first.save(one)
    assert SettingsStore(path).load().temperature == 0.2


def test_second_window_shows_the_banner_and_both_windows_keep_working(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    from chatapp.ui.app import create_window, second_instance_text
    from tests.ui.fake_backend import FakeBackend

    _app, first = create_window(autoload=True, profile_dir=tmp_path, backend=FakeBackend())
    _app, second = create_window(autoload=True, profile_dir=tmp_path, backend=FakeBackend())
    windows = (first, second)
    try:
        for window in windows:
            qtbot.addWidget(window)
            qtbot.waitUntil(lambda w=window: w.model_info is not None, timeout=10000)
        assert first.second_instance_banner is None and first.instance_lock.held
        banner = second.second_instance_banner
        assert banner is not None and not second.instance_lock.held
        assert banner.findChild(QLabel, "second_instance_text").text() == second_instance_text()
        assert not banner.isHidden()

        for i, window in enumerate(windows):
            window.new_conversation()
            window.composer.setPlainText(f"hello from window {i}")
            qtbot.keyClick(window.composer, Qt.Key_Return)
        for window in windows:
            qtbot.waitUntil(lambda w=window: not w.streaming, timeout=10000)
        first.settings_panel.temperature.setValue(1.25)
        second.settings_panel.top_k.setValue(9)

        store = ConversationStore(tmp_path / "conversations.sqlite3")
        try:
            stored = sorted((m.role, m.content, m.state) for c in store.list_conversations()
                            for m in store.messages(c.id))
        finally:
            store.close()
        assert [s for s in stored if s[0] == "user"] == [
            ("user", "hello from window 0", "complete"), ("user", "hello from window 1", "complete")]
        assert [s[2] for s in stored if s[0] == "assistant"] == ["complete", "complete"]
        loaded = SettingsStore(tmp_path / "settings.json").load()
        assert loaded.temperature == pytest.approx(1.25) and loaded.top_k == 9
    finally:
        for window in windows:
            window.close()
            window.store.close()
            window.instance_lock.release()
