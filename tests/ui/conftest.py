"""Window fixtures: a fake chat backend injected through MainWindow's constructor."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fake_backend import FakeBackend  # noqa: E402


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def make_window(qtbot, tmp_path):
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.main_window import MainWindow

    made = []

    def make(backend, load=True, models=(("Default", "default"),)):
        store = ConversationStore(tmp_path / "conversations.sqlite3")
        settings = SettingsStore(tmp_path / "settings.json")
        window = MainWindow(store, settings, backend, list_models=lambda: list(models),
                            autoload=load, adapters_dir=tmp_path / "adapters")
        qtbot.addWidget(window)
        made.append(window)
        if load:
            qtbot.waitUntil(lambda: window.model_info is not None, timeout=5000)
        return window

    yield make
    for window in made:
        if window.worker_thread.thread.isRunning():
            window.close()
        window.store.close()
